"""Install detectron2 in seconds, without a compiler, on any Python 3; or build it from git on request.

detectron2 has no official PyPI release. Building it from git takes about 5 minutes on Colab and
needs GitHub. The default path instead takes ``sal-detectron2==0.7.2`` from PyPI, whose Python
sources equal upstream commit ``UPSTREAM_COMMIT`` (plus a Python 3.11 fix), verifies its sha256,
and rewrites it as a pure-Python ``py3-none-any`` wheel:

* the cp310 ``_C`` extension is dropped: Mask R-CNN then runs on torchvision's ops, and only
  deformable convolution and rotated boxes (which we never use) need ``_C``;
* the stray top-level ``tools`` package is dropped (it would shadow any ``tools`` module);
* fvcore and iopath, which the wheel forgets, are declared; the ``numpy<2`` pin is removed (Colab
  ships numpy 2, and downgrading it would force a runtime restart);
* ``model_zoo.py`` no longer imports ``pkg_resources``, which setuptools 81+ no longer ships.

Everything here is idempotent: when a working detectron2 is importable nothing is installed.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import zipfile
from pathlib import Path

from ..core.errors import TinyVocError
from ..core.paths import USER_CACHE
from .wheels import pip, sha256_of, write_wheel

SOURCE_WHEEL = "sal_detectron2-0.7.2-cp310-none-any.whl"
SOURCE_SHA256 = "491af0c7f79bdb2d178e46f6cb16a97c4ac968d45c41ea3f6b6435d59bbee561"
UPSTREAM_COMMIT = "a59f05630a8f205756064244bf5beb8661f96180"
UPSTREAM_GIT = "https://github.com/facebookresearch/detectron2.git"
PURE_VERSION = "0.7.2+purepy"
PURE_WHEEL = f"detectron2-{PURE_VERSION}-py3-none-any.whl"
CACHE_DIR = USER_CACHE / "wheels"

# upstream detectron2's install_requires at that commit, minus the sal fork's numpy<2 pin
REQUIRES = [
    "Pillow>=7.1",
    "matplotlib",
    "pycocotools>=2.0.2",
    "termcolor>=1.1",
    "yacs>=0.1.8",
    "tabulate",
    "cloudpickle",
    "tqdm>4.29.0",
    "tensorboard",
    "fvcore>=0.1.5,<0.1.6",
    "iopath>=0.1.7,<0.1.10",
    "omegaconf>=2.1,<2.4",
    "hydra-core>=1.1",
    "black",
    "packaging",
]

_PKG_RESOURCES_IMPORT = "import pkg_resources\n"
_PKG_RESOURCES_CALL = """    cfg_file = pkg_resources.resource_filename(
        "detectron2.model_zoo", os.path.join("configs", config_path)
    )
