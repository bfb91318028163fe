"""The one build step pyproject.toml cannot declare: the five notebooks ship inside the wheel.

The notebooks have one source copy, ``notebooks/*.ipynb`` beside the package. A pip-installed package
(Kaggle's batch run, ``pip install`` anywhere) has no checkout, yet its CLI executes the notebooks, so
``build_py`` copies them into the built package as ``tinyvoc/notebooks/``, where ``core.paths.notebooks_dir``
finds them. An editable install (``make setup``) reads them from the checkout instead.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

NOTEBOOKS = Path(__file__).resolve().parent / "notebooks"


class BuildPyWithNotebooks(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        found = sorted(NOTEBOOKS.glob("*.ipynb"))
        if not found:
            raise SystemExit(f"no notebooks in {NOTEBOOKS}: the wheel would be without them")
        target = Path(self.build_lib) / "tinyvoc" / "notebooks"
        self.mkpath(str(target))
        for notebook in found:
            self.copy_file(str(notebook), str(target / notebook.name))


setup(cmdclass={"build_py": BuildPyWithNotebooks})
