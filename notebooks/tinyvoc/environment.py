"""The Python environment: install only what is missing, and report what is there.

On Colab, torch and torchvision are preinstalled for its CUDA driver and most other packages are
too; replacing them would force a runtime restart. So only packages that are absent are
installed, at the versions pinned in ``requirements.txt``. In the local venv everything is
already pinned and nothing happens.
"""

from __future__ import annotations

import importlib.metadata as md
import platform
import re
import subprocess
import sys

from .errors import TinyVocError
from .paths import REPO_ROOT

NEVER_INSTALL = {"torch", "torchvision"}  # Colab's builds match its CUDA driver; never replace them
# needed only to run notebooks headless and to test; inside Jupyter/Colab they are not installed
HEADLESS_ONLY = {"papermill", "nbformat", "nbclient", "ipykernel", "pytest", "ruff"}


def pinned_requirements(path=REPO_ROOT / "requirements.txt") -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)", line)
        if match:
            pins[match.group(1).lower()] = match.group(2)
    return pins


def missing_requirements(pins: dict[str, str]) -> list[str]:
    """Pinned packages not installed at all, less torch/torchvision and the headless-only tools."""
    missing = []
    for name, version in pins.items():
        if name in NEVER_INSTALL or name in HEADLESS_ONLY:
            continue
        try:
            md.version(name)
        except md.PackageNotFoundError:
            missing.append(f"{name}=={version}")
    return missing


def pip(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    """Run this interpreter's pip (the one pip wrapper of the package); stop when it gives no answer."""
    cmd = [sys.executable, "-m", "pip", *args]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise TinyVocError(f"`{' '.join(cmd)}` gave no answer within {timeout:.0f} s (no network?)") from exc


def ensure_requirements(timeout: float = 900) -> str:
    """pip-install the pinned requirements that are not installed at all; leave the others alone."""
    for name in sorted(NEVER_INSTALL):
        try:
            md.version(name)
        except md.PackageNotFoundError as exc:
            raise TinyVocError(f"{name} is not installed. Install it first (pip install -r requirements.txt).") from exc
    missing = missing_requirements(pinned_requirements())
    if not missing:
        return "all required packages are present"
    proc = pip(["install", "--no-input", "--timeout", "15", "--retries", "1", *missing], timeout)
    if proc.returncode != 0:
        raise TinyVocError(f"pip could not install {' '.join(missing)}:\n{proc.stderr[-2000:]}")
    return "installed " + ", ".join(missing)


def describe() -> dict:
    """Versions and the accelerator, for the notebook and for bug reports."""
    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.cuda.is_available()}
    for name in ("torchvision", "detectron2", "pycocotools", "numpy", "opencv-python-headless", "opencv-python"):
        try:
            info[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    return info


def save_report(outputs) -> dict:
    """Write ``environment.json`` into the output folder and return it."""
    from .atomic import write_json

    info = describe()
    write_json(outputs.environment_report, info, indent=2)
    return info
