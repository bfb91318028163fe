"""Local stand-in for the leaderboard: COCO AP of cached detections on the validation split.

The metric is the leaderboard's (mask AP at IoU 0.5, plus AP over 0.5:0.95), computed with
pycocotools' reference implementation, from the prediction cache, with no model in memory. On top
of it: per-class AP50, a sweep over export thresholds, and a per-image list of errors (missed
objects, false positives) for the error gallery.

Every number is for a :class:`~.selection.Selection` (threshold, per-class thresholds, cap per
image), the same one the export writes. :class:`Matching` matches the cached detections to the ground
truth once and scores any selection from that one matching: the sweep's nine thresholds, and every
move of the interactive view's slider. This gives the same numbers as evaluating each selection from
scratch (``tests/inference/test_evaluate.py`` compares them): COCO matches each image's detections of
one class greedily in descending score order, so dropping the lowest-scored ones never changes how
the others matched, and a selection keeps a best-first prefix of each image's detections of each
class. The matching covers only the "all areas, 100 detections" setting that AP and AP50 read.
``benchmarks/bench_rethreshold.py`` times it against evaluating each threshold from scratch at
13,500 validation detections.
"""

from __future__ import annotations

import contextlib
import io
import math
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_util
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ..core.atomic import write_json
from ..core.rle import to_pycocotools
from .cache_file import Predictions
from .selection import Columns, Selection

DEFAULT_SWEEP = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7)


def _quiet(fn, *args):
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args)


def load_ground_truth(gt_json: str | Path) -> COCO:
    return _quiet(COCO, str(gt_json))


def _per_class_ap50(ev: COCOeval) -> dict[int, float]:
    """AP at IoU 0.5 for each category, from COCOeval's precision array (-1 where no ground truth)."""
    precision = ev.eval["precision"][0, :, :, 0, -1]  # IoU 0.5, all recall points, each class, all areas, 100 dets
    out = {}
    for k, cat_id in enumerate(ev.params.catIds):
        values = precision[:, k]
        out[int(cat_id)] = float(values[values > -1].mean()) if (values > -1).any() else math.nan
    return out


def evaluate_detections(
    detections: list[dict], gt: str | Path | COCO, iou_types=("segm", "bbox"), per_class: bool = False
) -> dict:
    """Return ``{"segm": {"AP", "AP50", "AP75"[, "per_class_AP50"]}, "bbox": {...}}``, values in [0, 1]."""
    gt = gt if isinstance(gt, COCO) else load_ground_truth(gt)
    results = {}
    for iou_type in iou_types:
        if not detections:
            results[iou_type] = _empty_result(gt, per_class)
            continue
        results[iou_type] = _scores(_accumulated(_matched(detections, gt, iou_type)), per_class)
    return results


def _empty_result(gt: COCO, per_class: bool) -> dict:
    result = {"AP": 0.0, "AP50": 0.0, "AP75": 0.0}
    if per_class:
        result["per_class_AP50"] = {int(c): 0.0 for c in gt.getCatIds()}
    return result


def _matched(detections: list[dict], gt: COCO, iou_type: str, all_areas_only: bool = False) -> COCOeval:
    """COCOeval after ``evaluate()``: every image's detections matched to its ground truth.

    ``all_areas_only`` skips the small/medium/large ranges and the 1- and 10-detection limits, which
    AP and AP50 (all areas, 100 detections) do not use: a quarter of the matching, a twelfth of the
    accumulating. ``summarize`` cannot run on such an object; ``_ap_all_areas`` reads it instead.
    """
    # loadRes adds id, area and iscrowd to each row: new dicts keep the caller's rows untouched
    # (shallow: the segmentation dicts are only read); for segm it derives boxes from the masks
    rows = [{k: v for k, v in d.items() if not (iou_type == "segm" and k == "bbox")} for d in detections]
    ev = COCOeval(gt, _quiet(gt.loadRes, rows), iou_type)
    if all_areas_only:
        ev.params.areaRng, ev.params.areaRngLbl = ev.params.areaRng[:1], ev.params.areaRngLbl[:1]  # "all"
        ev.params.maxDets = ev.params.maxDets[-1:]  # 100
    _quiet(ev.evaluate)
    return ev


