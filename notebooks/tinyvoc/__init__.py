"""Helper package for the Tiny VOC detectron2 notebooks, laid out by pipeline stage.

``core`` is the shared ground (paths, atomic writes, errors, json, masks, the image reader); above it
the stages in pipeline order: ``runtime`` (Colab, Drive, detectron2, the data on this disk),
``dataset`` (check, split, register, statistics), ``training``, ``inference`` (one trained run,
predictions and their cache, evaluation), then ``submission`` and ``visualize``. A module imports only
from its own stage and those below it (``pyproject.toml``'s import-linter contract). The notebooks,
the ``tinyvoc`` command and ``python -m tinyvoc`` call the same functions.

Importing the package needs only the standard library, so the start cell can import it before detectron2
is installed. The version, dependencies and console script are declared once, in ``pyproject.toml``.
"""

from importlib import metadata as _metadata

from .runtime.project import start

__all__ = ["start", "__version__"]

try:
    __version__ = _metadata.version("tinyvoc")
except _metadata.PackageNotFoundError:  # imported from a checkout that was never installed
    __version__ = "0+unknown"
