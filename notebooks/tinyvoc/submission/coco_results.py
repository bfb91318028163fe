"""Standard COCO results for your own data: what pycocotools' ``COCO.loadRes`` and detectron2's evaluators read.

The course's grader takes four keys per detection (``check.SUBMISSION_KEYS``) and refuses anything else, so the
course's data keeps that format exactly. Anyone else takes ``submission.json`` into their own tools, which expect
COCO results: ``image_id``, the dataset's own ``category_id``, ``segmentation`` as compressed RLE, ``bbox``
``[x, y, w, h]`` and ``score``. The box is the mask's (``pycocotools.mask.toBbox``, as ``loadRes`` derives it for
segmentation results), so box and mask never disagree, whatever the model's box head said.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_util

from ..core.rle import to_pycocotools
from ..dataset.record import COURSE_SOURCES, already_loaded
from .check import FORMAT_KEYS

COURSE, COCO = "course", "coco"


def format_for(is_course: bool) -> str:
    """The submission format of a dataset: the grader's for the course's data, COCO results for any other."""
    return COURSE if is_course else COCO


def project_format(record_path: str | Path) -> str:
    """The format the project's dataset record (``output/dataset.json``) asks for; ``course`` when there is none.

    The record this process loaded already (``record.already_loaded``), else the file read as plain json (not
    ``DatasetRecord.load``, which would stage the data again): only its ``source`` counts.
    """
    path = Path(record_path)
    loaded = already_loaded(path)  # 04 loaded it a moment ago: one read of each record per notebook
    if loaded is not None:
        return format_for(loaded.is_course)
    if not path.is_file():
        return COURSE
    try:
        source = json.loads(path.read_text()).get("source", "")
    except (OSError, ValueError, AttributeError):
        return COURSE
    return format_for(source in COURSE_SOURCES)


def mask_boxes(segmentations: list[dict]) -> np.ndarray:
    """``[x, y, w, h]`` of each compressed RLE mask's pixels, all in one pycocotools call (zeros for an empty mask)."""
    if not segmentations:
        return np.zeros((0, 4))
    return np.asarray(mask_util.toBbox([to_pycocotools(s) for s in segmentations]), dtype=float).reshape(-1, 4)


def to_coco_results(rows: list[dict]) -> list[dict]:
    """Submission rows (``image_id``, ``category_id``, ``segmentation``, ``score``) as COCO results, box from mask."""
    boxes = mask_boxes([r["segmentation"] for r in rows]).tolist()
    return [
        {
            "image_id": r["image_id"],
            "category_id": r["category_id"],
            "segmentation": r["segmentation"],
            "bbox": [float(v) for v in box],
            "score": r["score"],
        }
        for r, box in zip(rows, boxes)
    ]


def rows_in(rows: list[dict], format: str) -> list[dict]:
    """``rows`` as the ``format`` writes them (``course``: as they are; ``coco``: with the mask's box)."""
    if format not in FORMAT_KEYS:
        raise ValueError(f"unknown submission format {format!r}")
    return rows if format == COURSE else to_coco_results(rows)
