"""The runs table: every run of a project in one table (a notebook cell shows it as HTML, a terminal as text).

Notebooks 02, 03 and 04 and ``tinyvoc runs`` show it: one row a run (``run_info.read_run``), the run
``RUN = "best"`` takes marked, and in 03/04 a fusion of runs as one more row. Drawn by ``core.table``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.paths import Outputs
from ..core.table import grid_html, grid_text
from ..core.units import size
from .run_info import RunInfo, current_fingerprint, list_runs

COLUMNS = ("", "run", "dataset", "recipe", "differs from its profile in", "iterations", "state", "hours",
           "best val AP50", "AP", "at iteration", "size")  # fmt: skip


def _short(change: str) -> str:
    """``SOLVER.BASE_LR: 0.02 -> 0.01`` as the table shows it: ``BASE_LR 0.01`` (the json keeps the whole line)."""
    key, _, values = change.partition(": ")
    return f"{key.rsplit('.', 1)[-1]} {values.rpartition(' -> ')[2]}".strip()


def _cells(info: RunInfo) -> tuple[str, ...]:
    planned = f" of {info.max_iter:,}" if info.max_iter else ""
    return (
        "★" if info.best else "",
        info.name,
        info.dataset or "?",
        info.recipe,
        ", ".join(_short(change) for change in info.changes) or "-",
        f"{info.iteration:,}{planned}",
        info.state,
        f"{info.hours:.2f}" if info.hours is not None else "-",
        f"{info.best_ap50:.3f}" if info.best_ap50 is not None else "-",
        f"{info.best_ap:.3f}" if info.best_ap is not None else "-",
        f"{info.best_iteration:,}" if info.best_iteration is not None else "-",
        size(info.size_bytes),
    )


@dataclass
class RunsTable:
    """Every run of a project as one table (a notebook cell shows it as HTML, a terminal as text), the best marked."""

    runs: list[RunInfo]
    where: str
    extra: list[tuple[str, ...]] = field(default_factory=list)  # rows that are no run: a fusion of runs

    @property
    def best(self) -> str | None:
        """The name of the run marked best (what ``RUN = "best"`` takes), or None."""
        return next((i.name for i in self.runs if i.best), None)

    @property
    def title(self) -> str:
        total = size(sum(i.size_bytes for i in self.runs))
        return f'{len(self.runs)} run(s) in {self.where}, {total}; ★ = what RUN = "best" submits'

    def __repr__(self) -> str:
        rows = [*(_cells(i) for i in self.runs), *self.extra]
        return grid_text(self.title, COLUMNS, rows, "" if self.runs else "  (no run yet: train one in 02)")

    def _repr_html_(self) -> str:
        rows = [*(_cells(i) for i in self.runs), *self.extra]
        return grid_html(self.title, COLUMNS, rows, {k for k, i in enumerate(self.runs) if i.best})


def table(outputs: Outputs, fused: tuple[list[str], float, float] | None = None) -> RunsTable:
    """The runs table of the project (notebooks 02, 03, 04 and ``tinyvoc runs``). ``fused``: ``(members, val AP50,
    val AP)`` of a fusion of runs (03/04 with RUN a list), shown as one more row marked ⊕."""
    extra = []
    if fused is not None:
        members, ap50, ap = fused
        extra.append(("⊕", "fused", "", "fusion of " + " + ".join(members), "-", "-", "fused from the caches", "-",
                      f"{ap50:.3f}", f"{ap:.3f}", "-", "-"))  # fmt: skip
    where = f"{outputs.root.name}/{outputs.runs_dir.name}"  # relative to the project, as the pages say it
    return RunsTable(list_runs(outputs, current_fingerprint(outputs)), where, extra)
