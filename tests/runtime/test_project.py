"""Colab without surprises, the runtime side: one project folder, no silent fallbacks, one first cell.

Each "stops" test checks the message and that nothing was written. Colab is stood in for by the
test double in ``tests/colab_double`` (``google.colab`` importable, ``drive.mount`` exposing a
temporary folder) and ``TINYVOC_DRIVE_MOUNT`` pointing the mount point into ``tmp_path``.
"""

import re

import nbformat
import pytest

from tinyvoc.cli import main as cli
from tinyvoc.core.errors import TinyVocError
from tinyvoc.core.paths import NOTEBOOKS, Outputs, checkout, notebooks_dir
from tinyvoc.runtime import colab, project


def files_under(path):
    return sorted(path.rglob("*")) if path.exists() else []


# --- no silent fallbacks -------------------------------------------------------------------------


def test_not_colab_without_the_package():
    assert not colab.on_colab()


def test_project_on_unmounted_drive_stops_off_colab(drive):
    mount, _ = drive
    with pytest.raises(TinyVocError, match=r"is on Google Drive .* but Drive is not mounted\. Nothing was written"):
        project.start(str(mount / "MyDrive" / "tinyvoc"), install=False)
    assert not mount.exists()


def test_output_folder_on_unmounted_drive_stops_in_the_cli_and_outputs_write_nothing(drive, capsys):
    mount, _ = drive
    outputs = Outputs.at(mount / "MyDrive" / "out" / "output")  # a layout of paths: no folder, no Drive check
    assert outputs.train.dir == mount / "MyDrive" / "out" / "output" / "train" and not mount.exists()
    assert cli(["export", "--project-dir", str(mount / "MyDrive" / "out")]) == 1
    assert re.search(r"PROJECT_DIR .* is on Google Drive .* but Drive is not mounted", capsys.readouterr().err)
    assert not mount.exists()


def test_drive_that_does_not_mount_stops_on_colab(drive, on_colab):
    mount, _ = drive  # no TINYVOC_FAKE_DRIVE: the double refuses, as Colab does when access is not allowed
    with pytest.raises(ValueError, match="mount failed"):
        project.start("", install=False)
    assert not mount.exists()


def test_relative_project_dir_stops(drive, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TinyVocError, match="PROJECT_DIR 'tinyvoc' is a relative path"):
        project.start("tinyvoc", install=False)
    assert not (tmp_path / "tinyvoc").exists()


def test_colab_default_project_is_on_drive_and_mounts_it(drive, on_colab, monkeypatch):
    mount, fake = drive
    monkeypatch.setenv("TINYVOC_FAKE_DRIVE", str(fake))
    proj = project.start("", install=False)
    assert proj.root == mount / "MyDrive" / "tinyvoc" and proj.on_colab and colab.drive_mounted()
    assert proj.data_dir == mount.parent / "tinyvoc-data"  # the runtime's local disk, not Drive


# --- the notebooks -------------------------------------------------------------------------------


def notebook(name):
    return nbformat.read(notebooks_dir() / name, as_version=4)


def test_every_notebook_starts_with_the_same_setup_cell_and_repo():
    for name in NOTEBOOKS:
        cells = [c for c in notebook(name).cells if c.cell_type == "code"]
        assert "parameters" in cells[0].metadata.get("tags", []), name
        params = cells[0].source
        assert f'REPO_URL = "{project.REPO_URL}"' in params and f'REPO_REF = "{project.REPO_REF}"' in params, name
        assert 'PROJECT_DIR = ""' in params and "OUTPUT_DIR" not in params and "DATA_DIR" not in params, name
        assert cells[1].source == project.FIRST_CELL, f"{name}: first cell differs from runtime.project.FIRST_CELL"
        assert len(cells[1].source.splitlines()) <= 9, name  # install (git, or an attached wheelhouse), then start


def test_readme_badges_point_to_the_same_repo():
    owner_repo = re.fullmatch(r"https://github.com/(.+)\.git", project.REPO_URL).group(1)
    readme = (checkout() / "README.md").read_text()
    badges = re.findall(r"colab.research.google.com/github/([^/]+/[^/]+)/blob/([^/]+)/", readme)
    assert len(badges) == 5 and set(badges) == {(owner_repo, project.REPO_REF)}


def test_only_the_notebooks_that_use_it_ask_for_a_gpu():
    asks = {name: notebook(name).metadata.get("accelerator") == "GPU" for name in NOTEBOOKS}
    assert asks == {n: n[:2] in ("02", "03", "04") for n in NOTEBOOKS}


def test_every_cli_flag_is_a_parameter_a_notebook_declares():
    """papermill passes only what a notebook declares, and skips a line it cannot parse without failing."""
    from tinyvoc.cli import FLAGS
    from tinyvoc.runner import declared_parameters

    declared = set().union(*(declared_parameters(notebooks_dir() / name) for name in NOTEBOOKS))
    assert {name for name, _, _ in FLAGS.values()} <= declared
    train = declared_parameters(notebooks_dir() / "02_train.ipynb")
    assert {"NUM_GPUS", "NUM_MACHINES", "MACHINE_RANK", "DIST_URL", "IMS_PER_BATCH"} <= train
