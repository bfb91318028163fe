"""Turn cached detections into ``submission.json``: filter, write, prove the written file valid, rename.

No model is loaded here, so choosing a new score threshold costs a fraction of a second even at
10,000 instances. The file is written to a temporary name beside the target and that file, as
read back from disk, goes through the submission check; only a valid file is renamed over the
target, so an invalid file never replaces a good one. Mask strings the prediction cache already
checked (``Predictions.checked_rles``) are not parsed again; everything else in each entry is.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..core.atomic import atomic_path
from ..core.errors import TinyVocError
from ..inference.predictions import Predictions
from .check import SUBMISSION_KEYS, validate_submission


def export_submission(
    predictions: Predictions,
    test_json: str | Path | dict,
    target: str | Path,
    score_threshold: float,
    max_per_image: int = 100,
    class_thresholds: dict[int, float] | None = None,
):
    """Write the submission for the test predictions; return the check's report on the written file.

    ``test_json`` is the test set's json, as a path or as already loaded (``predictions.images.coco``).
    """
    if predictions.split != "test":
        raise TinyVocError("export needs predictions on the test split")
    if score_threshold < predictions.score_floor:
        raise TinyVocError(
            f"score threshold {score_threshold} is below the cache's floor {predictions.score_floor}; "
            "predict again with a lower SCORE_FLOOR"
        )
    rows = predictions.select(score_threshold, max_per_image, class_thresholds, keys=SUBMISSION_KEYS)
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(rows))
        report = validate_submission(tmp, test_json, predictions.checked_rles)
        report.path = str(target)
        if not report.ok:
            raise TinyVocError(f"refusing to write an invalid submission to {target}:\n{report.summary()}")
    return report
