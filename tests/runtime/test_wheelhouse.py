"""The wheelhouse for Kaggle with Internet off, and the wheel carrying the notebooks: built once per test session
(conftest's ``offline_wheelhouse``, also read by the Kaggle simulation and test_packaging), installed offline.

The wheelhouse is built for this interpreter's Python against "this venv's packages that Kaggle's image
has" (Kaggle's list, ``kaggle_image.txt``, with this venv's versions); a fresh environment holding exactly
those packages then installs the package and detectron2 from it with pip's index off. Anything the
wheelhouse forgot would make that install fail. The installed package finds its notebooks without a
checkout, runs its command, builds a Mask R-CNN, and writes its own wheel back out.
"""

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tinyvoc.core.paths import NOTEBOOKS, checkout
from tinyvoc.runtime import wheelhouse

LACKING = {"fvcore", "iopath", "yacs", "hydra-core", "black", "portalocker"}  # what Kaggle's image lacks
SHARED_FREEZE = Path(__file__).resolve().parents[2].parent / "shared" / "kaggle" / "pip-freeze.base.txt"


def _norm(name: str) -> str:
    return wheelhouse._norm(name)  # noqa: SLF001 - the same normalization as the module's


@pytest.fixture(scope="session")
def built(tmp_path_factory, kaggle_like_image, offline_wheelhouse):
    """The session's wheelhouse for this Python (conftest: built once against the Kaggle-like image) and a fresh
    venv (that image only) that installed from it offline."""
    root = tmp_path_factory.mktemp("offline-install")
    image, versions = kaggle_like_image
    assert not versions.keys() & LACKING, "the image must lack what the wheelhouse is to bring"
    house, entries = offline_wheelhouse
    venv = root / "venv"
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(venv)], check=True)  # noqa: SLF001
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "kaggle_image.pth").write_text(f"{image}\n")
    offline = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PIP_")},
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_INDEX_URL": "http://127.0.0.1:9/simple",  # nothing answers: any download attempt fails
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "HOME": str(root),
    }
    offline.pop("PYTHONPATH", None)
    install = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--no-index", "--find-links", str(house), "tinyvoc",
         "detectron2"],
        capture_output=True, text=True, env=offline, timeout=600,
    )  # fmt: skip
    return house, entries, venv, offline, install


def run_in(venv: Path, env: dict, code: str, cwd: Path) -> str:
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_the_wheelhouse_holds_the_package_detectron2_and_only_what_the_image_lacks(built):
    house, entries, _, _, _ = built
    index = json.loads((house / wheelhouse.INDEX).read_text())
    files = sorted(p.name for p in house.glob("*.whl"))
    assert sorted(w["file"] for w in index["wheels"]) == files == sorted(e.file for e in entries)
    names = {_norm(e.name) for e in entries}
    assert {"tinyvoc", "detectron2", *LACKING} <= names
    kaggle = wheelhouse.kaggle_image()
    assert not names & {"torch", "torchvision", "numpy", "matplotlib", "pycocotools", "papermill", "pillow"}
    assert all(_norm(e.name) not in kaggle for e in entries if e.why.startswith("needed by")), entries
    for wheel in index["wheels"]:
        assert wheelhouse.detectron2_install.sha256_of(house / wheel["file"]) == wheel["sha256"]
    fvcore = next(e for e in entries if _norm(e.name) == "fvcore")
    assert fvcore.file.endswith("-py3-none-any.whl")  # published as source only: built here, pure Python


def test_an_offline_install_from_the_wheelhouse_misses_nothing(built, tmp_path):
    _, _, venv, env, install = built
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-3000:]
    assert "Successfully installed" in install.stdout and "tinyvoc-" in install.stdout
    code = (
        "from tinyvoc.runtime.detectron2_install import detectron2_status; import tinyvoc, importlib.metadata as md\n"
        "print(md.version('detectron2'), tinyvoc.__file__, detectron2_status())"
    )
    version, where, status = run_in(venv, env, code, tmp_path).split()
    assert version == "0.7.2+purepy" and where.startswith(str(venv)) and status == "None"


