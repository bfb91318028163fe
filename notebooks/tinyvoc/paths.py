"""Where every file lives: the repo, the data, and the artifacts each notebook hands to the next.

The notebooks talk to each other only through files in the project's ``output/``. Keeping their
names here, in one place, lets each notebook check that its inputs exist and name the notebook that
makes them. Records store paths relative to the output folder or the data folder, so a record
written in one Colab runtime is read correctly in the next, where the data sits at another path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import TinyVocError

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
DEFAULT_DATA_DIR = REPO_ROOT / "data"
DEFAULT_OUTPUT_DIR = REPO_ROOT / "output"

NOTEBOOKS = (
    "00_install.ipynb",
    "01_register_dataset.ipynb",
    "02_train.ipynb",
    "03_visualize.ipynb",
    "04_export_submission.ipynb",
)


@dataclass(frozen=True)
class Outputs:
    """The artifact layout under one output folder, and the data folder its records are relative to.

    ``data_dir`` is where this runtime reads the dataset (on Colab a local copy of the project's
    data); paths in ``dataset.json`` that are relative resolve against it.
    """

    root: Path
    data_dir: Path = DEFAULT_DATA_DIR

    @classmethod
    def at(cls, root: str | os.PathLike | None = None, data_dir: str | os.PathLike | None = None) -> Outputs:
        from .colab import require_mounted

        root = Path(root) if root else DEFAULT_OUTPUT_DIR
        require_mounted(root, "The output folder")
        root.mkdir(parents=True, exist_ok=True)
        return cls(root.resolve(), Path(data_dir).resolve() if data_dir else DEFAULT_DATA_DIR)

    # written by 01_register_dataset
    @property
    def dataset_record(self) -> Path:
        return self.root / "dataset.json"

    @property
    def split_dir(self) -> Path:
        return self.root / "splits"

    # written by 02_train
    @property
    def train_dir(self) -> Path:
        return self.root / "train"

    @property
    def train_files(self) -> TrainFiles:
        return TrainFiles(self.train_dir)

    @property
    def train_record(self) -> Path:
        return self.train_files.record

    @property
    def metrics(self) -> Path:
        return self.train_files.metrics

    @property
    def config(self) -> Path:
        return self.train_files.config

    @property
    def checkpoint_best(self) -> Path:
        return self.train_files.best

    @property
    def checkpoint_final(self) -> Path:
        return self.train_files.final

    @property
    def last_checkpoint(self) -> Path:
        return self.train_files.last_checkpoint

    # written by 03/04 (shared prediction cache)
    @property
    def predictions_dir(self) -> Path:
        return self.root / "predictions"

    @property
    def figures_dir(self) -> Path:
        return self.root / "figures"

    @property
    def environment_report(self) -> Path:  # 00
        return self.root / "environment.json"

    @property
    def dataset_stats(self) -> Path:  # 01
        return self.root / "dataset_stats.json"

    @property
    def val_metrics(self) -> Path:  # 04
        return self.root / "val_metrics.json"

    @property
    def submission(self) -> Path:
        return self.root / "submission.json"

    @property
    def executed_notebooks(self) -> Path:
        return self.root / "notebooks"


@dataclass(frozen=True)
class TrainFiles:
    """The files in one training folder, by name.

    The trainer is handed only ``cfg.OUTPUT_DIR`` (as detectron2's own tools are), so the names
    live here and both it and :class:`Outputs` derive their paths from this one place.
    """

    dir: Path

    @property
    def record(self) -> Path:
        return self.dir / "run.json"

    @property
    def metrics(self) -> Path:
        return self.dir / "metrics.jsonl"

    @property
    def config(self) -> Path:
        return self.dir / "config.yaml"

    @property
    def plan(self) -> Path:
        """The time-budget plan (measured speed, iterations, schedule) a resume continues."""
        return self.dir / "plan.json"

    @property
    def log(self) -> Path:
        """detectron2's full log; the notebook shows only a compact progress line."""
        return self.dir / "log.txt"

    @property
    def best(self) -> Path:
        return self.dir / "model_best.pth"

    @property
    def final(self) -> Path:
        return self.dir / "model_final.pth"  # the name detectron2's PeriodicCheckpointer saves at the end

    @property
    def last_checkpoint(self) -> Path:
        return self.dir / "last_checkpoint"

    def periodic(self) -> list[Path]:
        """Periodic checkpoints ``model_0001234.pth``, oldest first."""
        return sorted(p for p in self.dir.glob("model_[0-9]*.pth") if p.stem[6:].isdigit())


def require(path: Path, made_by: str, what: str) -> Path:
    """Return ``path`` if it exists; otherwise stop with a message naming the notebook to run."""
    if not Path(path).exists():
        raise TinyVocError(f"{what} not found at {path}. Run {made_by} first (with the same PROJECT_DIR).")
    return Path(path)
