"""The project folder, and ``start``: what the start cell of every notebook does, in seconds once done.

One parameter, ``PROJECT_DIR``, names the folder that holds ``data/`` and ``output/``. On Colab it
defaults to ``MyDrive/tinyvoc`` on Google Drive, because Colab gives every notebook its own runtime
and only Drive survives from one notebook (or disconnect) to the next; on Kaggle to ``/kaggle/working``,
which Kaggle saves as the notebook's output (the data is read from the attached inputs, ``runtime.kaggle``);
elsewhere to the checkout the package is installed from. ``start`` then makes the runtime ready: mount
Drive (Colab), install detectron2 when missing, and put the dataset on the runtime's local disk. Nothing falls back
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
from ..core.settings import default
from . import colab, kaggle, local_data
from .quiet import quiet_known_warnings
from .wheelhouse import INDEX as WHEELHOUSE_INDEX

# What the first cell prints when the package cannot be installed (docs/kaggle.md says more).
NO_NETWORK = "Turn Internet on or add a tinyvoc wheelhouse"  # Kaggle: notebook Settings; Add Input

COLAB_PROJECT = "tinyvoc"  # the folder in MyDrive
# The repository the notebooks install on Colab and Kaggle, declared with every other setting (core/settings.py: pin
# a release tag there when one exists); the README's badges must agree (tests/runtime/test_project.py checks).
REPO_URL, REPO_REF = default("REPO_URL"), default("REPO_REF")
# The two cells after the parameters cell, the same in all five notebooks (tests/runtime/test_project.py checks).
# FIRST_CELL installs the helper package. Colab and Kaggle open a notebook alone in a new runtime, so it is
# pip-installed there from REPO_URL at REPO_REF; where it is installed already (the local setup's editable install,
# or a re-run) nothing happens. Kaggle starts with Internet off: an attached `tinyvoc wheelhouse` dataset (its index
# file, found under Kaggle's inputs, seen from /kaggle/working as ../input) is installed from instead; with neither,
# pip's error ends with one line saying what to do. IPython expands the `{...}` in the %pip line as Python (7.34, the
# version on Colab and Kaggle, too), and the line runs in a shell, hence `||`.
FIRST_CELL = f"""\
from glob import glob  # the same first cell in all five notebooks: install the helper package, once per runtime
from importlib.util import find_spec

if find_spec("tinyvoc") is None:  # Colab and Kaggle: from GitHub; Kaggle with Internet off: an attached wheelhouse
    found = [f"--no-index -f {{h[:-{len(WHEELHOUSE_INDEX)}]}} tinyvoc detectron2" for h in glob("../input/**/{WHEELHOUSE_INDEX}", recursive=True)]
    %pip install -q {{(found + [f"git+{{REPO_URL}}@{{REPO_REF}}"])[0]}} || echo "{NO_NETWORK}\""""  # noqa: E501
# START_CELL readies the project: Drive on Colab, detectron2 (DETECTRON2_METHOD, in every parameters cell: "git" is
# the way out when the wheel cannot be downloaded), the data. It stops when the installed package came from another
# REPO_REF.
START_CELL = """\
from tinyvoc import start  # "No module named 'tinyvoc'": the cell above could not install it (its last line says why)

project = start(PROJECT_DIR, REPO_REF, DETECTRON2_METHOD)  # Drive on Colab, detectron2, the data; seconds once done"""


@dataclass(frozen=True)
class Project:
    """Where this runtime finds the project: its folder, the data it reads, and whether it is Colab."""

    root: Path
    data_dir: Path  # where this runtime reads the data: a local copy on Colab and Kaggle, root/data elsewhere
    on_colab: bool
    on_kaggle: bool = False

    @property
    def hosted(self) -> bool:
        """Colab or Kaggle: a runtime with a GPU and no course files of its own, where missing data is fetched."""
        return self.on_colab or self.on_kaggle

    @property
    def stored_data(self) -> Path:
        """The project's own data folder (on Drive on Colab): where downloads and uploads go.

        On Kaggle the session's scratch copy (made from the attached inputs, or downloaded there): never under
        ``/kaggle/working``, whose every file is saved with the notebook's output.
        """
        return self.data_dir if self.on_kaggle else self.root / "data"

    @property
    def outputs(self) -> Outputs:
        return Outputs.at(self.root / "output", self.data_dir)


def project_root(project_dir: str = "", on_colab: bool | None = None) -> Path:
    """``PROJECT_DIR`` as an absolute path: the default for this platform when empty, never relative.

    The default on Kaggle is ``/kaggle/working`` (what Kaggle saves); elsewhere off Colab it is the checkout
    the package is installed from (``make setup`` installs it editable); a package installed without one uses
    the current folder.
    """
    on_colab = colab.on_colab() if on_colab is None else on_colab
    if not project_dir:
        if on_colab:
            return colab.my_drive() / COLAB_PROJECT
        return kaggle.working_dir() if kaggle.on_kaggle() else (checkout() or Path.cwd())
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
            "On Colab: Runtime > Disconnect and delete runtime, then run the notebook again (its first cell "
            f"installs REPO_REF), or set REPO_REF = {installed!r}."
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
    on_kaggle = kaggle.on_kaggle() and not on_colab
    if on_kaggle:
        project = Project(root, kaggle.scratch_data_dir(), False, on_kaggle=True)
        found = kaggle.find_course_files()
        if found:
            kaggle.stage_course_files(found, project.data_dir)
    else:
        project = Project(root, colab.local_data_dir() if on_colab else root / "data", on_colab)
        if local_data.present(project.stored_data):
            local_data.make_local(project.stored_data, project.data_dir)
    data_dir = project.data_dir
    where = "Colab, Drive mounted" if on_colab else f"Kaggle, {kaggle.run_type()}" if on_kaggle else "local"
    print(f"project: {root} ({where}); data read from {data_dir}; ready in {time.perf_counter() - started:.1f} s")
    return project
