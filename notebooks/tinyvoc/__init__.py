"""Helper package for the Tiny VOC detectron2 notebooks.

Each module has one job (paths, install, dataset, profiles, training, prediction, export,
validation, plots); the notebooks and ``python -m tinyvoc`` call the same functions.
Importing the package itself needs only the standard library, so the installer can run first.
"""

__version__ = "0.1.0"
