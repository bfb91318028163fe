"""Where every file lives: the checkout, the dataset's files, and the artifacts each notebook hands to the next.

The notebooks talk to each other only through files in the project's ``output/``. Keeping their
names here, in one place, lets each notebook check that its inputs exist and name the notebook that
makes them. Records store paths relative to the output folder or the data folder, so a record
written in one Colab runtime is read correctly in the next, where the data sits at another path.

Nothing here touches the disk: building an :class:`Outputs` creates no folder and asks nothing about
Colab (the Drive check belongs to ``runtime.project.start`` and the CLI); writers create the folders
they write into (``core.atomic``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import TinyVocError

NOTEBOOKS = (
    "00_install.ipynb",
    "01_register_dataset.ipynb",
    "02_train.ipynb",
    "03_visualize.ipynb",
    "04_export_submission.ipynb",
)
# The course's four files, as every copy of the dataset names them (data/README.md).
TRAIN_JSON, TEST_JSON = "pascal_train.json", "test.json"
TRAIN_IMAGES, TEST_IMAGES = "train_images", "test_images"
# Downloads kept between runs (the detectron2 wheel, pretrained weights), outside any project.
USER_CACHE = Path.home() / ".cache" / "tinyvoc"

_PACKAGE_DIR = Path(__file__).resolve().parents[1]
CHECKPOINTS = ("best", "final")  # the checkpoints a run is used at by name (03, 04); else a path
UNSAFE_IN_NAMES = re.compile(r"[^A-Za-z0-9._,=+-]")  # run names: safe in paths on Linux, macOS, Windows, Drive, shells


def safe_name_part(text: object) -> str:
    """``text`` as part of a run's folder name: no separators, spaces or characters unsafe somewhere."""
    return UNSAFE_IN_NAMES.sub("", str(text).replace("/", "-").replace(" ", "")).lstrip(".") or "_"


def legacy_run_name(record: dict | None) -> str:
    """The name the one run of an older project (``output/train/``) takes among the runs: its profile's, from its
    ``run.json`` (``strong``; a YAML file's stem), else ``train``. ``training.runs`` and the Kaggle bring-in agree."""
    profile = str((record or {}).get("profile") or "")
    if not profile:
        return "train"
    stem = Path(profile).stem if profile.lower().endswith((".yaml", ".yml")) else profile
    return safe_name_part(stem)


def run_entries(run: str | Sequence[str], checkpoint: str = "best") -> list[tuple[str, str]]:
    """``RUN`` of 03 and 04 as ``(run, checkpoint)`` pairs: a string is one run at ``checkpoint``; an entry
    ``"name:final"`` (alone or in a list) takes that checkpoint. ``inference.ensemble`` loads them, the Kaggle
    bring-in copies them in."""
    if isinstance(run, str):
        run = [run]
    if not run:
        raise TinyVocError('RUN is an empty list: give one run ("best" or a name) or several to fuse')
    pairs = []
    for entry in run:
        name, _, which = str(entry).strip().partition(":")
        if which and which not in CHECKPOINTS:
            raise TinyVocError(f"RUN entry {entry!r}: the part after ':' is best or final, not {which!r}")
        pairs.append((name, which or checkpoint))
    return pairs


def checkout() -> Path | None:
    """The repository the notebooks are in: the package's own (an editable install), else the current folder
    when it is a clone; None when neither holds them (a wheel installed elsewhere, as on Colab).

    Colab installs the package from ``REPO_URL`` into site-packages, where no notebook is beside it;
    the local setup installs it editable, and then the repo's own ``notebooks/`` is right there.
    """
    for root in (_PACKAGE_DIR.parents[1], Path.cwd()):
        if (root / "notebooks" / NOTEBOOKS[0]).is_file():
            return root
    return None


def packaged_notebooks() -> Path:
    """Where a built wheel carries the notebooks (``tinyvoc/notebooks/``, copied there by setup.py's build step)."""
    return _PACKAGE_DIR / "notebooks"


def notebooks_dir() -> Path:
    """The notebooks the CLI executes: the checkout's ``notebooks/``, else the copies the installed wheel carries."""
    root = checkout()
    if root is not None:
        return root / "notebooks"
    if (packaged_notebooks() / NOTEBOOKS[0]).is_file():
        return packaged_notebooks()
    raise TinyVocError(
        f"the notebooks are neither in this installed package ({packaged_notebooks()}) nor in a checkout here; "
        "install the package from a wheel or from git (pip install git+<REPO_URL>), or run from a clone"
    )


