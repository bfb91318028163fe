"""The validation metrics of a training run: the metric that picks the best checkpoint, and ``metrics.jsonl``.

The evaluator is built here once, for the trainer's periodic validation and for the budget's timed
validation pass alike, so both measure the same work.
"""

from __future__ import annotations

import json
from pathlib import Path

BEST_METRIC = "segm/AP50"


def read_metrics(path: Path) -> list[dict]:
    """Rows of the metrics file, one per iteration (a resumed run's repeated rows: the last wins)."""
    rows: dict[int, dict] = {}
    if not Path(path).exists():
        return []
    for line in Path(path).read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a crash mid-write
        rows.setdefault(row["iteration"], {}).update(row)
    return [rows[k] for k in sorted(rows)]


def best_row(rows: list[dict]) -> dict | None:
    """The evaluation row with the highest ``BEST_METRIC`` (the earlier on a tie), or None. A validation that
    found nothing logs NaN, which is no best: it is left out (``NaN != NaN``)."""
    evals = [r for r in rows if BEST_METRIC in r and r[BEST_METRIC] == r[BEST_METRIC]]
    return max(evals, key=lambda r: (r[BEST_METRIC], -r["iteration"])) if evals else None


def best_from_metrics(path: Path) -> tuple[float, int] | None:
    """The best ``BEST_METRIC`` in the metrics file and its iteration, or None."""
    top = best_row(read_metrics(path))
    return (top[BEST_METRIC], top["iteration"]) if top else None


def build_evaluator(dataset_name: str):
    """COCO bbox + mask evaluation of one registered split (pycocotools' reference COCOeval).

    Distributed: with N workers each predicts its share of the split (detectron2's test loader
    shards it) and rank 0 gathers the predictions and scores them once; with one worker it is the
    plain evaluation. Measured on a 2-core CPU, 2 workers: see docs/multi-gpu.md.
    """
    from detectron2.evaluation import COCOEvaluator

    return COCOEvaluator(dataset_name, tasks=("bbox", "segm"), distributed=True, use_fast_impl=False)
