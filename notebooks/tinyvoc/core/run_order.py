"""Which training run is the best and which the newest: one definition for every place that chooses a run.

The runs table and 03/04's ``RUN = "best"`` / ``"auto"`` (``training.runs``) and the Kaggle bring-in, which
chooses among the runs of attached outputs before any is in the project (``runtime.kaggle``), rank runs
alike: the best is the highest best validation mask AP50, a run without one after every run with one,
ties to the newest; the newest is the run whose files (record, metrics, config, resume tag) changed last.
"""

from __future__ import annotations

from .paths import TrainFiles


def newest(files: TrainFiles) -> float:
    """When the run in ``files`` last changed: its newest record, metrics, config or resume tag (0: none there)."""
    kept = (files.record, files.metrics, files.config, files.last_checkpoint)
    return max((p.stat().st_mtime for p in kept if p.exists()), default=0.0)


def best_first(best_ap50: float | None, changed: float) -> tuple:
    """The sort key, largest first, of a run with this best validation AP50 (None: never validated) and
    :func:`newest` time."""
    has = isinstance(best_ap50, int | float) and best_ap50 == best_ap50  # NaN: a validation with no detection
    return (has, float(best_ap50) if has else 0.0, changed)
