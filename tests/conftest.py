"""Shared test setup: where the real Tiny VOC files are, and a briefly trained model on the sample.

The package is imported as installed (``make setup`` installs it editable), never from a path added
here. ``tests/`` mirrors the package's stages (``core``, ``runtime``, ``dataset``, ``training``,
``inference``, ``submission``, ``visualize``); the end-to-end runs (the main job, the Colab simulation,
the real files, interruptions and odd files across stages) sit at the top.
"""

import importlib.util
import shutil
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "tinyvoc"  # the course's real files, beside the repo (../shared/tinyvoc)
COLAB_DOUBLE = Path(__file__).parent / "colab_double" / "google" / "colab"  # stands for Colab's google.colab


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*")) if path.exists() else []


@pytest.fixture
def drive(tmp_path, monkeypatch):
    """A mount point in tmp_path (not mounted yet) and the folder that stands for Google Drive."""
    from tinyvoc.runtime import colab

    mount = tmp_path / "content" / "drive"
    fake = tmp_path / "fake-drive"
    (fake / "MyDrive").mkdir(parents=True)
    monkeypatch.setenv(colab.MOUNT_ENV, str(mount))
    monkeypatch.delenv("TINYVOC_FAKE_DRIVE", raising=False)
    return mount, fake


@pytest.fixture
def on_colab(monkeypatch):
    """``google.colab`` importable, as in a Colab runtime: the test double, loaded from its files into
    ``sys.modules`` for this test (the import path itself is left alone)."""
    from tinyvoc.runtime import colab

    def load(name, path, **kwargs):
        spec = importlib.util.spec_from_file_location(name, path, **kwargs)
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(__import__("sys").modules, name, module)
        spec.loader.exec_module(module)
        return module

    package = load("google.colab", COLAB_DOUBLE / "__init__.py", submodule_search_locations=[str(COLAB_DOUBLE)])
    package.drive = load("google.colab.drive", COLAB_DOUBLE / "drive.py")
    assert colab.on_colab()


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """The built-in sample dataset, written once per test module."""
    from tinyvoc.dataset.sample import make_sample_dataset

    return make_sample_dataset(tmp_path_factory.mktemp("sample"))


def zip_folder(folder: Path, archive: Path, top: str | None = None) -> Path:
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.iterdir()):
            zf.write(path, f"{top}/{path.name}" if top else path.name)
    return archive


@pytest.fixture
def put_on_drive():
    """Copy a dataset folder as a user uploads it: the two json files and the two image folders zipped."""

    def put(sample: Path, data: Path) -> None:
        data.mkdir(parents=True)
        for name in ("pascal_train.json", "test.json"):
            shutil.copy(sample / name, data / name)
        zip_folder(sample / "train_images", data / "train_images.zip", top="train_images")
        zip_folder(sample / "test_images", data / "test_images.zip")  # flat zip: both layouts are accepted

    return put


@pytest.fixture(scope="session")
def shared_tinyvoc() -> Path:
    """The course's real files beside the repo; tests that need them skip (with the reason) when absent."""
    if not (SHARED / "test.json").exists():
        pytest.skip(f"real Tiny VOC files not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def trained_sample(tmp_path_factory):
    """An output folder with the sample registered and a briefly trained smoke model (no validation)."""
    from tinyvoc.core.paths import DataFiles, Outputs
    from tinyvoc.dataset.record import prepare_dataset
    from tinyvoc.dataset.sample import make_sample_dataset
    from tinyvoc.training.train import train

    sample = make_sample_dataset(tmp_path_factory.mktemp("sample"))
    outputs = Outputs.at(tmp_path_factory.mktemp("trained"))
    prepare_dataset(DataFiles.in_folder(sample), outputs, "sample", val_fraction=0.2, seed=0)
    train(outputs, "smoke", max_iter=40, overrides=["TEST.EVAL_PERIOD", 0])
    return outputs
