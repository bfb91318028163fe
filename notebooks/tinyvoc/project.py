"""The project folder and the first cell of every notebook: the same setup, in seconds once done.

One parameter, ``PROJECT_DIR``, names the folder that holds ``data/`` and ``output/``. On Colab it
defaults to ``MyDrive/tinyvoc`` on Google Drive, because Colab gives every notebook its own runtime
and only Drive survives from one notebook (or disconnect) to the next; elsewhere it defaults to
this repository. ``start`` then makes the runtime ready: mount Drive (Colab), install what is
missing and detectron2, and put the dataset on the runtime's local disk. Nothing falls back
silently: a path on an unmounted Drive, a relative path, or missing data on Colab stops with a
message before anything is written.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from . import colab, local_data
from .dataset import DataFiles
from .errors import TinyVocError
from .paths import DEFAULT_DATA_DIR, REPO_ROOT, Outputs

COLAB_PROJECT = "tinyvoc"  # the folder in MyDrive
# The one place for the repository the notebooks fetch on Colab; every notebook's parameters cell and
# the README's badges must agree with these (tests/test_colab.py checks).
REPO_URL = "https://github.com/tinyvoc/tinyvoc-detectron2.git"
REPO_REF = "main"  # pin a release tag here when one exists
BOOTSTRAP = """\
# The same first cell in every notebook. Opened alone (Colab): fetch the repo into this runtime.
import os
import subprocess
import sys

if not os.path.isdir("tinyvoc"):
    if not os.path.isdir("tinyvoc-detectron2"):
        subprocess.run(["git", "clone", "-q", REPO_URL, "tinyvoc-detectron2"], check=True)
        subprocess.run(["git", "-C", "tinyvoc-detectron2", "checkout", "-q", REPO_REF], check=True)
    os.chdir("tinyvoc-detectron2/notebooks")
sys.path.insert(0, os.getcwd())
from tinyvoc.project import start  # noqa: E402

project = start(PROJECT_DIR)  # Colab: mount Drive, install what is missing, copy the data to this runtime"""


@dataclass(frozen=True)
class Project:
    """Where this runtime finds the project: its folder, the data it reads, and whether it is Colab."""

    root: Path
    data_dir: Path  # where this runtime reads the data: a local copy on Colab, root/data elsewhere
    on_colab: bool

    @property
    def stored_data(self) -> Path:
        """The project's own data folder (on Drive on Colab): where downloads and uploads go."""
        return self.root / "data"

    @property
    def outputs(self) -> Outputs:
        return Outputs.at(self.root / "output", self.data_dir)


def project_root(project_dir: str = "", on_colab: bool | None = None) -> Path:
    """``PROJECT_DIR`` as an absolute path: the default for this platform when empty, never relative."""
    on_colab = colab.on_colab() if on_colab is None else on_colab
    if not project_dir:
        return colab.my_drive() / COLAB_PROJECT if on_colab else REPO_ROOT
    if not os.path.isabs(project_dir):
        raise TinyVocError(
            f"PROJECT_DIR {project_dir!r} is a relative path; give an absolute one (on Colab e.g. "
            f"'{colab.my_drive() / COLAB_PROJECT}'), or leave it empty for the default. Nothing was written."
        )
    return Path(project_dir)


def quiet_known_warnings() -> None:
    """Keep known-harmless library warnings (torch.jit, detectron2/fvcore deprecations) out of the cells."""
    for category in (FutureWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category)
    warnings.filterwarnings("ignore", message=r".*(torch\.meshgrid|TypedStorage|weights_only).*")
    logging.getLogger("fvcore.common.checkpoint").setLevel(logging.WARNING)
    # "Category ids in annotations are not in [1, #categories]! We'll apply a mapping": expected, the
    # dataset's ids are mapped by dataset.ClassMap; and register_all reports the split sizes itself
    logging.getLogger("detectron2.data.datasets.coco").setLevel(logging.ERROR)
    # torch 2.14 logs "is_fx_tracing will return true for both ..." once per process when detectron2's
    # layers ask whether they are being traced: a notice to library authors, nothing for the user
    logging.getLogger("torch.fx._symbolic_trace").setLevel(logging.ERROR)


def start(project_dir: str = "", install: bool = True) -> Project:
    """What every notebook does first: mount Drive (Colab), install what is missing, make the data local."""
    started = time.perf_counter()
    on_colab = colab.on_colab()
    root = project_root(project_dir, on_colab)
    if on_colab and colab.under_mount(root):
        colab.mount()
    colab.require_mounted(root, "PROJECT_DIR")
    quiet_known_warnings()
    if install:
        from .environment import ensure_requirements
        from .install import ensure_detectron2

        for done in (ensure_requirements(), ensure_detectron2()):
            if not done.startswith(("all required", "detectron2 already")):
                print(done)
    from detectron2.utils.logger import setup_logger

    setup_logger(name="detectron2", abbrev_name="d2")
    data_dir = DEFAULT_DATA_DIR if on_colab else root / "data"
    project = Project(root, data_dir, on_colab)
    if local_data.present(project.stored_data):
        local_data.make_local(project.stored_data, data_dir)
    where = "Colab, Drive mounted" if on_colab else "local"
    print(f"project: {root} ({where}); data read from {data_dir}; ready in {time.perf_counter() - started:.1f} s")
    return project


def dataset_files(project: Project, dataset: str = "auto", download: bool = True) -> tuple[DataFiles, str]:
    """Pick the data notebook 01 registers: ``tinyvoc`` (the project's data), ``sample``, or ``auto``.

    ``sample`` (the generated dataset) only when asked for by name, except off Colab, where ``auto``
    with no data uses it and says so. On Colab missing data is downloaded into the project folder
    when ``download`` is on (the course files, by Drive file id), else the notebook stops.
    """
    if dataset not in ("auto", "tinyvoc", "sample"):
        raise TinyVocError(f"unknown DATASET {dataset!r}; use 'auto', 'tinyvoc' or 'sample'")
    if dataset == "sample":
        from .sample_data import make_sample_dataset

        return DataFiles.in_folder(make_sample_dataset(project.data_dir / "sample")), "sample"
    if not local_data.present(project.stored_data):
        if dataset == "auto" and not project.on_colab:
            print(f"No Tiny VOC files in {project.stored_data}: using the built-in sample dataset (data/README.md).")
            return dataset_files(project, "sample")
        if not download:
            raise TinyVocError(
                f"Tiny VOC files not found in {project.stored_data}: put pascal_train.json, test.json, "
                "train_images.zip (or train_images/) and test_images.zip (or test_images/) there, or set "
                "DOWNLOAD_DATA = True; DATASET = 'sample' trains on the generated sample instead. Nothing was written."
            )
        from .download import fetch_course_files

        fetch_course_files(project.stored_data)
    return local_data.make_local(project.stored_data, project.data_dir), "tinyvoc"