def _accumulated(ev: COCOeval) -> COCOeval:
    _quiet(ev.accumulate)
    _quiet(ev.summarize)
    return ev


def _scores(ev: COCOeval, per_class: bool) -> dict:
    result = {"AP": float(ev.stats[0]), "AP50": float(ev.stats[1]), "AP75": float(ev.stats[2])}
    if per_class:
        result["per_class_AP50"] = _per_class_ap50(ev)
    return result


def evaluate_cached(predictions: Predictions, selection: Selection, save_to=None, ground_truth=None, **about) -> dict:
    """Mask and box AP of ``selection`` on the validation predictions, per-class AP50 too; optionally saved.
    ``ground_truth``: another split's index to score against (``split_scores``: a labelled test set); ``about``:
    more keys for the saved record."""
    kept = selection.apply(predictions.detections)
    truth = predictions.ground_truth if ground_truth is None else ground_truth
    metrics = {
        **about,
        "score_threshold": selection.threshold,
        "class_thresholds": {str(c): t for c, t in selection.class_thresholds},
        "max_per_image": selection.max_per_image,
        **evaluate_detections(kept, truth, per_class=True),
    }
    if save_to:
        write_json(save_to, metrics, indent=2)
    return metrics


class Matching:
    """The validation predictions matched to their ground truth once; mask AP, AP50 and per-class AP50 of
    any :class:`~.selection.Selection` from it, in tens of milliseconds (see the module docstring)."""

    def __init__(self, predictions: Predictions):
        gt = predictions.ground_truth
        self.predictions = predictions
        self.columns = Columns.of(predictions.detections)
        self._category_ids = [int(c) for c in gt.getCatIds()]
        # loadRes numbers the rows 1..n in order, so a detection's id - 1 is its row
        self._ev = _matched(predictions.detections, gt, "segm", all_areas_only=True) if predictions.detections else None
        self._matched = (
            [None if e is None else (e, np.asarray(e["dtIds"], dtype=np.int64) - 1) for e in self._ev.evalImgs]
            if self._ev
            else []
        )

    def scores(self, selection: Selection) -> dict:
        """``{"AP", "AP50", "per_class_AP50", "instances"}`` of the validation detections ``selection`` keeps."""
        kept = self.columns.keep(selection)
        instances = int(np.count_nonzero(kept))
        if not instances:
            return {"AP": 0.0, "AP50": 0.0, "per_class_AP50": dict.fromkeys(self._category_ids, 0.0), "instances": 0}
        ev = self._ev
        ev.evalImgs = [None if m is None else _kept_only(*m, kept) for m in self._matched]
        try:
            _quiet(ev.accumulate)
        finally:
            ev.evalImgs = [None if m is None else m[0] for m in self._matched]
        precision = ev.eval["precision"][..., 0, 0]  # iou, recall, class; the one area, the one limit
        at_50 = precision[int(np.flatnonzero(np.isclose(ev.params.iouThrs, 0.5))[0])]
        per_class = {int(c): _mean(at_50[:, k], math.nan) for k, c in enumerate(ev.params.catIds)}
        return {
            "AP": _mean(precision, -1.0),
            "AP50": _mean(at_50, -1.0),
            "per_class_AP50": per_class,
            "instances": instances,
        }


def _mean(values: np.ndarray, undefined: float) -> float:
    """Mean precision where COCOeval defined it (it writes -1 elsewhere), as ``summarize`` computes AP."""
    values = values[values > -1]
    return float(values.mean()) if values.size else undefined


def _kept_only(e: dict, rows: np.ndarray, kept: np.ndarray) -> dict:
    """One image/class entry of COCOeval reduced to the detections a selection keeps (a best-first prefix)."""
    chosen = kept[rows]
    if chosen.all():
        return e
    return {
        **e,
        "dtIds": [i for i, c in zip(e["dtIds"], chosen) if c],
        "dtScores": [s for s, c in zip(e["dtScores"], chosen) if c],
        "dtMatches": e["dtMatches"][:, chosen],
        "dtIgnore": e["dtIgnore"][:, chosen],
    }


