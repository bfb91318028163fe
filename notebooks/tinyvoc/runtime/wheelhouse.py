"""A wheelhouse: everything a Kaggle notebook with Internet off needs to install the package, in one folder.

Kaggle's notebooks start with Internet off, and turning it on needs a phone-verified account. A
folder uploaded once as a Kaggle dataset and attached as an input does instead: ``tinyvoc wheelhouse
DIR`` writes into ``DIR``

* the package's own wheel, notebooks included (built from the checkout, or repacked from the
  installed distribution when there is no checkout);
* the pure-Python detectron2 wheel (``detectron2_install``'s conversion, from its cache);
* every distribution these two need (their requirements, followed transitively, ``headless`` extra
  included) that Kaggle's image lacks (``kaggle_image.txt``, its published package list), as wheels
  for Kaggle's Python (3.12, CPython, manylinux x86_64); the few published only as source (fvcore,
  antlr4) are built into pure-Python wheels here;
* ``wheelhouse.json``, the index: each file, its distribution, version, sha256 and why it is there.

``pip install --no-index --find-links DIR tinyvoc detectron2`` then installs with no network.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from email.parser import HeaderParser
from importlib import metadata, resources
from pathlib import Path

from ..core.atomic import copy_file, write_json
from ..core.errors import TinyVocError
from ..core.paths import checkout
from . import detectron2_install
from .wheels import pip, sha256_of, write_wheel

INDEX = "wheelhouse.json"
KAGGLE_PYTHON = "3.12"
KAGGLE_PLATFORM = "manylinux_2_35_x86_64"  # Ubuntu 22.04's glibc 2.35 (../shared/kaggle/os-info-base.txt)
EXTRAS = ("headless",)  # the notebook verbs and run-all (papermill and friends: Kaggle has them)
# What a checkout copy for building leaves behind (large, or not part of the package).
_NOT_BUILT = (".git", ".venv", "data", "output", "build", "dist", "__pycache__", "*.egg-info", ".pytest_cache")


def _norm(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def kaggle_image() -> dict[str, str | None]:
    """Kaggle's preinstalled distributions: normalized name -> version (None: any), from ``kaggle_image.txt``."""
    text = resources.files(__package__).joinpath("kaggle_image.txt").read_text()
    image: dict[str, str | None] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            image[_norm(name)] = version.split("+", 1)[0] or None
    return image


@dataclass(frozen=True)
class Entry:
    """One wheel in the wheelhouse and why it is there."""

    file: str
    name: str
    version: str
    sha256: str
    why: str


def _wheel_metadata(wheel: Path) -> tuple[str, str, list[str]]:
    """A wheel's distribution name, version and ``Requires-Dist`` lines, read from its METADATA."""
    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA"))
        headers = HeaderParser().parsestr(zf.read(meta).decode())
    return headers["Name"], headers["Version"], headers.get_all("Requires-Dist") or []


def _marker_environment(python_version: str) -> dict[str, str]:
    return {
        "python_version": python_version,
        "python_full_version": f"{python_version}.0",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "platform_machine": "x86_64",
    }


def _needed(requirements: list[str], extras: tuple[str, ...], python_version: str):
    """The requirements that apply on Kaggle's Python (markers evaluated, the given extras on)."""
    from packaging.requirements import Requirement

    env = _marker_environment(python_version)
    for text in requirements:
        requirement = Requirement(text)
        if requirement.marker is None or any(
            requirement.marker.evaluate({**env, "extra": extra}) for extra in ("", *extras)
        ):
            yield requirement


def _satisfied(requirement, image: dict[str, str | None]) -> bool:
    if _norm(requirement.name) not in image:
        return False
    version = image[_norm(requirement.name)]
    return version is None or requirement.specifier.contains(version, prereleases=True)


