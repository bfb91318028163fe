"""What each run holds and which one 03 and 04 use: read from the run's own files, never written here.

:func:`read_run` gives one run's row of the runs table (its recipe, iterations, state, best validation
AP50, size, and the dataset it learned: :func:`learned`); :func:`pick` chooses the run to predict with
(``"best"``: the highest best validation AP50 among the current dataset's runs with a checkpoint, ties to
the newest, ``core.run_order``) and says why, refusing a run of another dataset by name;
:func:`ap50_curves` gives each run's validation curve for one figure.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field

from ..core import run_order
from ..core.errors import TinyVocError
from ..core.paths import Outputs, TrainFiles
from ..dataset.record import DatasetRecord, already_loaded
from .metrics import BEST_METRIC, best_row, read_metrics
from .recipe import Recipe, check_name
from .storage import checkpoints_lost

CHECKPOINT_KEYS = ("checkpoint_final", "checkpoint_best")  # run.json's names of the checkpoints a finished run holds


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
        max_iter = _planned_iterations(files)
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


def _planned_iterations(files: TrainFiles) -> int | None:
    """``SOLVER.MAX_ITER`` of the run's ``config.yaml``, read as detectron2 reads it (its ``CfgNode`` is yacs's, whose
    loader this is; yacs alone imports no torch); None when the file cannot say."""
    from yacs.config import CfgNode

    try:
        return int(CfgNode.load_cfg(files.config.read_text(errors="replace")).SOLVER.MAX_ITER)
    except Exception:  # noqa: BLE001 - a config cut short or of another shape: the table shows "-"
        return None


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
    """The fingerprint of the project's dataset now (01's record), or None when it cannot be read here. The record
    this process loaded a moment ago is asked first (``record.already_loaded``): the table costs no second read."""
    try:
        return (already_loaded(outputs.dataset_record) or DatasetRecord.load(outputs)).fingerprint
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