@dataclass(frozen=True)
class DataFiles:
    """Where one copy of the dataset lives (``data/``, a mounted Drive folder, the sample, or your own export).

    The course's data always has all four. Your own export (``dataset.own_data``) has a training json and
    its images folder, a validation json when the export has one (Roboflow's ``valid/``), and a test json
    and its images only when it has a test set; ``None`` otherwise.
    """

    train_json: Path
    train_images: Path
    test_json: Path | None
    test_images: Path | None
    val_json: Path | None = None

    @classmethod
    def in_folder(cls, folder: str | os.PathLike) -> DataFiles:
        folder = Path(folder)
        return cls(folder / TRAIN_JSON, folder / TRAIN_IMAGES, folder / TEST_JSON, folder / TEST_IMAGES)

    def missing(self) -> list[Path]:
        every = (self.train_json, self.train_images, self.test_json, self.test_images, self.val_json)
        return [p for p in every if p is not None and not Path(p).exists()]


@dataclass(frozen=True)
class Outputs:
    """The artifact layout under one output folder, and the data folder its records are relative to.

    ``data_dir`` is where this runtime reads the dataset (on Colab a local copy of the project's
    data); paths in ``dataset.json`` that are relative resolve against it.
    """

    root: Path
    data_dir: Path

    @classmethod
    def at(cls, root: str | os.PathLike, data_dir: str | os.PathLike | None = None) -> Outputs:
        """The layout under ``root`` (absolute paths; ``data_dir`` defaults to ``root``'s sibling ``data/``)."""
        root = Path(os.path.abspath(root))
        return cls(root, Path(os.path.abspath(data_dir)) if data_dir else root.parent / "data")

    # written by 01_register_dataset
    @property
    def dataset_record(self) -> Path:
        return self.root / "dataset.json"

    @property
    def split_dir(self) -> Path:
        return self.root / "splits"

    # written by 02_train: one folder per run (training.runs names them)
    @property
    def runs_dir(self) -> Path:
        """``output/runs``: every training run in its own folder (TensorBoard's ``--logdir``: one line per run)."""
        return self.root / "runs"

    def run(self, name: str) -> TrainFiles:
        """The files of the run called ``name`` (``output/runs/<name>/``)."""
        return TrainFiles(self.runs_dir / name)

    @property
    def legacy_train_dir(self) -> Path:
        """Where the one run of a project made before runs had names lives (``training.runs`` moves it)."""
        return self.root / "train"

    # written by 03/04: the prediction caches, one folder per run
    @property
    def predictions_dir(self) -> Path:
        return self.root / "predictions"

    def predictions_for(self, run: str) -> Path:
        """The prediction caches of one run: switching runs never predicts a run again."""
        return self.predictions_dir / run

    @property
    def fused_predictions_dir(self) -> Path:
        """The caches of fusions of runs (``RUN`` a list in 03 and 04), beside the runs' own; no run is named
        ``fused`` (``training.recipe.RESERVED``)."""
        return self.predictions_dir / "fused"

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

    def metrics_of(self, split: str) -> Path:
        """A split's scores: ``val_metrics.json`` (04), ``test_metrics.json`` for a labelled test set."""
        return self.root / f"{split}_metrics.json"

    # written by 04 and ``tinyvoc predict``: the predictions in the forms other tools read (issue 36)
    @property
    def prelabels_dir(self) -> Path:
        """``prelabels/<split>.json``: COCO datasets of the kept detections, for a labelling tool."""
        return self.root / "prelabels"

    @property
    def masks_dir(self) -> Path:
        """``masks/<split>/<image>.png``: 16-bit instance ids, a json of the instances beside each."""
        return self.root / "masks"

    @property
    def overlays_dir(self) -> Path:
        """``overlays/<split>/<image>.jpg``: the kept detections drawn on each image."""
        return self.root / "overlays"

    @property
    def predict_dir(self) -> Path:
        """``tinyvoc predict`` and 03's ``PREDICT_IMAGES``: new images' results, masks, overlays, pre-labels."""
        return self.root / "predict"

    @property
    def predictions_zip(self) -> Path:
        """All of the above and the submission in one file, for a download."""
        return self.root / "predictions.zip"

    @property
    def submission(self) -> Path:
        return self.root / "submission.json"

    @property
    def submission_source(self) -> Path:
        """Which run, checkpoint and selection made ``submission.json`` (it stays a plain list: other tools read it)."""
        return self.root / "submission_source.json"

    @property
    def executed_notebooks(self) -> Path:
        return self.root / "notebooks"


@dataclass(frozen=True)
class TrainFiles:
    """The files in one training run's folder (``output/runs/<name>/``), by name.

    The trainer is handed only ``cfg.OUTPUT_DIR`` (as detectron2's own tools are), so the names
    live here and both it and :class:`Outputs` derive their paths from this one place.
    """

    dir: Path

    @property
    def name(self) -> str:
        """The run's name: its folder's."""
        return self.dir.name

    @property
    def recipe(self) -> Path:
        """The settings the run was asked for (profile, OPTS, MAX_ITER, ...): the runs table's recipe column."""
        return self.dir / "recipe.json"

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
        return self.log_for(0)

    def log_for(self, rank: int) -> Path:
        """The detectron2 log of one training worker: ``log.txt`` for rank 0 (the one a single process writes)."""
        return self.dir / ("log.txt" if rank == 0 else f"log_rank{rank}.txt")

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
