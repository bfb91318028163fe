"""Pre-labels: the model's kept detections as a COCO dataset a labelling tool imports, to correct, not to draw.

Model-assisted labelling (Roboflow's label assist, CVAT's and Label Studio's pre-annotations) is: train on 50
images, pre-label the next 500, correct them, train again. ``prelabels/<split>.json`` is an ordinary COCO
instance-segmentation file: every image of the split (also those without detections, so the tool lists them
all), the dataset's categories with its own ids, and one annotation per kept detection, at the threshold chosen
(04's ``SCORE_THRESH``, the view's export button). Tools edit polygons, so a mask becomes polygons (one per
separate part, all kept), traced by OpenCV; a mask with a hole cannot be one polygon without filling the hole, so
it is written as RLE (``iscrowd: 0``), as CVAT writes its brush masks. The model's ``score`` stays with each
annotation, as a key and as an attribute (CVAT shows ``attributes``), so the least certain can be checked first.
The file re-imports as training data unchanged (``DATASET`` = a folder with it and the images). Label Studio
does not import COCO itself; its tasks are written beside (``label_studio``). The tracing is ``polygons``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pycocotools import mask as mask_util

from ..core.atomic import write_json
from ..core.rle import to_pycocotools
from ..dataset.record import ClassMap
from ..inference.cache_file import Predictions
from ..inference.selection import Selection
from .coco_results import mask_boxes
from .label_studio import write_label_studio
from .polygons import Outline, trace


def mask_areas(segmentations: Sequence[dict]) -> list[int]:
    """Pixels of each compressed RLE mask. In chunks of 255: pycocotools' ``area`` sizes a uint8 array by the
    count, and 256 masks or more stop it with an OverflowError."""
    rles = [to_pycocotools(s) for s in segmentations]
    return [int(a) for start in range(0, len(rles), 255) for a in mask_util.area(rles[start : start + 255])]


def categories_of(class_map: ClassMap) -> list[dict]:
    """The dataset's categories, its own ids and names."""
    return [{"id": i, "name": n, "supercategory": ""} for i, n in zip(class_map.ids, class_map.names)]


def traced_annotations(rows: Sequence[dict], first_id: int = 1, decoded=None) -> list[tuple[dict, Outline]]:
    """One COCO annotation per row with a mask (kept detections: image_id, category_id, segmentation RLE, score),
    numbered from ``first_id``: polygons or RLE (:func:`~.polygons.segmentation_of`'s rule), the mask's box and
    area, the score; each with its :class:`~.polygons.Outline` (holes filled: what Label Studio gets), from the
    same trace. ``decoded``: the rows' ``DecodedMasks``, when one image's are decoded already."""
    boxes = (decoded.boxes.astype(float) if decoded else mask_boxes([r["segmentation"] for r in rows])).tolist()
    areas = mask_areas([r["segmentation"] for r in rows])
    annotations = []
    for k, (row, box, area) in enumerate(zip(rows, boxes, areas)):
        if not area:
            continue  # an empty mask labels nothing
        score = round(float(row["score"]), 5)
        outline = trace(row["segmentation"], decoded.crop(k) if decoded else None)
        annotation = {
            "id": first_id + len(annotations),
            "image_id": row["image_id"],
            "category_id": row["category_id"],
            "segmentation": row["segmentation"] if outline.has_hole or not outline.points else outline.polygons,
            "area": float(area),
            "bbox": [round(v, 2) for v in box],
            "iscrowd": 0,
            "score": score,
            "attributes": {"score": score, "occluded": False},
        }
        annotations.append((annotation, outline))
    return annotations


def prelabel_file(images: Sequence[dict], annotations: list[dict], class_map: ClassMap, description: str) -> dict:
    """The COCO dataset: ``images`` (id, file_name, width, height, as the split json has them), the annotations,
    the dataset's categories."""
    return {
        "info": {"description": description or "tinyvoc pre-labels: the model's detections, to correct"},
        "licenses": [],
        "images": [{k: im[k] for k in ("id", "file_name", "width", "height")} for im in images],
        "annotations": annotations,
        "categories": categories_of(class_map),
    }


def write_prelabels(predictions: Predictions, selection: Selection, target) -> Path:
    """``target`` (``prelabels/<split>.json``): what ``selection`` keeps of ``predictions``, on the split's images,
    with the split json's categories (the dataset's ids); and the same as Label Studio tasks beside it
    (``label_studio``). What the view's export button writes beside the submission, at the slider's threshold."""
    coco = predictions.images.coco
    traced = traced_annotations(selection.apply(predictions.detections))
    class_map = ClassMap.from_categories(coco["categories"])
    described = f"tinyvoc pre-labels of {predictions.split} at {selection.describe()}"
    write_label_studio(coco["images"], traced, class_map, target, described)
    return write_json(target, prelabel_file(coco["images"], [a for a, _ in traced], class_map, described))
