"""The package as pip sees it: one place for version, dependencies and the command; bounds Colab already meets."""

import json
import re
from importlib import metadata

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.version import Version

from tinyvoc import __version__
from tinyvoc.core.errors import TinyVocError
from tinyvoc.core.paths import checkout
from tinyvoc.runtime import project

REPO = checkout()
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
COLAB_FREEZE = REPO.parent / "shared" / "colab" / "pip-freeze.gpu.txt"


def pins(text: str) -> dict[str, Version]:
    found = {}
    for line in text.splitlines():
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s#+]+)(\+\S+)?\s*(#.*)?", line.strip())
        if match:
            found[match.group(1).lower().replace("_", "-")] = Version(match.group(2))
    return found


def dependencies() -> list[Requirement]:
    return [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]


def test_version_and_command_come_from_pyproject():
    assert __version__ == PYPROJECT["project"]["version"] == metadata.version("tinyvoc")
    assert PYPROJECT["project"]["scripts"] == {"tinyvoc": "tinyvoc.cli:main"}


def test_colab_already_meets_every_lower_bound():
    """Installing the package on Colab adds what is missing and never replaces torch, torchvision or numpy."""
    if not COLAB_FREEZE.exists():
        pytest.skip(f"Colab's published package list not found at {COLAB_FREEZE}")
    colab = pins(COLAB_FREEZE.read_text())
    for requirement in dependencies():
        name = requirement.name.lower()
        assert name in colab, f"{name}: not in Colab's image, pip would install it"
        assert requirement.specifier.contains(colab[name]), f"{requirement} would replace Colab's {colab[name]}"
        assert not [s for s in requirement.specifier if s.operator in ("<", "<=", "==", "~=")], requirement


def test_the_lock_satisfies_the_declared_dependencies():
    locked = pins((REPO / "requirements.txt").read_text())
    for requirement in dependencies():
        assert requirement.specifier.contains(locked[requirement.name.lower()]), requirement


def test_a_package_from_another_ref_stops_start(monkeypatch):
    """The first cell skips pip when the package is there; `start` then checks it came from REPO_REF."""
    direct_url = {"url": "https://example.invalid/r.git", "vcs_info": {"vcs": "git", "requested_revision": "v1"}}

    class Installed:
        def read_text(self, name):
            return json.dumps(direct_url) if name == "direct_url.json" else None

    monkeypatch.setattr(project.metadata, "distribution", lambda name: Installed())
    assert project.installed_ref() == "v1"
    project.require_ref("v1")
    with pytest.raises(TinyVocError, match="installed from 'v1', but REPO_REF is 'main'.*Disconnect and delete"):
        project.start("", "main", install=False)
    direct_url = {"url": "file:///repo", "dir_info": {"editable": True}}  # the local setup
    assert project.installed_ref() is None
    project.require_ref("main")


def test_the_profiles_yaml_files_ship_in_the_built_package(offline_wheelhouse):
    """Colab pip-installs the package from git: a wheel without the YAML files would have no profiles. The wheel
    is the one ``tinyvoc wheelhouse`` built from a clean copy of this checkout (``pip wheel``, as pip does for a git
    URL), made once per session (conftest)."""
    import zipfile

    from tinyvoc.training.profiles import CONFIGS, PROFILES

    house, entries = offline_wheelhouse
    wheel = house / next(e.file for e in entries if e.name == "tinyvoc")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    assert {f"tinyvoc/training/configs/{name}.yaml" for name in PROFILES} <= shipped
    assert sorted(p.stem for p in CONFIGS.glob("*.yaml")) == sorted(PROFILES)  # no profile the code does not name
