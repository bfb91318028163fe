"""Kaggle's session: whether the notebook runs on Kaggle, how, and the folders a session has.

A Kaggle notebook runs in a session of its own. Only ``/kaggle/working`` (20 GB) is kept, as that
notebook's saved output; datasets and other notebooks' outputs are attached read-only under
``/kaggle/input/<slug>/`` ("Add Input"); the scratch disk (``tempfile.gettempdir()``) is never saved.
Every other module of this package asks here where those are, so the layout is stated once.

The root is read from ``TINYVOC_KAGGLE_ROOT`` (default ``/kaggle``), which lets the tests stand a
temporary folder in for Kaggle's.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

RUN_TYPE_ENV = "KAGGLE_KERNEL_RUN_TYPE"  # set by Kaggle: "Interactive" in the editor, "Batch" for a saved version
ROOT_ENV = "TINYVOC_KAGGLE_ROOT"
DEFAULT_ROOT = "/kaggle"
# What to attach, in Kaggle's words, for each thing a notebook may lack.
ATTACH_DATA = (
    "Add Input > Datasets > Your Datasets > the dataset holding pascal_train.json, test.json, train_images(.zip) "
    "and test_images(.zip) (upload those four files once as a Kaggle dataset)"
)


def attach_output(notebook: str) -> str:
    return f"Add Input > Your Work > the notebook in which you ran {notebook} (its saved output)"


def run_type() -> str | None:
    """Kaggle's run type: ``Interactive`` (the editor), ``Batch`` ("Save Version"); None off Kaggle."""
    return os.environ.get(RUN_TYPE_ENV) or None


def on_kaggle() -> bool:
    return run_type() is not None


def is_batch() -> bool:
    """True in a "Save Version" run: headless, up to 12 hours, nobody to answer a prompt."""
    return run_type() == "Batch"


def root() -> Path:
    return Path(os.path.abspath(os.environ.get(ROOT_ENV) or DEFAULT_ROOT))


def input_root() -> Path:
    """Where Kaggle attaches datasets and notebook outputs, read-only."""
    return root() / "input"


def working_dir() -> Path:
    """What Kaggle saves as the notebook's output (20 GB): the project lives here."""
    return root() / "working"


def scratch_data_dir() -> Path:
    """The session's local copy of the data: on the scratch disk, never saved, never an input."""
    return Path(tempfile.gettempdir()) / "tinyvoc-data"
