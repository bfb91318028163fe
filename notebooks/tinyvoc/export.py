"""Turn cached detections into ``submission.json``: filter, write atomically, then prove it valid.

No model is loaded here, so choosing a new score threshold costs milliseconds. Every export is
validated against the test json before this returns; an invalid file never replaces a good one.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from .atomic import write_json
from .errors import TinyVocError
from .validate import validate_submission

SUBMISSION_KEYS = ("image_id", "category_id", "segmentation", "score")


def select_detections(
    detections: list[dict],
    score_threshold: float,
    max_per_image: int = 100,
    class_thresholds: dict[int, float] | None = None,
    keys: tuple[str, ...] | None = SUBMISSION_KEYS,
) -> list[dict]:
    """Keep detections at or above their class's threshold, at most ``max_per_image`` per image.

    Rows keep only ``keys`` (the submission's four by default; ``None`` keeps every field).
    """
    class_thresholds = {int(k): float(v) for k, v in (class_thresholds or {}).items()}
    per_image: dict[int, list[dict]] = defaultdict(list)
    for det in detections:
        if det["score"] >= class_thresholds.get(det["category_id"], score_threshold):
            per_image[det["image_id"]].append(det)
    kept = []
    for image_id in sorted(per_image):
        ranked = sorted(per_image[image_id], key=lambda d: -d["score"])[:max_per_image]
        kept += [{k: det[k] for k in keys} if keys else dict(det) for det in ranked]
    return kept


def export_submission(
    cached: dict,
    test_json: str | Path,
    target: str | Path,
    score_threshold: float,
    max_per_image: int = 100,
    class_thresholds: dict[int, float] | None = None,
):
    """Write the submission for the cached test predictions; return the validation report."""
    if cached.get("split") != "test":
        raise TinyVocError("export needs predictions on the test split")
    if score_threshold < cached["score_floor"]:
        raise TinyVocError(
            f"score threshold {score_threshold} is below the cache's floor {cached['score_floor']}; "
            "predict again with a lower SCORE_FLOOR"
        )
    rows = select_detections(cached["detections"], score_threshold, max_per_image, class_thresholds)
    report = validate_submission(rows, test_json)
    if not report.ok:
        raise TinyVocError(f"refusing to write an invalid submission to {target}:\n{report.summary()}")
    write_json(target, rows)
    report.path = str(target)
    return report
