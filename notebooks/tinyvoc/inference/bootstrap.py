"""How sure a validation difference is: mask AP50 over the validation images resampled, from one matching.

Notebook 04 compares a fusion with its best member on ~135 validation images that already chose each
checkpoint; a difference of 0.004 AP50 there may be luck. The bootstrap (Efron) draws the validation
images with replacement many times and scores every draw; the spread of the paired difference (the
same draw for both) is the 95% interval, and a gain counts only when the interval clears zero.

Each draw is scored as pycocotools' ``COCOeval.accumulate`` scores AP50, with each image counted as
often as it was drawn: per class, the kept detections best first (the matching already made, see
``evaluate.Matching``), true and false positives and the ground truth weighted by their image's
count, precision made non-increasing and read at the 101 recall points, averaged over the classes
that have ground truth in the draw. With every image counted once this is exactly COCO's AP50
(``tests/inference/test_bootstrap.py`` compares them). No detection is matched again: a thousand
draws of a few thousand detections take well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .evaluate import Matching, _kept_only
from .selection import Selection

RESAMPLES = 1000  # draws; the interval's ends move by about 0.001 AP50 between seeds at this count
SEED = 0  # the same draws every time: a re-run of 04 says the same
RECALL_POINTS = np.linspace(0.0, 1.00, 101)  # COCO's recThrs


@dataclass(frozen=True)
class ClassDetections:
    """One class's kept validation detections, best first: which image each is in, and whether it matched."""

    image: np.ndarray  # index into the sorted image ids
    true: np.ndarray  # matched a ground-truth object at IoU 0.5 (and not ignored)
    false: np.ndarray  # matched none (and not ignored)
    ground_truth: np.ndarray  # per image: the class's objects that count (not ignored)


def class_detections(matching: Matching, selection: Selection) -> list[ClassDetections]:
    """The detections ``selection`` keeps, per class, as COCO's AP50 reads them (module docstring)."""
    ev = matching._ev
    if ev is None:
        return []
    kept = matching.columns.keep(selection)
    image_ids = list(ev.params.imgIds)
    index = {image_id: k for k, image_id in enumerate(image_ids)}
    at_50 = int(np.flatnonzero(np.isclose(ev.params.iouThrs, 0.5))[0])
    per_class: dict[int, list[dict]] = {}
    for matched in matching._matched:
        if matched is not None:
            e = _kept_only(*matched, kept)
            per_class.setdefault(e["category_id"], []).append(e)
    found = []
    for entries in per_class.values():
        scores = np.concatenate([np.asarray(e["dtScores"], dtype=float) for e in entries])
        order = np.argsort(-scores, kind="mergesort")  # as accumulate sorts them
        image = np.concatenate([np.full(len(e["dtScores"]), index[e["image_id"]]) for e in entries])[order]
        matches = np.concatenate([np.asarray(e["dtMatches"])[at_50] for e in entries])[order]
        ignored = np.concatenate([np.asarray(e["dtIgnore"])[at_50] for e in entries])[order].astype(bool)
        ground_truth = np.zeros(len(image_ids))
        for e in entries:
            ground_truth[index[e["image_id"]]] += np.count_nonzero(np.asarray(e["gtIgnore"]) == 0)
        found.append(ClassDetections(image, (matches != 0) & ~ignored, (matches == 0) & ~ignored, ground_truth))
    return found


def ap50(classes: list[ClassDetections], weights: np.ndarray) -> np.ndarray:
    """Mask AP50 under each row of ``weights`` (draws x images: how often each image counts); one value a row."""
    weights = np.atleast_2d(np.asarray(weights, dtype=float))
    total = np.zeros(len(weights))
    counted = np.zeros(len(weights))
    for c in classes:
        objects = weights @ c.ground_truth
        present = objects > 0
        if not c.image.size:
            counted += present  # objects, nothing found: AP50 0 for the class
            continue
        w = weights[:, c.image]
        true, false = np.cumsum(w * c.true, axis=1), np.cumsum(w * c.false, axis=1)
        recall = true / np.where(present, objects, 1.0)[:, None]
        precision = true / (true + false + np.spacing(1))
        precision = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
        for row in np.flatnonzero(present):
            at = np.searchsorted(recall[row], RECALL_POINTS, side="left")
            reached = at < precision.shape[1]
            total[row] += precision[row, at[reached]].sum() / len(RECALL_POINTS)
        counted += present
    return np.where(counted > 0, total / np.maximum(counted, 1), -1.0)


def draws(num_images: int, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """How often each validation image counts in each draw (draws x images), the first draw all ones."""
    rng = np.random.default_rng(seed)
    counts = np.stack([np.bincount(rng.integers(0, num_images, num_images), minlength=num_images)
                       for _ in range(resamples)])  # fmt: skip
    return np.vstack([np.ones(num_images), counts]).astype(float)


def paired_difference(
    first: list[ClassDetections], second: list[ClassDetections], num_images: int, resamples: int = RESAMPLES
) -> tuple[float, float, float]:
    """``(difference, low, high)``: AP50 of ``first`` less ``second`` on the validation images, and its 95% interval
    over the same draws for both."""
    weights = draws(num_images, resamples)
    difference = ap50(first, weights) - ap50(second, weights)
    low, high = np.percentile(difference[1:], [2.5, 97.5])
    return float(difference[0]), float(low), float(high)
