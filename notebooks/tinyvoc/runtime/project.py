"""The project folder, and ``start``: what the first cell of every notebook does, in seconds once done.

One parameter, ``PROJECT_DIR``, names the folder that holds ``data/`` and ``output/``. On Colab it
defaults to ``MyDrive/tinyvoc`` on Google Drive, because Colab gives every notebook its own runtime
and only Drive survives from one notebook (or disconnect) to the next; elsewhere it defaults to the
checkout the package is installed from. ``start`` then makes the runtime ready: mount Drive (Colab),
install detectron2 when missing, and put the dataset on the runtime's local disk. Nothing falls back
silently: a path on an unmounted Drive, a relative path, or a package installed from another
``REPO_REF`` stops with a message before anything is written.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from ..core.errors import TinyVocError
from ..core.paths import Outputs, checkout
from . import colab, local_data
from .quiet import quiet_known_warnings

COLAB_PROJECT = "tinyvoc"  # the folder in MyDrive
# The one place for the repository the notebooks install on Colab; every notebook's parameters cell and
# the README's badges must agree with these (tests/runtime/test_project.py checks).
REPO_URL = "https://github.com/tinyvoc/tinyvoc-detectron2.git"
REPO_REF = "main"  # pin a release tag here when one exists
# The first code cell of all five notebooks, after the parameters cell (tests/runtime/test_project.py checks).
# Colab opens a notebook alone in a new runtime: the helper package is pip-installed there from REPO_URL at
# REPO_REF; where it is installed already (the local setup's editable install, or a re-run), the cell
# only imports it. `start` stops when the installed package came from another REPO_REF. DETECTRON2_METHOD, in every
# parameters cell, is how `start` installs detectron2 ("git" is the way out when the wheel cannot be downloaded).
FIRST_CELL = """\
import importlib.util  # the same first cell in all five notebooks

if importlib.util.find_spec("tinyvoc") is None:  # Colab: install the helper package from REPO_URL at REPO_REF, once
    %pip install -q "git+{REPO_URL}@{REPO_REF}"
project = importlib.import_module("tinyvoc").start(PROJECT_DIR, REPO_REF, DETECTRON2_METHOD)  # Drive/detectron2/data"""


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
    """``PROJECT_DIR`` as an absolute path: the default for this platform when empty, never relative.

    The default off Colab is the checkout the package is installed from (``make setup`` installs it
    editable); a package installed without one uses the current folder.
    """
    on_colab = colab.on_colab() if on_colab is None else on_colab
    if not project_dir:
        return colab.my_drive() / COLAB_PROJECT if on_colab else (checkout() or Path.cwd())
    if not os.path.isabs(project_dir):
        raise TinyVocError(
            f"PROJECT_DIR {project_dir!r} is a relative path; give an absolute one (on Colab e.g. "
            f"'{colab.my_drive() / COLAB_PROJECT}'), or leave it empty for the default. Nothing was written."
        )
    return Path(project_dir)


def installed_ref() -> str | None:
    """The git ref pip installed this package from (PEP 610's direct_url.json); None for a checkout or a wheel."""
    try:
        direct_url = metadata.distribution("tinyvoc").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    vcs = json.loads(direct_url or "{}").get("vcs_info") or {}
    return vcs.get("requested_revision") or vcs.get("commit_id")


def require_ref(repo_ref: str | None) -> None:
    """Stop when the runtime's package was installed from another ref than the notebook's ``REPO_REF``."""
    installed = installed_ref()
    if repo_ref and installed and repo_ref != installed:
        raise TinyVocError(
            f"this runtime's tinyvoc package was installed from {installed!r}, but REPO_REF is {repo_ref!r}. "
            "On Colab: Runtime > Disconnect and delete runtime, then run the notebook again (the first cell installs "
            f"REPO_REF), or set REPO_REF = {installed!r}."
        )


def start(
    project_dir: str = "", repo_ref: str | None = None, detectron2_method: str = "wheel", install: bool = True
) -> Project:
    """What every notebook does first: mount Drive (Colab), install detectron2 when missing, make the data local.

    ``detectron2_method`` is the notebook's ``DETECTRON2_METHOD`` (``runtime.detectron2_install``):
    ``"wheel"`` in seconds, ``"git"`` the upstream build, also the way out when the wheel cannot be downloaded.
    """
    from .detectron2_install import ensure_detectron2

    started = time.perf_counter()
    require_ref(repo_ref)
    on_colab = colab.on_colab()
    root = project_root(project_dir, on_colab)
    if on_colab and colab.under_mount(root):
        colab.mount()
    colab.require_mounted(root, "PROJECT_DIR")
    quiet_known_warnings()
    if install:
        done = ensure_detectron2(detectron2_method)
        if not done.startswith("detectron2 already"):
            print(done)
    from detectron2.utils.logger import setup_logger

    setup_logger(name="detectron2", abbrev_name="d2")
    data_dir = colab.local_data_dir() if on_colab else root / "data"
    project = Project(root, data_dir, on_colab)
    if local_data.present(project.stored_data):
        local_data.make_local(project.stored_data, data_dir)
    where = "Colab, Drive mounted" if on_colab else "local"
    print(f"project: {root} ({where}); data read from {data_dir}; ready in {time.perf_counter() - started:.1f} s")
    return project