def test_the_installed_wheel_carries_the_notebooks_and_its_command_runs_them(built, tmp_path):
    _, _, venv, env, _ = built
    code = "from tinyvoc.core.paths import checkout, notebooks_dir; print(checkout(), notebooks_dir())"
    no_checkout, folder = run_in(venv, env, code, tmp_path).split()
    assert no_checkout == "None" and folder.startswith(str(venv))
    for name in NOTEBOOKS:  # the one source copy, carried unchanged
        assert (Path(folder) / name).read_bytes() == (checkout() / "notebooks" / name).read_bytes()
    proc = subprocess.run([str(venv / "bin" / "tinyvoc"), "--help"], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)  # fmt: skip
    assert proc.returncode == 0 and "run-all" in proc.stdout, proc.stderr


def test_an_installed_package_writes_its_own_wheel_back(built, tmp_path):
    house, entries, venv, env, _ = built
    out = tmp_path / "out"
    code = "from pathlib import Path; from tinyvoc.runtime import wheelhouse; "
    code += f"print(wheelhouse.own_wheel(Path({str(out)!r})))"
    repacked = Path(run_in(venv, env, code, tmp_path).strip())
    original = house / next(e.file for e in entries if e.name == "tinyvoc")
    with zipfile.ZipFile(repacked) as new, zipfile.ZipFile(original) as old:
        assert sorted(new.namelist()) == sorted(old.namelist())
        for name in old.namelist():
            if not name.endswith("RECORD"):
                assert new.read(name) == old.read(name), name


def test_kaggle_image_list_agrees_with_the_published_one():
    if not SHARED_FREEZE.exists():
        pytest.skip(f"Kaggle's published package list not found at {SHARED_FREEZE}")
    image = wheelhouse.kaggle_image()
    replaced_by_kaggle = {"ipywidgets", "widgetsnbextension", "jupyterlab-widgets", "nbconvert"}
    for line in SHARED_FREEZE.read_text().splitlines():
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s#+]+)(\+\S+)?", line.strip())
        if match and _norm(match.group(1)) not in replaced_by_kaggle:
            assert image[_norm(match.group(1))] == match.group(2), line
    assert image["ipywidgets"] == "8.1.5" and "papermill" in image


def test_requirements_are_followed_as_on_kaggles_python():
    reqs = [
        'tomli>=1; python_version < "3.11"',
        "yacs>=0.1.8",
        'papermill; extra == "headless"',
        'pywin32; os_name == "nt"',
    ]
    assert [r.name for r in wheelhouse._needed(reqs, (), "3.12")] == ["yacs"]  # noqa: SLF001
    assert [r.name for r in wheelhouse._needed(reqs, ("headless",), "3.10")] == ["tomli", "yacs", "papermill"]  # noqa: SLF001
    image = {"numpy": "2.0.2", "papermill": None}
    assert wheelhouse._satisfied(Requirement("numpy>=1.24"), image)  # noqa: SLF001
    assert not wheelhouse._satisfied(Requirement("numpy<2"), image)  # noqa: SLF001
    assert wheelhouse._satisfied(Requirement("papermill>=2.4"), image)  # noqa: SLF001
    assert not wheelhouse._satisfied(Requirement("yacs"), image)  # noqa: SLF001


def test_the_command_writes_a_wheelhouse_for_kaggles_python(tmp_path, capsys):
    """`tinyvoc wheelhouse DIR` as a user runs it: for Kaggle's Python 3.12 and its image, whatever runs it."""
    from tinyvoc.cli import main as cli

    assert cli(["wheelhouse", str(tmp_path / "house")]) == 0
    assert "Upload this folder once as a Kaggle dataset" in capsys.readouterr().out
    index = json.loads((tmp_path / "house" / wheelhouse.INDEX).read_text())
    assert index["python"] == "3.12"
    names = {_norm(w["name"]) for w in index["wheels"]}
    assert {"tinyvoc", "detectron2", *LACKING} <= names and not names & set(wheelhouse.kaggle_image())
    for wheel in index["wheels"]:  # each installs on Kaggle: pure Python, or built for CPython 3.12 on Linux
        tags = wheel["file"][:-4].split("-")[-3:]
        assert tags[2] == "any" or (tags[0] == "cp312" and "manylinux" in tags[2]), wheel["file"]
