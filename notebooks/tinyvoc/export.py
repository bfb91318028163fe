"""Turn cached detections into ``submission.json``: filter, write, prove the written file valid, rename.

No model is loaded here, so choosing a new score threshold costs a fraction of a second even at
10,000 instances. The file is written to a temporary name beside the target and that file, as
read back from disk, goes through the submission check; only a valid file is renamed over the
target, so an invalid file never replaces a good one. Mask strings the prediction cache already
checked (``cached["checked_rles"]``) are not parsed again; everything else in each entry is.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from .atomic import atomic_path
from .errors import TinyVocError
from .submission_check import SUBMISSION_KEYS, validate_submission


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
    """Write the submission for the cached test predictions; return the check's report on the written file."""
    if cached.get("split") != "test":
        raise TinyVocError("export needs predictions on the test split")
    if score_threshold < cached["score_floor"]:
        raise TinyVocError(
            f"score threshold {score_threshold} is below the cache's floor {cached['score_floor']}; "
            "predict again with a lower SCORE_FLOOR"
        )
    rows = select_detections(cached["detections"], score_threshold, max_per_image, class_thresholds)
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(rows))
        report = validate_submission(tmp, test_json, cached.get("checked_rles", ()))
        report.path = str(target)
        if not report.ok:
            raise TinyVocError(f"refusing to write an invalid submission to {target}:\n{report.summary()}")
    return report
