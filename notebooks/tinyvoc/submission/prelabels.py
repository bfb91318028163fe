"""Pre-labels: the model's kept detections as a COCO dataset a labelling tool imports, to correct, not to draw.

Model-assisted labelling (Roboflow's label assist, CVAT's and Label Studio's pre-annotations) is: train on 50
images, pre-label the next 500, correct them, train again. ``prelabels/<split>.json`` is an ordinary COCO
instance-segmentation file: every image of the split (also those without detections, so the tool lists them
all), the dataset's categories with its own ids, and one annotation per kept detection, at the threshold chosen
(04's ``SCORE_THRESH``, the view's export button). Tools edit polygons, so a mask becomes polygons (one per
separate part, all kept), traced by OpenCV; a mask with a hole cannot be one polygon without filling the hole, so
it is written as RLE (``iscrowd: 0``), as CVAT writes its brush masks. The model's ``score`` stays with each
annotation, as a key and as an attribute (CVAT shows ``attributes``), so the least certain can be checked first.
The file re-imports as training data unchanged (``DATASET`` = a folder with it and the images).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_util

from ..core.atomic import write_json
from ..core.rle import to_pycocotools
from ..dataset.record import ClassMap
from ..inference.cache_file import Predictions
from ..inference.selection import Selection
from .coco_results import mask_boxes
from .mask_files import DecodedMasks

MIN_POLYGON_POINTS = 3  # fewer is a line or a point: COCO and the tools need an area
SIMPLIFY_PX = 0.5  # the simplified outline's largest step from the traced one, in pixels
DOUBLED_BELOW_PX = 64 * 64  # masks of fewer pixels are traced at twice the size (see segmentation_of)


def segmentation_of(rle: dict, crop: tuple[int, int, np.ndarray] | None = None) -> list[list[float]] | dict:
    """A detection's mask as COCO polygons (every part with an area kept), or as the RLE itself when the mask has a
    hole (a polygon cannot leave it out) or only specks no polygon can hold. ``crop``: the mask inside its box,
    ``(top, left, pixels)``, when decoded already (``DecodedMasks.crop``).

    OpenCV traces the centres of the boundary pixels, a polygon half a pixel inside the mask: redrawn, it loses
    the mask's rim (a tenth of a 20-pixel object). Traced on the mask at twice the size, the centres sit a quarter
    pixel inside each edge, and pycocotools redraws the polygons to the same pixels (all but corners: 7 of 21,359
    pixels on 21 test shapes). That costs four times the pixels, so only masks smaller than
    :data:`DOUBLED_BELOW_PX` are traced doubled; on larger ones the half-pixel rim is a few percent of the area.
    The outline is then simplified to within half a pixel (``approxPolyDP``): a staircase of hundreds of points
    becomes the few a person corrects by hand in CVAT, and writes 5x faster. Only the mask's box is traced, so a
    small object in a large image costs little.
    """
    import cv2

    if crop is None:
        crop = DecodedMasks.of([{"segmentation": rle}], *rle["size"]).crop(0)
    top, left, pixels = crop
    if not pixels.any():  # an empty mask
        return rle
    zoom = 2 if np.count_nonzero(pixels) < DOUBLED_BELOW_PX else 1
    scaled = cv2.resize(pixels.astype(np.uint8), None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)
    traced = cv2.copyMakeBorder(scaled, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    contours, hierarchy = cv2.findContours(traced, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None or (hierarchy[0][:, 3] >= 0).any():  # a contour inside another: a hole
        return rle
    offset = np.array([left, top], dtype=float)
    polygons = []
    for contour in contours:
        points = cv2.approxPolyDP(contour, SIMPLIFY_PX * zoom, True).reshape(-1, 2)
        if len(points) >= MIN_POLYGON_POINTS:
            polygons.append(((points - 1 + 0.5) / zoom + offset).ravel().tolist())
    return polygons or rle


def mask_areas(segmentations: Sequence[dict]) -> list[int]:
    """Pixels of each compressed RLE mask. In chunks of 255: pycocotools' ``area`` sizes a uint8 array by the
    count, and 256 masks or more stop it with an OverflowError."""
    rles = [to_pycocotools(s) for s in segmentations]
    return [int(a) for start in range(0, len(rles), 255) for a in mask_util.area(rles[start : start + 255])]


def categories_of(class_map: ClassMap) -> list[dict]:
    """The dataset's categories, its own ids and names."""
    return [{"id": i, "name": n, "supercategory": ""} for i, n in zip(class_map.ids, class_map.names)]


def prelabel_annotations(rows: Sequence[dict], first_id: int = 1, decoded=None) -> list[dict]:
    """One COCO annotation per row with a mask (kept detections: image_id, category_id, segmentation RLE, score),
    numbered from ``first_id``: polygons or RLE (:func:`segmentation_of`), the mask's box and area, the score.
    ``decoded``: the rows' ``DecodedMasks``, when one image's are decoded already."""
    boxes = (decoded.boxes.astype(float) if decoded else mask_boxes([r["segmentation"] for r in rows])).tolist()
    areas = mask_areas([r["segmentation"] for r in rows])
    annotations = []
    for k, (row, box, area) in enumerate(zip(rows, boxes, areas)):
        if not area:
            continue  # an empty mask labels nothing
        score = round(float(row["score"]), 5)
        annotations.append(
            {
                "id": first_id + len(annotations),
                "image_id": row["image_id"],
                "category_id": row["category_id"],
                "segmentation": segmentation_of(row["segmentation"], decoded.crop(k) if decoded else None),
                "area": float(area),
                "bbox": [round(v, 2) for v in box],
                "iscrowd": 0,
                "score": score,
                "attributes": {"score": score, "occluded": False},
            }
        )
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


def prelabel_dataset(images: Sequence[dict], rows: Iterable[dict], class_map: ClassMap, description: str = "") -> dict:
    """The COCO dataset of ``rows`` on ``images`` (every image, with detections or not)."""
    return prelabel_file(images, prelabel_annotations(list(rows)), class_map, description)


def write_prelabels(predictions: Predictions, selection: Selection, target) -> Path:
    """``target`` (``prelabels/<split>.json``): what ``selection`` keeps of ``predictions``, on the split's images,
    with the split json's categories (the dataset's ids). What the view's export button writes beside the
    submission, at the slider's threshold."""
    coco = predictions.images.coco
    rows = selection.apply(predictions.detections)
    described = f"tinyvoc pre-labels of {predictions.split} at {selection.describe()}"
    return write_json(target, prelabel_dataset(coco["images"], rows, ClassMap.from_categories(coco["categories"]),
                                               described))  # fmt: skip
