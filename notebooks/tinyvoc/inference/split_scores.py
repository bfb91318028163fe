"""Scores of either split with ground truth: the validation split, and a test set that comes with labels.

A Roboflow export's ``test/`` (or any test json with annotations) is labelled: scoring it gives the number a
detectron2 user gets from ``--eval-only`` on the held-out set, with the validation split's per-class table. The
test predictions' cache already holds the test json as read (``Predictions.images.coco``); its annotations are
indexed here, as ``evaluate`` indexes the validation split's, and scored with the same pycocotools code
(``evaluate.evaluate_detections``) at the same :class:`~.selection.Selection` the export writes.
"""

from __future__ import annotations

import contextlib
import copy
import io
from pathlib import Path

from pycocotools import mask as mask_util
from pycocotools.coco import COCO

from ..core.errors import TinyVocError
from ..dataset.record import ClassMap
from .cache_file import Predictions
from .evaluate import evaluate_cached
from .selection import Selection


def labelled(coco: dict | None) -> bool:
    """Whether a split's json holds annotations to score against (a test json usually has none)."""
    return bool(coco and coco.get("annotations"))


def ground_truth(predictions: Predictions) -> COCO:
    """pycocotools' index of the split's annotations: the validation split's own, or a labelled test json's."""
    if predictions.split == "val":
        return predictions.ground_truth
    coco = predictions.images.coco if predictions.images is not None else None
    if not labelled(coco):
        raise TinyVocError(
            f"the {predictions.split} json has no annotations, so there is nothing to score it against; "
            "evaluate the validation split (--split val), or give a labelled test set (an export's test/ folder)"
        )
    dataset = copy.deepcopy(coco)  # COCOeval rewrites the polygons it evaluates as RLE
    sizes = {image["id"]: (image["height"], image["width"]) for image in dataset["images"]}
    for annotation in dataset["annotations"]:
        annotation.setdefault("iscrowd", 0)
        if "area" not in annotation:  # COCOeval needs it for its area ranges; some exports leave it out
            annotation["area"] = _area(annotation, *sizes[annotation["image_id"]])
    with contextlib.redirect_stdout(io.StringIO()):
        index = COCO()
        index.dataset = dataset
        index.createIndex()
    return index


def _area(annotation: dict, height: int, width: int) -> float:
    segmentation = annotation.get("segmentation")
    if isinstance(segmentation, list) and segmentation:
        return float(mask_util.area(mask_util.merge(mask_util.frPyObjects(segmentation, height, width))))
    if isinstance(segmentation, dict):
        rle = segmentation if isinstance(segmentation.get("counts"), (str, bytes)) else None
        rle = rle or mask_util.frPyObjects(segmentation, height, width)
        if isinstance(rle.get("counts"), str):
            rle = {**rle, "counts": rle["counts"].encode("ascii")}
        return float(mask_util.area(rle))
    _, _, w, h = annotation.get("bbox") or (0, 0, 0, 0)
    return float(w * h)


def score_split(predictions: Predictions, selection: Selection, save_to: str | Path | None = None) -> dict:
    """Mask and box AP (AP, AP50, AP75, per-class AP50) of ``selection`` on a split with ground truth; saved to
    ``save_to`` when given. For the validation split this is ``evaluate.evaluate_cached``'s result."""
    return evaluate_cached(predictions, selection, save_to, ground_truth(predictions), split=predictions.split)


def report(metrics: dict, class_map: ClassMap) -> str:
    """The lines 04 and ``tinyvoc evaluate`` print: mask and box AP, then AP50 per class (mask and box)."""
    from tabulate import tabulate

    split = {"val": "validation", "test": "test"}.get(metrics.get("split", ""), metrics.get("split", ""))
    segm, bbox = metrics["segm"], metrics["bbox"]
    lines = [
        f"{split} mask AP50 {segm['AP50']:.3f}, AP {segm['AP']:.3f}, AP75 {segm['AP75']:.3f}",
        f"{split} box  AP50 {bbox['AP50']:.3f}, AP {bbox['AP']:.3f}, AP75 {bbox['AP75']:.3f}",
    ]
    rows = []
    for category_id, name in zip(class_map.ids, class_map.names):
        cells = [metrics[kind].get("per_class_AP50", {}).get(category_id) for kind in ("segm", "bbox")]
        rows.append([f"{name} ({category_id})", *("-" if v is None or v != v else f"{v:.3f}" for v in cells)])
    lines.append(tabulate(rows, headers=["class (id)", "mask AP50", "box AP50"]))
    return "\n".join(lines)