"""
_PATH_CALL = """    cfg_file = os.path.join(os.path.dirname(__file__), "configs", config_path)
"""


def _patch_model_zoo(source: str) -> str:
    if _PKG_RESOURCES_IMPORT not in source or _PKG_RESOURCES_CALL not in source:
        raise TinyVocError("detectron2/model_zoo/model_zoo.py is not the expected version; cannot patch")
    return source.replace(_PKG_RESOURCES_IMPORT, "").replace(_PKG_RESOURCES_CALL, _PATH_CALL)


def _metadata(original: str) -> str:
    """Rename the distribution to detectron2 and replace its dependency list."""
    head, keep = [], True
    for line in original.splitlines():
        if line.startswith(("Requires-Dist:", "Provides-Extra:")) or not line.strip():
            keep = keep and line.strip() != ""
            continue
        if not keep:
            break
        if line.startswith("Name:"):
            line = "Name: detectron2"
        elif line.startswith("Version:"):
            line = f"Version: {PURE_VERSION}"
        head.append(line)
    head += [f"Requires-Dist: {req}" for req in REQUIRES]
    return (
        "\n".join(head)
        + "\n\n"
        + "Pure-Python repack of sal-detectron2 0.7.2 (see tinyvoc/runtime/detectron2_install.py).\n"
    )


def convert_wheel(source: Path, dest_dir: Path) -> Path:
    """Verify ``source`` by sha256 and write the pure-Python wheel into ``dest_dir``."""
    source = Path(source)
    actual = sha256_of(source)
    if actual != SOURCE_SHA256:
        raise TinyVocError(
            f"{source}: sha256 {actual} does not match the pinned {SOURCE_SHA256}; refusing to install it"
        )
    dist_info = f"detectron2-{PURE_VERSION}.dist-info"
    files: dict[str, bytes] = {}
    with zipfile.ZipFile(source) as zin:
        for name in zin.namelist():
            top = name.split("/", 1)[0]
            if top == "tools" or name.startswith("detectron2/_C."):
                continue
            data = zin.read(name)
            if top.endswith(".dist-info"):
                base = name.split("/", 1)[1]
                if base == "METADATA":
                    data = _metadata(data.decode()).encode()
                elif base == "WHEEL":
                    data = b"Wheel-Version: 1.0\nGenerator: tinyvoc\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
                elif base == "top_level.txt":
                    data = b"detectron2\n"
                elif base == "RECORD":
                    continue
                name = f"{dist_info}/{base}"
            elif name == "detectron2/model_zoo/model_zoo.py":
                data = _patch_model_zoo(data.decode()).encode()
            files[name] = data
    return write_wheel(files, dist_info, Path(dest_dir) / PURE_WHEEL)


def download_source_wheel(dest_dir: Path, timeout: float = 120) -> Path:
    """Fetch the pinned sal-detectron2 wheel from PyPI (or reuse a verified copy in ``dest_dir``)."""
    target = Path(dest_dir) / SOURCE_WHEEL
    if target.exists() and sha256_of(target) == SOURCE_SHA256:
        return target
    proc = pip(
        [
            "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.10",
            "--implementation", "cp", "--timeout", "15", "--retries", "1",
            "-d", str(dest_dir), "sal-detectron2==0.7.2",
        ],
        timeout,
    )  # fmt: skip
    if proc.returncode != 0 or not target.exists():
        tail = "\n".join(proc.stderr.strip().splitlines()[-3:])
        raise TinyVocError(
            "Could not download sal-detectron2==0.7.2 from PyPI, needed to install detectron2.\n"
            f"pip said: {tail}\n"
            f"Fix the network, or put {SOURCE_WHEEL} (sha256 {SOURCE_SHA256}) in {dest_dir} and retry."
        )
    return target


def detectron2_status() -> str | None:
    """Return None when detectron2 imports and builds a Mask R-CNN, else the reason it does not."""
    importlib.invalidate_caches()
    try:
        from detectron2 import model_zoo
        from detectron2.config import get_cfg
        from detectron2.modeling import build_model
    except Exception as exc:  # noqa: BLE001 - any import failure means "not working"
        return f"import failed: {type(exc).__name__}: {exc}"
    cfg = get_cfg()
    cfg.merge_from_file(model_zoo.get_config_file("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml"))
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.RESNETS.DEPTH = 18
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64
    try:
        build_model(cfg)
    except Exception as exc:  # noqa: BLE001
        return f"building a Mask R-CNN failed: {type(exc).__name__}: {exc}"
    return None


def install_from_wheel(cache_dir: Path = CACHE_DIR, timeout: float = 300) -> tuple[Path, list[str]]:
    """Download, verify, convert and pip-install the pure-Python detectron2 wheel; return it and what pip added."""
    wheel = cache_dir / PURE_WHEEL
    if not wheel.exists():
        wheel = convert_wheel(download_source_wheel(cache_dir), cache_dir)
    proc = pip(["install", "--no-input", "--timeout", "15", "--retries", "1", str(wheel)], timeout)
    if proc.returncode != 0:
        raise TinyVocError(f"pip could not install {wheel}:\n{proc.stderr[-2000:]}")
    return wheel, _installed(proc.stdout)


def _installed(pip_output: str) -> list[str]:
    """The distributions pip's "Successfully installed ..." line names (detectron2's missing dependencies too)."""
    for line in pip_output.splitlines():
        if line.startswith("Successfully installed "):
            return line.split()[2:]
    return []


def install_from_git(commit: str = UPSTREAM_COMMIT, timeout: float = 1800) -> None:
    """Build upstream detectron2 (with its ``_C`` ops) from git; needs GitHub and a compiler."""
    url = f"git+{UPSTREAM_GIT}@{commit}"
    proc = pip(["install", "--no-build-isolation", url], timeout)
    if proc.returncode != 0:
        raise TinyVocError(f"Building detectron2 from {url} failed:\n{proc.stderr[-2000:]}")


METHODS = ("wheel", "git")
SWITCH_TO_GIT = (
    'set DETECTRON2_METHOD = "git" in the notebook\'s parameters cell and run it again (builds from GitHub, ~5 min)'
)


def installed_version() -> str | None:
    try:
        return importlib.metadata.version("detectron2")
    except importlib.metadata.PackageNotFoundError:
        return None


def ensure_detectron2(method: str = "wheel", force: bool = False) -> str:
    """Make ``import detectron2`` work with ``method``; return a one-line report of what was done.

    ``method`` is ``"wheel"`` (default, seconds, pure Python) or ``"git"`` (upstream build with
    the C++/CUDA ops), the notebooks' ``DETECTRON2_METHOD``, passed by every start cell through
    ``start``. Call it before anything imports detectron2, so no runtime restart is needed. A working
    detectron2 is kept, except the pure-Python wheel when ``"git"`` is asked for (it lacks the ops the
    git build adds), or with ``force``. When the wheel cannot be downloaded the message offers ``"git"``.
    """
    if method not in METHODS:
        raise TinyVocError(f"unknown detectron2 install method {method!r}; use 'wheel' or 'git' (DETECTRON2_METHOD)")
    purepy = (installed_version() or "").endswith("+purepy")
    if not force and not (method == "git" and purepy) and detectron2_status() is None:
        return "detectron2 already installed and working; nothing to do"
    if method == "wheel":
        try:
            wheel, added = install_from_wheel(CACHE_DIR)
        except TinyVocError as exc:
            raise TinyVocError(f"{exc}\nOr {SWITCH_TO_GIT}.") from None
        others = [name for name in added if not name.startswith("detectron2-")]
        done = f"installed {wheel.name}" + (f" with {', '.join(others)}" if others else "")
    else:
        install_from_git()
        done = f"built detectron2 from git at {UPSTREAM_COMMIT[:12]}"
    problem = detectron2_status()
    if problem:
        raise TinyVocError(f"detectron2 was installed ({done}) but does not work: {problem}")
    return f"{done}; import and Mask R-CNN build check passed"