def threshold_sweep(matching: Matching, selection: Selection, thresholds=DEFAULT_SWEEP) -> list[dict]:
    """Mask AP and AP50 on the validation split for ``selection`` at each threshold at or above the cache's floor.

    One matching serves them all (see the module docstring); the per-class thresholds and the cap stay.
    """
    chosen = sorted(t for t in thresholds if t >= matching.predictions.score_floor)
    rows = []
    for threshold in chosen:
        scored = matching.scores(selection.at(threshold))
        rows.append(
            {"threshold": threshold, "AP": scored["AP"], "AP50": scored["AP50"], "instances": scored["instances"]}
        )
    return rows


def best_threshold(rows: list[dict], metric: str = "AP50") -> float:
    """The threshold with the highest ``metric``; ties go to the lowest threshold.

    COCO AP never drops when lower-scored detections are added (up to the per-image cap): they
    only extend the precision-recall curve. So a tie means the detections between the tied
    thresholds changed nothing on validation, and the lowest keeps the recall they may add on test.
    """
    return max(rows, key=lambda r: (round(r[metric], 6), -r["threshold"]))["threshold"]


def threshold_advice(rows: list[dict], metric: str = "AP50") -> str:
    """One line for notebook 04: the best threshold, and what it means when several tie."""
    if not rows:
        return "no sweep: every threshold is below the cache's score floor"
    best = best_threshold(rows, metric)
    value = round(next(r[metric] for r in rows if r["threshold"] == best), 6)
    tied = [r["threshold"] for r in rows if round(r[metric], 6) == value]
    line = f"best threshold on validation ({metric}): {best} ({metric} {value:.3f})"
    if len(tied) == len(rows) and len(rows) > 1:
        return (
            f"{line}; every threshold from {tied[0]} to {tied[-1]} gives the same {metric}, so validation "
            "cannot tell them apart: lower-scored detections never lower COCO AP, so the lowest is the safe choice"
        )
    if len(tied) > 1:
        return (
            f"{line}; {', '.join(map(str, tied[1:]))} tie with it: the detections between them changed nothing "
            "on validation, and the lowest keeps whatever recall they add on test"
        )
    return line


def match_errors(predictions: Predictions, selection: Selection, iou: float = 0.5) -> dict[int, dict]:
    """Per validation image: ground-truth objects missed and kept detections that match nothing.

    Greedy matching by descending score, same class, mask IoU >= ``iou`` (COCO's rule at AP50).
    """
    gt = predictions.ground_truth
    by_image: dict[int, list[dict]] = {i: [] for i in gt.getImgIds()}
    for det in selection.apply(predictions.detections):
        if det["image_id"] in by_image:
            by_image[det["image_id"]].append(det)
    errors = {}
    for image_id, dets in by_image.items():
        anns = [a for a in gt.imgToAnns[image_id] if not a.get("iscrowd")]
        dets = sorted(dets, key=lambda d: -d["score"])
        matched_gt: set[int] = set()
        false_positives = []
        if anns and dets:
            gt_rles = [gt.annToRLE(a) for a in anns]
            dt_rles = [to_pycocotools(d["segmentation"]) for d in dets]
            ious = mask_util.iou(dt_rles, gt_rles, [0] * len(gt_rles))
        else:
            ious = np.zeros((len(dets), len(anns)))
        for i, det in enumerate(dets):
            candidates = [
                (ious[i][j], j)
                for j, a in enumerate(anns)
                if j not in matched_gt and a["category_id"] == det["category_id"] and ious[i][j] >= iou
            ]
            if candidates:
                matched_gt.add(max(candidates)[1])
            else:
                false_positives.append(det)
        errors[image_id] = {
            "missed": [a for j, a in enumerate(anns) if j not in matched_gt],
            "false_positives": false_positives,
            "num_ground_truth": len(anns),
        }
    return errors


def format_sweep(rows: list[dict]) -> str:
    """The sweep as a text table for the notebook."""
    from tabulate import tabulate

    return tabulate(rows, headers="keys", floatfmt=".3f")
