"""COCO mask and box AP of cached detections against a ground-truth json (the validation split).

This is the local stand-in for the leaderboard: the same metric (mask AP at IoU 0.5, plus AP over
0.5:0.95) computed with pycocotools' reference implementation, without the model in memory.
"""

from __future__ import annotations

import contextlib
import copy
import io

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def _quiet(fn, *args):
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args)


def evaluate_detections(detections: list[dict], gt_json: str, iou_types=("segm", "bbox")) -> dict:
    """Return ``{"segm": {"AP": .., "AP50": .., "AP75": ..}, "bbox": {...}}`` with values in [0, 1]."""
    gt = _quiet(COCO, str(gt_json))
    results = {}
    for iou_type in iou_types:
        if not detections:
            results[iou_type] = {"AP": 0.0, "AP50": 0.0, "AP75": 0.0}
            continue
        rows = copy.deepcopy(detections)
        if iou_type == "segm":
            for row in rows:
                row.pop("bbox", None)  # loadRes derives boxes from masks for segm
        dt = _quiet(gt.loadRes, rows)
        ev = COCOeval(gt, dt, iou_type)
        _quiet(ev.evaluate)
        _quiet(ev.accumulate)
        _quiet(ev.summarize)
        results[iou_type] = {"AP": float(ev.stats[0]), "AP50": float(ev.stats[1]), "AP75": float(ev.stats[2])}
    return results


def evaluate_cached(
    cached: dict, score_threshold: float, max_per_image: int = 100, class_thresholds=None, save_to=None
) -> dict:
    """Evaluate a cached validation prediction at one export setting; optionally save the numbers."""
    from .atomic import write_json
    from .export import select_detections

    if not cached.get("gt_json"):
        raise ValueError("these predictions have no ground truth (test split); evaluate the val split")
    kept = select_detections(cached["detections"], score_threshold, max_per_image, class_thresholds, keys=None)
    metrics = {
        "score_threshold": score_threshold,
        "max_per_image": max_per_image,
        **evaluate_detections(kept, cached["gt_json"]),
    }
    if save_to:
        write_json(save_to, metrics, indent=2)
    return metrics
