"""Every training run in its own folder, ``output/runs/<name>/``: which folder a training call uses, and removal.

A student changes the recipe to see what helps; each recipe keeps its own run, and nothing one run
does touches another's files. :func:`choose` decides which folder a training call uses:

* ``RUN = "auto"`` (02's default): the run already holding this recipe on this dataset (resumed as
  before: after a disconnect, in a new runtime), else a new run named after the recipe by
  :meth:`Recipe.auto_name` (``smoke``, ``strong+BASE_LR=0.01+MAX_ITER=5000``), numbered (``-2``) when
  that name holds another recipe (a YAML file edited since) or another dataset's run. "The same recipe"
  is the same config, compared as on resume (:func:`holds`), so a renamed or adopted folder is found too.
* an explicit name: that folder; when it holds another recipe or another dataset's run the call stops,
  offering a new name or ``RESUME = False`` (which replaces that run alone).

:func:`remove` deletes a run when asked (nothing else here deletes a run). A project made before runs
had names keeps its one run in ``output/train/``: :func:`adopt_legacy` moves it into ``output/runs/``
once, and it resumes there.

The rest of what a run is lives by job, and is named here too, as the notebooks and ``tinyvoc runs``
call it: the recipe and its name (``recipe.py``), what each run holds and which one 03 and 04 use
(``run_info.py``: :func:`pick`, :func:`read_run`), and the runs table (``runs_table.py``: :func:`table`).
"""

from __future__ import annotations

import json
import os
import re
import shutil

from ..core import run_order
from ..core.errors import TinyVocError
from ..core.paths import Outputs, TrainFiles, legacy_run_name
from ..core.units import size
from .budget import Plan
from .recipe import NAME_LIMIT, RESERVED, Recipe, check_name, is_auto, wanted
from .run_info import (
    RunInfo,
    another_datasets_run,
    ap50_curves,
    current_fingerprint,
    learned,
    list_runs,
    names,
    of_another_dataset,
    pick,
    read_run,
)
from .runs_table import RunsTable, table

__all__ = [
    "NAME_LIMIT", "RESERVED", "Recipe", "RunInfo", "RunsTable", "adopt_legacy", "another_datasets_run", "ap50_curves",
    "check_name", "choose", "current_fingerprint", "holds", "is_auto", "learned", "list_runs", "names",
    "of_another_dataset", "pick", "read_run", "remove", "table", "wanted",
]  # fmt: skip


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
