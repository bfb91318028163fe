"""The Python environment as notebook 00 reports it: versions and the accelerator, saved for bug reports.

What gets installed is decided elsewhere: pip resolves the package's own dependencies (``pyproject.toml``,
lower bounds Colab's image already meets, so Colab's torch, torchvision, numpy and opencv are never
replaced), and ``runtime.detectron2_install`` adds detectron2, which has no PyPI release.
"""

from __future__ import annotations

import importlib.metadata as md
import platform

from ..core.atomic import write_json


def describe() -> dict:
    """Versions and the accelerator, for the notebook and for bug reports."""
    import torch

    from .project import installed_ref

    info = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.cuda.is_available()}
    info["tinyvoc_ref"] = installed_ref()  # the git ref pip installed this package from (None: a checkout)
    for name in (
        "tinyvoc",
        "torchvision",
        "detectron2",
        "pycocotools",
        "numpy",
        "opencv-python-headless",
        "opencv-python",
    ):
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
    info = describe()
    write_json(outputs.environment_report, info, indent=2)
    return info
