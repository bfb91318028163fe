"""Execute the notebooks headless (papermill), so the CLI and CI run exactly what users run.

Each notebook verb of ``python -m tinyvoc`` executes its notebook with the given parameters and
saves the executed copy, pictures included, in ``output/notebooks/``. Only the parameters a
notebook declares in its ``parameters`` cell are passed to it. A package pip-installed from git (Kaggle's
batch run) executes the notebooks it carries, with ``REPO_REF`` set to the ref it was installed from, which
their first cell's check then accepts.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

from .core.errors import TinyVocError
from .core.paths import NOTEBOOKS, Outputs, notebooks_dir, packaged_notebooks
from .runtime.project import installed_ref


def _stream_cell_output() -> None:
    """Show the notebooks' own output (training progress) live on the terminal."""
    logger = logging.getLogger("papermill")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def declared_parameters(notebook: Path) -> set[str]:
    import papermill as pm

    return set(pm.inspect_notebook(str(notebook)))


def run_notebook(name: str, parameters: dict, outputs: Outputs, timeout: int | None = None) -> Path:
    """Execute ``notebooks/<name>`` with ``parameters``; return the executed copy's path."""
    import papermill as pm

    folder = notebooks_dir()
    source = folder / name
    if not source.exists():
        raise TinyVocError(f"notebook {source} not found")
    _stream_cell_output()
    known = declared_parameters(source)
    params = {k: v for k, v in parameters.items() if k in known and v is not None}
    if folder == packaged_notebooks() and installed_ref() and "REPO_REF" in known:  # the ref they came with
        params.setdefault("REPO_REF", installed_ref())
    target = outputs.executed_notebooks / name
    target.parent.mkdir(parents=True, exist_ok=True)
    print(f"=== {name} {params}", flush=True)
    started = time.perf_counter()
    try:
        pm.execute_notebook(
            str(source), str(target), parameters=params, cwd=str(folder), kernel_name="python3",
            progress_bar=False, log_output=True, execution_timeout=timeout,
        )  # fmt: skip
    except pm.PapermillExecutionError as exc:
        raise TinyVocError(f"{name} stopped: {exc.ename}: {exc.evalue}\n(executed copy: {target})") from None
    print(f"=== {name} done in {time.perf_counter() - started:.0f} s -> {target}", flush=True)
    return target


def run_all(parameters: dict, outputs: Outputs, names=NOTEBOOKS) -> list[Path]:
    """Execute the notebooks in order with one shared set of parameters."""
    return [run_notebook(name, parameters, outputs) for name in names]
