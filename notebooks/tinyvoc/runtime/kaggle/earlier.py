"""What earlier notebooks saved, as found among a Kaggle session's inputs: their ``output/`` folders and runs.

On Kaggle each notebook's session starts empty; 01's dataset record, 02's training runs and 03's
prediction caches reach a later notebook only as that earlier notebook's saved output, attached as an
input. This module finds and ranks them (it copies nothing: ``bring_in`` does). An older output's one
run (``output/train/``) is listed as a run named after its profile.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from ...core import run_order
from ...core.paths import Outputs, TrainFiles, legacy_run_name
from .inputs import folders, input_name
from .session import input_root


@dataclass(frozen=True)
class EarlierRun:
    """One training run in an attached output: ``output/runs/<name>/``, or an older output's ``output/train/``."""

    files: TrainFiles
    name: str
    caches: Path  # its prediction caches in that output
    input: str

    @property
    def record(self) -> dict | None:
        """The run record (``run.json``), or None when the run has none (killed before its first record)."""
        try:
            return json.loads(self.files.record.read_text())
        except (OSError, ValueError):
            return None

    @property
    def resumable(self) -> bool:
        return self.files.last_checkpoint.is_file()

    @property
    def newest(self) -> float:
        return run_order.newest(self.files)  # core.run_order: as the runs table and RUN = "auto" read it

    def rank(self):
        """The further-trained first: finished, then more iterations, then resumable (02's own), then the newer."""
        run = self.record or {}
        return (bool(run.get("finished")), int(run.get("iteration") or 0), self.resumable, self.newest)

    @property
    def fingerprint(self) -> str:
        """The dataset the run learned (``run.json``'s fingerprint), "" when its record does not say."""
        return str((self.record or {}).get("fingerprint") or "")

    def describe(self) -> str:
        run = self.record or {}
        ap50 = run.get("best_ap50")
        state = "finished" if run.get("finished") else ("stopped, resumable" if self.resumable else "stopped")
        best = f", best val AP50 {ap50:.3f}" if isinstance(ap50, (int, float)) else ""
        best += f", dataset {run['dataset']}" if run.get("dataset") else ""
        return f"run {self.name} from input '{self.input}' ({state}, {run.get('iteration', '?')} iterations{best})"


@dataclass(frozen=True)
class EarlierOutput:
    """One ``output/`` folder found among the inputs (01's, 02's, or 02's own earlier version)."""

    outputs: Outputs
    input: str  # the attached input's name under /kaggle/input

    @property
    def has_dataset(self) -> bool:
        return self.outputs.dataset_record.is_file() and self.outputs.split_dir.is_dir()

    @property
    def runs(self) -> list[EarlierRun]:
        """Its training runs: every ``runs/<name>/`` with a config or record, and an older output's ``train/``."""
        found = []
        if self.outputs.runs_dir.is_dir():
            for folder in sorted(p for p in self.outputs.runs_dir.iterdir() if p.is_dir()):
                files = TrainFiles(folder)
                if files.record.is_file() or files.config.is_file():
                    found.append(EarlierRun(files, folder.name, self.outputs.predictions_for(folder.name), self.input))
        legacy = TrainFiles(self.outputs.legacy_train_dir)
        if legacy.record.is_file() or legacy.config.is_file():
            run = EarlierRun(legacy, "", self.outputs.predictions_dir, self.input)
            found.append(replace(run, name=legacy_run_name(run.record)))
        return found

    @property
    def training(self) -> dict | None:
        """The record of its further-trained run, or None when this output holds no training."""
        runs = sorted(self.runs, key=EarlierRun.rank, reverse=True)
        return (runs[0].record or {}) if runs else None

    def describe(self) -> str:
        return f"input '{self.input}' ({self.outputs.root})"


def find_outputs(inputs: Path | None = None) -> list[EarlierOutput]:
    """Every attached ``output/`` folder holding a dataset record or a training run, the most advanced first:
    a training run before a dataset record alone, then the further-trained, then 02's own output (with its
    ``last_checkpoint``) before a copy 03 or 04 brought in, then the newer."""
    inputs = input_root() if inputs is None else Path(inputs)
    if not inputs.is_dir():
        return []
    found = []
    for folder in folders(inputs):
        if folder.name != "output":
            continue
        earlier = EarlierOutput(Outputs.at(folder), input_name(folder, inputs))
        if earlier.has_dataset or earlier.training is not None:
            found.append(earlier)

    def rank(e: EarlierOutput):
        runs = sorted(e.runs, key=EarlierRun.rank, reverse=True)
        newest = e.outputs.dataset_record.stat().st_mtime if e.outputs.dataset_record.exists() else 0.0
        return (bool(runs), *(runs[0].rank() if runs else (False, 0, False, newest)))

    return sorted(found, key=rank, reverse=True)


def attached_runs(found: list[EarlierOutput]) -> list[EarlierRun]:
    """Every run in the attached outputs, the further-trained first."""
    return sorted((run for e in found for run in e.runs), key=EarlierRun.rank, reverse=True)