def _build_from_checkout(root: Path, dest: Path) -> Path:
    """Build the package's wheel from a clean copy of the checkout (the build step adds the notebooks)."""
    with tempfile.TemporaryDirectory(prefix="tinyvoc-build-") as tmp:
        source = Path(tmp) / "src"
        shutil.copytree(root, source, ignore=shutil.ignore_patterns(*_NOT_BUILT), symlinks=True)
        proc = pip(["wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dest), str(source)], 600)
        if proc.returncode != 0:
            raise TinyVocError(f"building the tinyvoc wheel from {root} failed:\n{proc.stderr[-2000:]}")
    return _one(dest, "tinyvoc-*.whl")


def _repack_installed(dest: Path) -> Path:
    """The installed distribution written back as a wheel (a pip-installed package carries its notebooks)."""
    dist = metadata.distribution("tinyvoc")
    base = Path(dist.locate_file(""))
    wheel_text = dist.read_text("WHEEL")
    if not wheel_text or "Root-Is-Purelib: true" not in wheel_text:
        raise TinyVocError(
            f"the installed tinyvoc ({base}) was not installed from a wheel; run `tinyvoc wheelhouse` in a checkout"
        )
    info = next(str(f).split("/")[0] for f in dist.files if str(f).endswith(".dist-info/METADATA"))
    skip = {f"{info}/RECORD", f"{info}/INSTALLER", f"{info}/REQUESTED", f"{info}/direct_url.json"}
    files = {}
    for file in dist.files:
        name = str(file)
        if name.startswith("..") or name in skip or "__pycache__" in name or file.suffix == ".pyc":
            continue
        files[name] = (base / name).read_bytes()
    return write_wheel(files, info, dest / f"tinyvoc-{dist.version}-py3-none-any.whl")


def own_wheel(dest: Path) -> Path:
    """The package's wheel in ``dest``: built from the checkout when there is one, else repacked as installed."""
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob("tinyvoc-*.whl"):
        old.unlink()
    root = checkout()
    return _build_from_checkout(root, dest) if root else _repack_installed(dest)


def _one(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    if len(found) != 1:
        raise TinyVocError(f"expected one {pattern} in {folder}, found {[p.name for p in found]}")
    return found[0]


def _fetch(requirement, dest: Path, python_version: str) -> Path:
    """One distribution as a wheel for Kaggle's Python: downloaded, or built here from its source when PyPI has
    no wheel (then it must come out pure Python, else it would not install there)."""
    with tempfile.TemporaryDirectory(prefix="tinyvoc-dl-") as tmp:
        tmp = Path(tmp)
        target = ["--python-version", python_version, "--implementation", "cp", "--platform", KAGGLE_PLATFORM]
        target += ["--platform", "any"]
        args = ["download", "--no-deps", "-q", "--timeout", "15", "--retries", "1", "-d", str(tmp), *target]
        proc = pip([*args, "--only-binary=:all:", str(requirement)], 300)
        if proc.returncode != 0:  # no wheel for Kaggle: the source, to build
            proc = pip([*args, "--no-binary=:all:", str(requirement)], 300)
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-3:])
            raise TinyVocError(f"pip could not download {requirement} for Python {python_version}: {tail}")
        got = next(tmp.iterdir())
        if got.suffix != ".whl":
            built = tmp / "built"
            proc = pip(["wheel", "--no-deps", "-q", "-w", str(built), str(got)], 600)
            if proc.returncode != 0:
                raise TinyVocError(f"building a wheel of {got.name} failed:\n{proc.stderr[-2000:]}")
            got = _one(built, "*.whl")
            if not got.name.endswith("-none-any.whl"):
                raise TinyVocError(f"{got.name} is not pure Python; it cannot be built here for Kaggle's image")
        final = dest / got.name
        copy_file(got, final)
    return final


def build_wheelhouse(
    folder: str | Path, python_version: str = KAGGLE_PYTHON, image: dict[str, str | None] | None = None
) -> list[Entry]:
    """Write the package, detectron2 and what ``image`` (default: Kaggle's) lacks into ``folder``, plus the index."""
    dest = Path(folder).absolute()
    image = kaggle_image() if image is None else image
    entries: list[Entry] = []

    def add(wheel: Path, why: str) -> list[str]:
        name, version, requires = _wheel_metadata(wheel)
        entries.append(Entry(wheel.name, name, version, sha256_of(wheel), why))
        print(f"  {wheel.name} ({why})", flush=True)
        return requires

    print(f"wheelhouse for Python {python_version} in {dest}:", flush=True)
    queue = [(r, "tinyvoc") for r in _needed(add(own_wheel(dest), "the package"), EXTRAS, python_version)]
    cache = detectron2_install.CACHE_DIR
    pure = cache / detectron2_install.PURE_WHEEL
    if not pure.exists():
        pure = detectron2_install.convert_wheel(detectron2_install.download_source_wheel(cache), cache)
    copy_file(pure, dest / pure.name)
    queue += [(r, "detectron2") for r in _needed(add(dest / pure.name, "detectron2, pure Python"), (), python_version)]
    have = {_norm(e.name) for e in entries}
    while queue:
        requirement, wanted_by = queue.pop(0)
        if _norm(requirement.name) in have or _satisfied(requirement, image):
            continue
        have.add(_norm(requirement.name))
        wheel = _fetch(requirement, dest, python_version)
        queue += [(r, requirement.name) for r in _needed(add(wheel, f"needed by {wanted_by}"), (), python_version)]
    index = {
        "python": python_version,
        "platform": KAGGLE_PLATFORM,
        "install": "pip install --no-index --find-links <this folder> tinyvoc detectron2",
        "wheels": [e.__dict__ for e in entries],
    }
    write_json(dest / INDEX, index, indent=2)
    total = sum((dest / e.file).stat().st_size for e in entries)
    print(f"{len(entries)} wheels, {total / 1e6:.1f} MB; index: {dest / INDEX}", flush=True)
    return entries


def current_python() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"
