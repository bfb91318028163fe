"""Every training run in its own folder, ``output/runs/<name>/``: named after its recipe, compared in one table.

A student changes the recipe to see what helps; each recipe keeps its own run, and nothing one run
does touches another's files. :func:`choose` decides which folder a training call uses:

* ``RUN = "auto"`` (02's default): the run already holding this recipe (resumed as before: after a
  disconnect, in a new runtime), else a new run named after the recipe by :meth:`Recipe.auto_name`
  (``smoke``, ``strong+BASE_LR=0.01+MAX_ITER=5000``), numbered (``-2``) when that name holds another
  recipe (a YAML file edited since). "The same recipe" is the same config, compared as on resume
  (:func:`holds`), so a renamed or adopted folder is found too.
* an explicit name: that folder; when it holds another recipe the call stops, offering a new name or
  ``RESUME = False`` (which replaces that run alone).

For 03 and 04, :func:`pick` chooses the run to predict with (``"best"``: the highest best validation
AP50 among runs with a checkpoint, ties to the newest) and says why; :func:`table` shows every run
(the best marked), :func:`ap50_curves` gives each run's validation curve for one figure, and
:func:`remove` deletes a run when asked (nothing else here deletes a run). A project made before runs
had names keeps its one run in ``output/train/``: :func:`adopt_legacy` moves it into ``output/runs/``
once, and it resumes there.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import os
import re
import shutil
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from ..core import run_order
from ..core.atomic import write_json
from ..core.errors import TinyVocError
from ..core.paths import UNSAFE_IN_NAMES, Outputs, TrainFiles, legacy_run_name, safe_name_part
from ..core.units import size
from ..dataset.record import DatasetRecord
from .budget import Plan
from .metrics import BEST_METRIC, best_row, read_metrics
from .profiles import is_file_profile, resolve_profile
from .storage import checkpoints_lost

CHECKPOINT_KEYS = ("checkpoint_final", "checkpoint_best")  # run.json's names of the checkpoints a finished run holds
NAME_LIMIT = 64  # longer auto names are cut and end in a hash of the whole name: stable, still readable
RESERVED = ("auto", "best", "latest", "fused")  # fused: the fusion of runs has its caches in predictions/fused/
_clean = safe_name_part


@dataclass(frozen=True)
class Recipe:
    """What a training call was asked for: the profile (a built-in name or a YAML path) and the settings beside it."""

    profile: str
    opts: tuple = ()
    max_iter: int | None = None
    ims_per_batch: int | None = None
    time_budget_h: float | None = None
    pretrained: bool = True
    changes: tuple = ()  # the config lines in which the run differs from its profile (config.config_changes)
    dataset: str = ""  # the dataset it learns (``DatasetRecord.name``); "" in a recipe from before runs knew it
    fingerprint: str = ""  # that dataset's classes and split (``DatasetRecord.fingerprint``): what a run belongs to

    def settings(self) -> list[tuple[str, str]]:
        """The settings given beside the profile, as ``(short key, value)``: OPTS keys by their last part."""
        pairs = [(str(k).rsplit(".", 1)[-1], str(v)) for k, v in zip(self.opts[::2], self.opts[1::2])]
        if self.max_iter:
            pairs.append(("MAX_ITER", str(self.max_iter)))
        if self.ims_per_batch:
            pairs.append(("IMS_PER_BATCH", str(self.ims_per_batch)))
        if self.time_budget_h is not None:
            pairs.append(("TIME_BUDGET_H", f"{self.time_budget_h:g}"))
        if not self.pretrained:
            pairs.append(("PRETRAINED", "False"))
        return pairs

    @classmethod
    def given(
        cls, profile: str = "auto", opts=(), max_iter=0, ims_per_batch=0, time_budget_h=None, pretrained=True
    ) -> Recipe:
        """The recipe of 02's settings as a training call reads them: the profile resolved (``auto``: strong on a
        GPU, smoke on a CPU; a YAML file by its absolute path) and 0, "the profile's own", as None."""
        max_iter, ims_per_batch = int(max_iter or 0) or None, int(ims_per_batch or 0) or None
        return cls(resolve_profile(profile), tuple(opts or ()), max_iter, ims_per_batch, time_budget_h, pretrained)

    @property
    def profile_name(self) -> str:
        return Path(self.profile).stem if is_file_profile(self.profile) else self.profile

    def auto_name(self) -> str:
        """The run's name: the profile or YAML stem, then ``+KEY=VALUE`` for each setting; hashed when long."""
        name = "+".join([_clean(self.profile_name), *(f"{_clean(k)}={_clean(v)}" for k, v in self.settings())])
        if len(name) > NAME_LIMIT:
            digest = hashlib.sha1(name.encode()).hexdigest()[:8]
            name = f"{name[: NAME_LIMIT - 9].rstrip('+=,.-')}-{digest}"
        return name

    def describe(self) -> str:
        """``smoke, OPTS SOLVER.BASE_LR 0.01, MAX_ITER 20``: the recipe as the notebook's settings say it."""
        parts = [self.profile_name]
        if self.opts:
            parts.append("OPTS " + " ".join(str(o) for o in self.opts))
        parts += [f"{k} {v}" for k, v in self.settings()[len(self.opts) // 2 :]]
        return ", ".join(parts)

    def on(self, record: DatasetRecord) -> Recipe:
        """This recipe on ``record``'s dataset: a run trained from it belongs to that dataset."""
        return replace(self, dataset=record.name, fingerprint=record.fingerprint)

    def save(self, files: TrainFiles) -> None:
        write_json(files.recipe, {**asdict(self), "opts": [str(o) for o in self.opts]}, indent=2)

    @classmethod
    def load(cls, files: TrainFiles) -> Recipe | None:
        try:
            data = json.loads(files.recipe.read_text())
            data = {k: v for k, v in data.items() if k in {f.name for f in fields(cls)}}
            return cls(**{**data, "opts": tuple(data.get("opts", ())), "changes": tuple(data.get("changes", ()))})
        except (OSError, ValueError, TypeError):
            return None


def check_name(name: str) -> str:
    """A run name given by the user, or a clear error: one folder name, of characters safe everywhere."""
    name = str(name).strip()
    if not name or name in (".", "..") or name.startswith(".") or UNSAFE_IN_NAMES.search(name) or len(name) > 100:
        raise TinyVocError(
            f"RUN {name!r} is not a usable run name: use letters, digits and . _ , = + - (at most 100, not "
            'starting with a dot), e.g. RUN = "lr0.01"; or RUN = "auto" to name the run after its recipe'
        )
    if name.lower() in RESERVED:
        raise TinyVocError(f"RUN {name!r} is a reserved word, not a run name; choose another name")
    return name


def is_auto(run) -> bool:
    """``RUN = "auto"`` (or empty): the run is named after its recipe."""
    return str(run or "auto").strip().lower() == "auto"


def wanted(run: str, recipe: Recipe) -> str:
    """The run a training call asks for by name: ``run`` itself, or with ``"auto"`` the recipe's name.

    Reads and writes nothing, so 02 can say before training which run Kaggle's attached outputs should
    bring in (``kaggle.bring_in_for_training``); :func:`choose` then picks the folder (a numbered variant
    of this name, or a folder holding the same recipe under another name, is found there).
    """
    return recipe.auto_name() if is_auto(run) else str(run)


def names(outputs: Outputs) -> list[str]:
    """Every run folder's name, sorted."""
    if not outputs.runs_dir.is_dir():
        return []
    return sorted(e.name for e in os.scandir(outputs.runs_dir) if e.is_dir() and not e.name.startswith("."))


def learned(files: TrainFiles) -> tuple[str, str]:
    """``(dataset name, fingerprint)`` the run in ``files`` learns: from its ``run.json``, else from its recipe (a run
    killed before its first record); ``("", "")`` for a run from before runs knew their dataset (usable with any)."""
    try:
        record = json.loads(files.record.read_text())
    except (OSError, ValueError):
        record = {}
    if isinstance(record, dict) and record.get("fingerprint"):
        return str(record.get("dataset") or "?"), str(record["fingerprint"])
    recipe = Recipe.load(files)
    return (recipe.dataset or "?", recipe.fingerprint) if recipe and recipe.fingerprint else ("", "")


def of_another_dataset(files: TrainFiles, fingerprint: str) -> bool:
    """Whether the run in ``files`` learned a dataset other than the one of ``fingerprint`` (unknown: it did not)."""
    theirs = learned(files)[1]
    return bool(fingerprint and theirs and theirs != fingerprint)


def another_datasets_run(files: TrainFiles, dataset: str, fingerprint: str, doing: str, todo: str) -> TinyVocError:
    """The refusal of a run of another dataset than ``dataset`` (of ``fingerprint``), naming both and what to do."""
    theirs, their_fingerprint = learned(files)
    return TinyVocError(
        f"run {files.name} learned dataset {theirs} (fingerprint {their_fingerprint}), but this project's dataset is "
        f"now {dataset} (fingerprint {fingerprint}): the run's class ids or its validation split are another "
        f"dataset's, so {doing}. {todo}; or register {theirs} again in 01_register_dataset.ipynb to use run "
        f"{files.name}. `tinyvoc runs` shows each run's dataset."
    )


def holds(files: TrainFiles, signature: str, budget_h: float | None, fingerprint: str = "") -> bool | None:
    """Whether the run in ``files`` was trained with this config (``signature``: ``config.config_signature`` before a
    budget's plan) and budget, on this dataset (``fingerprint``; a run from before runs knew theirs counts as this
    dataset's); None when the folder holds no run yet (no ``config.yaml``)."""
    if not files.config.is_file():
        return None
    if of_another_dataset(files, fingerprint):
        return False
    if budget_h:
        plan = Plan.load(files.plan)
        return bool(plan) and plan.base_config == signature and plan.budget_hours == budget_h
    return not files.plan.exists() and files.config.read_text(errors="replace") == signature


def _numbered(base: str, taken: list[str]) -> list[str]:
    """``base`` and its numbered variants ``base-2`` ... present in ``taken``, in order."""
    pattern = re.compile(re.escape(base) + r"-(\d+)")
    found = [(1, n) if n == base else (int(m.group(1)), n) for n in taken if n == base or (m := pattern.fullmatch(n))]
    return [n for _, n in sorted(found)]


def choose(
    outputs: Outputs, wanted: str, recipe: Recipe, signature: str, budget_h: float | None, resume: bool = True
) -> tuple[str, str]:
    """The run a training call uses and why (see the module docstring). Reads the run folders; writes nothing."""
    if isinstance(wanted, list | tuple):
        raise TinyVocError(
            f'RUN = {list(wanted)!r}: 02 trains one run, so RUN is one name or "auto" here; a list of runs is '
            "for 03 and 04, which fuse their predictions"
        )
    taken = names(outputs)
    fingerprint = recipe.fingerprint
    if not is_auto(wanted):
        name = check_name(wanted)
        held = holds(outputs.run(name), signature, budget_h, fingerprint)
        if resume and of_another_dataset(outputs.run(name), fingerprint):
            raise another_datasets_run(
                outputs.run(name), recipe.dataset, fingerprint, "02 does not resume it",
                f'Choose a new name (RUN = "{_free(name, taken)}"; RUN = "auto" names the run after its recipe), or '
                f"set RESUME = False to replace run {name} alone (its checkpoints are deleted; other runs stay)",
            )  # fmt: skip
        if held is False and resume:
            raise TinyVocError(
                f"run {name} ({outputs.run(name).dir}) holds another recipe ({_described(outputs.run(name))}). "
                f'Choose a new name (RUN = "{_free(name, taken)}"; RUN = "auto" names the run after its recipe), '
                f"or set RESUME = False to replace run {name} alone (its checkpoints are deleted; other runs stay)."
            )
        return name, "the name given in RUN" + (" (replacing the run there)" if held is False else "")
    base = recipe.auto_name()
    family = _numbered(base, taken)
    same = [n for n in family if holds(outputs.run(n), signature, budget_h, fingerprint)]
    if not same:  # a folder holding this recipe under another name (adopted from output/train, or renamed)
        same = sorted((n for n in taken if n not in family and holds(outputs.run(n), signature, budget_h, fingerprint)),
                      key=lambda n: run_order.newest(outputs.run(n)), reverse=True)  # fmt: skip
    if same:
        return same[0], "the run holding this recipe"
    name = _free(base, taken, lambda n: holds(outputs.run(n), signature, budget_h, fingerprint) is None)
    if name != base:
        return name, f"named after its recipe; run {base} holds another recipe ({_described(outputs.run(base))})"
    return name, "named after its recipe"


def _free(base: str, taken: list[str], usable=None) -> str:
    usable = usable or (lambda n: n not in taken)
    number = 1
    while True:
        name = base if number == 1 else f"{base}-{number}"
        if usable(name):
            return name
        number += 1


def _described(files: TrainFiles) -> str:
    recipe = Recipe.load(files)
    dataset = learned(files)[0]
    return (recipe.describe() if recipe else f"see {files.config}") + (f", on dataset {dataset}" if dataset else "")


# --- an older project's one run -----------------------------------------------------------------------------


def adopt_legacy(outputs: Outputs) -> str | None:
    """Move an older project's ``output/train/`` into ``output/runs/<name>/`` (its prediction caches along), and
    say so, once; return the name, or None when there is nothing to move. The move is a rename: nothing is copied."""
    old = outputs.legacy_train_dir
    if not old.is_dir() or not any(old.iterdir()):
        return None
    try:
        record = json.loads(TrainFiles(old).record.read_text())
    except (OSError, ValueError):
        record = None
    name = _free(legacy_run_name(record), names(outputs))
    outputs.runs_dir.mkdir(parents=True, exist_ok=True)
    os.replace(old, outputs.run(name).dir)
    caches = [p for p in outputs.predictions_dir.glob("*.json*") if p.is_file()]
    if caches:
        outputs.predictions_for(name).mkdir(parents=True, exist_ok=True)
        for cache in caches:
            os.replace(cache, outputs.predictions_for(name) / cache.name)
    print(f"This project's run in {old} is now run {name} in {outputs.run(name).dir}: each recipe keeps its own run "
          "under output/runs/ (it resumes and is predicted from there).")  # fmt: skip
    return name


# --- what each run holds --------------------------------------------------------------------------------------


@dataclass
class RunInfo:
    """One row of the runs table (and of ``tinyvoc runs --json``): read from the run's own files."""

    name: str
    dir: str
    recipe: str
    changes: list[str]
    iteration: int
    max_iter: int | None
    state: str  # "finished", "stopped, resumable", "stopped, not resumable", "not started"
    hours: float | None
    best_ap50: float | None  # best validation mask AP50, 0..1 (model_best.pth's)
    best_ap: float | None  # mask AP at that iteration
    best_iteration: int | None
    size_bytes: int
    checkpoint: str | None  # model_best.pth, else model_final.pth, else None
    newest: float = field(default=0.0, repr=False)  # the newest file's time: ties go to the newest run
    best: bool = False  # marked: the run "best" picks
    dataset: str = ""  # the dataset it learned ("" for a run from before runs knew it: shown as "?")
    fingerprint: str = ""  # that dataset's classes and split

    def belongs_to(self, fingerprint: str | None) -> bool:
        """Whether this run learned the dataset of ``fingerprint`` (yes for a run of unknown dataset, or no dataset)."""
        return not fingerprint or not self.fingerprint or self.fingerprint == fingerprint

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "newest"}


_MAX_ITER = re.compile(r"^SOLVER:\n(?:  .*\n)*?  MAX_ITER: (\d+)$", re.M)


def read_run(files: TrainFiles) -> RunInfo:
    """Everything the table shows of one run, from its files (a killed run has no ``run.json``: its metrics say)."""
    try:
        record = json.loads(files.record.read_text())
    except (OSError, ValueError):
        record = {}
    rows = read_metrics(files.metrics)
    done = max((r["iteration"] + 1 for r in rows if "total_loss" in r), default=0)
    done = max(done, int(record.get("iteration") or 0))
    max_iter = record.get("max_iter")
    if max_iter is None and files.config.is_file():
        found = _MAX_ITER.search(files.config.read_text(errors="replace"))
        max_iter = int(found.group(1)) if found else None
    top = best_row(rows)
    finished = record.get("finished") and not checkpoints_lost(files, [record.get(k) for k in CHECKPOINT_KEYS])
    if finished:
        state = "finished"
    elif files.last_checkpoint.is_file():
        state = "stopped, resumable"
    else:
        state = "stopped, not resumable" if done else "not started"
    recipe = Recipe.load(files)
    checkpoint = next((p.name for p in (files.best, files.final) if p.is_file()), None)
    size = sum(p.stat().st_size for p in files.dir.rglob("*") if p.is_file()) if files.dir.is_dir() else 0
    seconds = record.get("seconds")
    return RunInfo(
        name=files.name, dir=str(files.dir), recipe=recipe.describe() if recipe else str(record.get("profile", "?")),
        changes=list(recipe.changes) if recipe else [], iteration=done, max_iter=max_iter, state=state,
        hours=round(seconds / 3600, 3) if seconds is not None else None,
        best_ap50=top[BEST_METRIC] / 100 if top else None,
        best_ap=top["segm/AP"] / 100 if top and "segm/AP" in top else None,
        best_iteration=top["iteration"] if top else None, size_bytes=size, checkpoint=checkpoint,
        newest=run_order.newest(files), dataset=learned(files)[0], fingerprint=learned(files)[1],
    )  # fmt: skip


def _rank(info: RunInfo):
    return run_order.best_first(info.best_ap50, info.newest)


def list_runs(outputs: Outputs, fingerprint: str | None = None) -> list[RunInfo]:
    """Every run, sorted by best validation AP50 (runs without one last, then the newest first), the best of the
    dataset of ``fingerprint`` (None: of any dataset) marked."""
    infos = [read_run(outputs.run(n)) for n in names(outputs)]
    infos.sort(key=_rank, reverse=True)
    chosen = [i for i in infos if i.checkpoint and i.belongs_to(fingerprint)]
    if chosen:
        max(chosen, key=_rank).best = True
    return infos


def current_fingerprint(outputs: Outputs) -> str | None:
    """The fingerprint of the project's dataset now (01's record), or None when it cannot be read here."""
    try:
        return DatasetRecord.load(outputs).fingerprint
    except (TinyVocError, OSError, ValueError, KeyError, TypeError):
        return None


def pick(outputs: Outputs, wanted: str = "best", record: DatasetRecord | None = None) -> tuple[str, str]:
    """The run 03 and 04 use, and why: ``"best"`` (the highest best validation AP50 among runs with a checkpoint,
    ties to the newest), ``"auto"`` (the newest run with a checkpoint: the one 02 trained last) or a run's name.
    With ``record`` (the project's dataset), only that dataset's runs: "best" and "auto" choose among them, and a
    run of another dataset named is refused, naming both datasets."""
    wanted = str(wanted or "best").strip()
    fingerprint = record.fingerprint if record is not None else None
    infos = list_runs(outputs, fingerprint)
    if wanted.lower() not in ("best", "auto"):
        name = check_name(wanted)
        if name not in names(outputs):
            listed = ", ".join(i.name for i in infos) or "none yet"
            raise TinyVocError(f"no run called {name} in {outputs.runs_dir} (runs: {listed}); RUN = \"best\" takes the "
                               "best, `tinyvoc runs` lists them")  # fmt: skip
        if record is not None and of_another_dataset(outputs.run(name), record.fingerprint):
            todo = f'Name a run of {record.name} in RUN (RUN = "best" takes the best of them)'
            raise another_datasets_run(
                outputs.run(name), record.name, record.fingerprint, "03 and 04 do not use it", todo
            )
        return name, "the run named in RUN"
    usable = [i for i in infos if i.checkpoint and i.belongs_to(fingerprint)]
    if not usable:
        others = [i for i in infos if i.checkpoint]
        elsewhere = (
            f" (the {len(others)} run(s) there learned other datasets: "
            + ", ".join(f"{i.name} on {i.dataset}" for i in others) + ")"
            if others else ""
        )  # fmt: skip
        dataset = f" of dataset {record.name}" if record is not None else ""
        raise TinyVocError(
            f"No trained run{dataset} with a checkpoint in {outputs.runs_dir}{elsewhere}. Run 02_train.ipynb first "
            "(with the same PROJECT_DIR)."
        )
    of = f"{len(usable)} run(s) of {record.name}" if record is not None and len(usable) < len(infos) else None
    if wanted.lower() == "auto":
        newest = max(usable, key=lambda i: i.newest)
        return newest.name, f'RUN = "auto": the newest run with a checkpoint, of {of or len(usable)}'
    best = next(i for i in usable if i.best)
    if best.best_ap50 is None:
        return best.name, (f'RUN = "best": no run has a validation AP50; the newest of {of or len(usable)} with a '
                           "checkpoint")  # fmt: skip
    ties = [i.name for i in usable if i is not best and i.best_ap50 == best.best_ap50]
    tied = f", tied with {', '.join(ties)}: the newest" if ties else ""
    return best.name, (
        f'RUN = "best": the highest best validation mask AP50 ({best.best_ap50:.3f} at iteration '
        f"{best.best_iteration:,}) of {of or f'{len(usable)} run(s)'} with a checkpoint{tied}"
    )


def remove(outputs: Outputs, name: str) -> int:
    """Delete run ``name`` (its folder and its prediction caches); return the bytes freed. Only ever on request."""
    name = check_name(name)
    files = outputs.run(name)
    if not files.dir.is_dir():
        raise TinyVocError(f"no run called {name} in {outputs.runs_dir} (runs: {', '.join(names(outputs)) or 'none'})")
    freed = read_run(files).size_bytes
    shutil.rmtree(files.dir)
    shutil.rmtree(outputs.predictions_for(name), ignore_errors=True)
    print(f"Removed run {name} ({size(freed)} freed; on Google Drive, empty the bin for the space to count).")
    return freed


# --- the table ------------------------------------------------------------------------------------------------

COLUMNS = ("", "run", "dataset", "recipe", "differs from its profile in", "iterations", "state", "hours",
           "best val AP50", "AP", "at iteration", "size")  # fmt: skip


def _short(change: str) -> str:
    """``SOLVER.BASE_LR: 0.02 -> 0.01`` as the table shows it: ``BASE_LR 0.01`` (the json keeps the whole line)."""
    key, _, values = change.partition(": ")
    return f"{key.rsplit('.', 1)[-1]} {values.rpartition(' -> ')[2]}".strip()


def _cells(info: RunInfo) -> tuple[str, ...]:
    planned = f" of {info.max_iter:,}" if info.max_iter else ""
    return (
        "★" if info.best else "",
        info.name,
        info.dataset or "?",
        info.recipe,
        ", ".join(_short(change) for change in info.changes) or "-",
        f"{info.iteration:,}{planned}",
        info.state,
        f"{info.hours:.2f}" if info.hours is not None else "-",
        f"{info.best_ap50:.3f}" if info.best_ap50 is not None else "-",
        f"{info.best_ap:.3f}" if info.best_ap is not None else "-",
        f"{info.best_iteration:,}" if info.best_iteration is not None else "-",
        size(info.size_bytes),
    )


@dataclass
class RunsTable:
    """Every run of a project as one table (a notebook cell shows it as HTML, a terminal as text), the best marked."""

    runs: list[RunInfo]
    where: str
    extra: list[tuple[str, ...]] = field(default_factory=list)  # rows that are no run: a fusion of runs

    @property
    def best(self) -> str | None:
        """The name of the run marked best (what ``RUN = "best"`` takes), or None."""
        return next((i.name for i in self.runs if i.best), None)

    @property
    def title(self) -> str:
        total = size(sum(i.size_bytes for i in self.runs))
        return f'{len(self.runs)} run(s) in {self.where}, {total}; ★ = what RUN = "best" submits'

    def __repr__(self) -> str:
        rows = [COLUMNS, *(_cells(i) for i in self.runs), *self.extra]
        widths = [max(len(r[c]) for r in rows) for c in range(len(COLUMNS))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
        return "\n".join([self.title, *lines] if self.runs else [self.title, "  (no run yet: train one in 02)"])

    def _repr_html_(self) -> str:
        head = "".join(f'<th style="text-align:left">{html.escape(c)}</th>' for c in COLUMNS)
        body = "".join(
            "<tr" + (' style="font-weight:bold"' if i.best else "") + ">"
            + "".join(f'<td style="text-align:left">{html.escape(c)}</td>' for c in _cells(i)) + "</tr>"
            for i in self.runs
        ) + "".join(
            "<tr>" + "".join(f'<td style="text-align:left">{html.escape(c)}</td>' for c in row) + "</tr>"
            for row in self.extra
        )  # fmt: skip
        return (f'<table><caption style="text-align:left"><b>{html.escape(self.title)}</b></caption>'
                f"<tr>{head}</tr>{body}</table>")  # fmt: skip


def table(outputs: Outputs, fused: tuple[list[str], float, float] | None = None) -> RunsTable:
    """The runs table of the project (notebooks 02, 03, 04 and ``tinyvoc runs``). ``fused``: ``(members, val AP50,
    val AP)`` of a fusion of runs (03/04 with RUN a list), shown as one more row marked ⊕."""
    extra = []
    if fused is not None:
        members, ap50, ap = fused
        extra.append(("⊕", "fused", "", "fusion of " + " + ".join(members), "-", "-", "fused from the caches", "-",
                      f"{ap50:.3f}", f"{ap:.3f}", "-", "-"))  # fmt: skip
    return RunsTable(list_runs(outputs, current_fingerprint(outputs)), str(outputs.runs_dir), extra)


def ap50_curves(outputs: Outputs) -> dict[str, list[tuple[int, float]]]:
    """Each run's validation mask AP50 (0..1) by iteration, for one figure over every run (``plots.runs_ap50``)."""
    curves = {}
    for name in names(outputs):
        rows = read_metrics(outputs.run(name).metrics)
        points = [
            (r["iteration"], r["segm/AP50"] / 100) for r in rows if r.get("segm/AP50", math.nan) == r.get("segm/AP50")
        ]
        if points:
            curves[name] = points
    return curves
