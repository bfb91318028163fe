"""Execute the notebooks headless (papermill), so the CLI and CI run exactly what users run.

Each notebook verb of ``python -m tinyvoc`` executes its notebook with the given parameters and
saves the executed copy, pictures included, in ``output/notebooks/``. Only the parameters a
notebook declares in its ``parameters`` cell are passed to it. A package pip-installed from git (Kaggle's
batch run) executes the notebooks it carries, with ``REPO_REF`` set to the ref it was installed from, which
their start cell's check then accepts.

papermill writes the executed copy as it goes; here it writes it on this machine's disk, and the copy
is put into the project folder once the notebook ends (stopped or not), through ``core.faults.retry``:
a project folder on a Drive that drops mid-run would otherwise end the run on papermill's own write.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from .core.atomic import write_bytes
from .core.errors import TinyVocError
from .core.faults import retry, stop_on_storage_fault
from .core.paths import NOTEBOOKS, Outputs, notebooks_dir, packaged_notebooks
from .runtime.colab import remounter
from .runtime.project import installed_ref
from .visualize.inspector import SESSION_ENV


def _stream_cell_output() -> None:
    """Show the notebooks' own output (training progress) live on the terminal."""
    logger = logging.getLogger("papermill")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def inspect_parameters(notebook: Path) -> dict[str, dict]:
    """A notebook's parameters cell as papermill reads it: name -> default (as written) and help (its comment)."""
    import papermill as pm

    return pm.inspect_notebook(str(notebook))


def declared_parameters(notebook: Path) -> set[str]:
    return set(inspect_parameters(notebook))


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
    local = Path(tempfile.mkdtemp(prefix="tinyvoc-executed-")) / name
    print(f"=== {name} {params}", flush=True)
    started = time.perf_counter()
    try:
        with _headless_kernels():
            pm.execute_notebook(
                str(source), str(local), parameters=params, cwd=str(folder), kernel_name="python3",
                progress_bar=False, log_output=True, execution_timeout=timeout,
            )  # fmt: skip
    except pm.PapermillExecutionError as exc:
        _keep_executed(local, target)
        raise TinyVocError(f"{name} stopped: {exc.ename}: {exc.evalue}\n(executed copy: {target})") from None
    except BaseException:
        with contextlib.suppress(Exception):  # the notebook's own failure is the one to show
            _keep_executed(local, target)
        raise
    _keep_executed(local, target)
    print(f"=== {name} done in {time.perf_counter() - started:.0f} s -> {target}", flush=True)
    return target


@contextlib.contextmanager
def _headless_kernels():
    """papermill's kernels without the Jupyter server's ``JPY_SESSION_NAME``: started from a cell in JupyterLab,
    they would inherit it and draw the interactive view (``visualize.inspector.front_end_present``), which no one
    sees in an executed copy, instead of the static figures."""
    session = os.environ.pop(SESSION_ENV, None)
    try:
        yield
    finally:
        if session is not None:
            os.environ[SESSION_ENV] = session


def _keep_executed(local: Path, target: Path) -> None:
    """Put the executed copy into the project folder whole, waiting out a dropped Drive; drop the local one."""
    if local.is_file():
        with stop_on_storage_fault(
            f"Saving the executed {target.name}", safe="every output the notebook wrote", todo="run it again"
        ):
            retry(lambda: write_bytes(target, local.read_bytes()), f"saving {target}", recover=remounter(target))
    shutil.rmtree(local.parent, ignore_errors=True)


def run_all(parameters: dict, outputs: Outputs, names=NOTEBOOKS) -> list[Path]:
    """Execute the notebooks in order with one shared set of parameters."""
    return [run_notebook(name, parameters, outputs) for name in names]
