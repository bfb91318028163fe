"""Shared test setup: where the real Tiny VOC files are, and a briefly trained model on the sample.

The package is imported as installed (``make setup`` installs it editable), never from a path added
here. ``tests/`` mirrors the package's stages (``core``, ``runtime``, ``dataset``, ``training``,
``inference``, ``submission``, ``visualize``); the end-to-end runs (the main job, the Colab simulation,
the real files, interruptions and odd files across stages) sit at the top.
"""

import importlib.metadata as md
import importlib.util
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

# Threads under load (benchmarks/bench_threads.py, results in benchmarks/results/threads.txt): on 2 cores this run
# shares the machine with its own training workers, notebook kernels and simulated runtimes, and often with another
# job. OpenMP threads that spin while they wait hold a core another process needs; passive waiting costs nothing
# alone and keeps a neighbour's step near its quiet time. Set before torch loads here, inherited by every process
# the tests start; a value already set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

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


# --- made once per session, shared by the simulations and the packaging tests (each only reads them) ----------

KAGGLE_LACKS = {"tinyvoc", "detectron2", "fvcore", "iopath", "yacs", "hydra-core", "black", "portalocker"}


def _norm(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


@pytest.fixture(scope="session")
def repo_snapshot(tmp_path_factory) -> tuple[str, str]:
    """This working tree (committed or not) as a git repository standing for GitHub: its ``file://`` URL and
    commit, the ``REPO_URL``/``REPO_REF`` the simulated Colab and Kaggle runtimes pip-install the package from."""
    from tinyvoc.core.paths import checkout

    repo, target = checkout(), tmp_path_factory.mktemp("github")
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=repo, capture_output=True, check=True
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        if (repo / rel).is_file():
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo / rel, target / rel)
    git = ["git", "-C", str(target), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "snapshot"], check=True)
    ref = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    return f"file://{target}", ref


@pytest.fixture(scope="session")
def pip_cache(tmp_path_factory) -> Path:
    """pip's cache for every simulated runtime: stands for Colab's and Kaggle's fast network (downloads, and the
    package's wheel built once for the snapshot's commit), never for a preinstalled package."""
    return tmp_path_factory.mktemp("pip-cache")


@pytest.fixture(scope="session")
def kaggle_like_image(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """Links to this venv's distributions that Kaggle's image has (its published list, ``kaggle_image.txt``), with
    what they need as installed here (this venv's torch wants its own CUDA wheels, not Kaggle's), less what
    Kaggle lacks: a folder for a venv's ``.pth`` and the versions (the wheelhouse leaves those out)."""
    from tinyvoc.runtime import wheelhouse

    target = tmp_path_factory.mktemp("kaggle-image")
    site = Path(md.distribution("torch")._path).parent  # noqa: SLF001 - the venv's site-packages
    installed = {_norm(d.metadata["Name"]): d for d in md.distributions() if Path(d._path).parent == site}  # noqa: SLF001
    wanted = [(name, frozenset()) for name in installed if name in wheelhouse.kaggle_image()]
    chosen, seen = {}, set()
    while wanted:
        name, extras = wanted.pop()
        if (name, extras) in seen or name in KAGGLE_LACKS:
            continue
        seen.add((name, extras))
        chosen[name] = installed[name]
        for requirement in map(Requirement, installed[name].requires or []):
            marker = requirement.marker
            if _norm(requirement.name) in installed and (
                marker is None or any(marker.evaluate({"extra": e}) for e in ("", *extras))
            ):
                wanted.append((_norm(requirement.name), frozenset(requirement.extras)))
    for dist in chosen.values():
        tops = {Path(dist._path).name}  # noqa: SLF001
        for file in dist.files or []:
            first = file.parts[0]
            if first not in ("..", "__pycache__") and not first.endswith(".pth"):
                tops.add(first)
        for top in tops:
            if (site / top).exists() and not (target / top).exists():
                (target / top).symlink_to(site / top)
    return target, {name: dist.version.split("+", 1)[0] for name, dist in chosen.items()}


@pytest.fixture(scope="session")
def offline_wheelhouse(tmp_path_factory, kaggle_like_image):
    """``tinyvoc wheelhouse`` for this Python against the Kaggle-like image, built once: its folder and entries.
    Read by the wheelhouse tests, the built-package test and the Kaggle simulation's offline session."""
    from tinyvoc.runtime import wheelhouse

    house = tmp_path_factory.mktemp("wheelhouse") / "house"
    entries = wheelhouse.build_wheelhouse(house, wheelhouse.current_python(), kaggle_like_image[1])
    return house, entries


# --- your own data: a small COCO export as an annotation tool writes it -------------------------------------------

OWN_CATEGORIES = [{"id": 12, "name": "zebra"}, {"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}]  # not in id order


def write_own_export(root: Path, n: int = 6, masks: str = "polygon", size: tuple[int, int] = (96, 72)) -> Path:
    """A plain COCO folder (``labels.json`` beside its JPEGs): ids 3, 7, 12, two objects an image (a bright
    rectangle and a dark one on a grey ground, learnable in a few iterations), masks as polygons or RLE."""
    import json

    import numpy as np
    from PIL import Image
    from pycocotools import mask as mask_utils

    width, height = size
    root.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for i in range(n):
        pixels = np.full((height, width, 3), 128, np.uint8)
        boxes = [(8 + i % 3, 10, 36, 30), (50, 30 + i % 4, 34, 28)]
        for k, (x, y, w, h) in enumerate(boxes):
            pixels[y : y + h, x : x + w] = (240, 220, 40) if k == 0 else (30, 40, 160)
            mask = np.zeros((height, width), np.uint8, order="F")
            mask[y : y + h, x : x + w] = 1
            if masks == "rle":
                segmentation = mask_utils.encode(mask)
                segmentation["counts"] = segmentation["counts"].decode()
            else:
                segmentation = [[x, y, x + w, y, x + w, y + h, x, y + h]]
            category = (3, 7, 12)[(i + k) % 3]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i + 1,
                    "category_id": category,
                    "segmentation": segmentation,
                    "bbox": [x, y, w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
        Image.fromarray(pixels).save(root / f"p{i}.jpg", quality=95)
        images.append({"id": i + 1, "file_name": f"p{i}.jpg", "width": width, "height": height})
    (root / "labels.json").write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": OWN_CATEGORIES})
    )
    return root


@pytest.fixture
def own_export():
    """``write_own_export``: a small export of your own data, written where the test says."""
    return write_own_export
