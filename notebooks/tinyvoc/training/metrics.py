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


def best_from_metrics(path: Path) -> tuple[float, int] | None:
    evals = [(r[BEST_METRIC], r["iteration"]) for r in read_metrics(path) if BEST_METRIC in r]
    return max(evals, key=lambda e: (e[0], -e[1])) if evals else None


def build_evaluator(dataset_name: str):
    """COCO bbox + mask evaluation of one registered split (pycocotools' reference COCOeval).

    Distributed: with N workers each predicts its share of the split (detectron2's test loader
    shards it) and rank 0 gathers the predictions and scores them once; with one worker it is the
    plain evaluation. Measured on a 2-core CPU, 2 workers: see README ("More GPUs, more machines").
    """
    from detectron2.evaluation import COCOEvaluator

    return COCOEvaluator(dataset_name, tasks=("bbox", "segm"), distributed=True, use_fast_impl=False)
