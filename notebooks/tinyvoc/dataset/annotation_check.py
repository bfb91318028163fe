"""The problems of one COCO annotation: ids, category, bbox, polygons or RLE, against its image's size.

Split from ``check`` so that module reads the files and this one judges one object's geometry.
Each function returns ``(severity, message)`` pairs; the caller knows the json file and the
annotation id to name. What is checked is what detectron2's loader and pycocotools would trip on
(two-point or odd-length polygons, RLE of another size, zero-area masks) plus what trains but not as
meant (a bbox far from its mask, points far outside the image). What is judged over all annotations at once (no
mask, crowd regions) is counted by ``check``.
"""

from __future__ import annotations

import math

import numpy as np
from pycocotools import mask as mask_utils

from ..core.coco_json import describe_ids, is_int

ERROR = "error"
WARNING = "warning"
# An annotation without a mask (box-only labels, ``segmentation: []``): the check counts these and says it once.
NO_MASK = "no mask"

# Annotation tools round and clip differently; a point this far past the border is still "on" it.
EDGE_TOLERANCE_PX = 1.0
# A json bbox is only reported when it overlaps the mask's own bbox poorly AND a corner is off by more
# than a few pixels: rasterizing a polygon shifts the bbox of a small object by a pixel or two,
# which alone can drop the IoU below the threshold.
BBOX_MIN_IOU = 0.8
BBOX_TOLERANCE_PX = 3.0


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _bbox_iou(a, b) -> float:
    ax1, ay1, aw, ah = a
    bx1, by1, bw, bh = b
    ix = max(0.0, min(ax1 + aw, bx1 + bw) - max(ax1, bx1))
    iy = max(0.0, min(ay1 + ah, by1 + bh) - max(ay1, by1))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def annotation_problems(ann: dict, images: dict, categories: dict, json_name: str) -> list[tuple[str, str]]:
    """(severity, message) pairs for one annotation; the caller knows where it is."""
    found: list[tuple[str, str]] = []
    image_id, cat_id = ann.get("image_id"), ann.get("category_id")
    image = None
    if not is_int(image_id):
        found.append((ERROR, f"'image_id' must be an integer, got {image_id!r}"))
    elif image_id not in images:
        found.append((ERROR, f"image_id {image_id} is not in 'images' of {json_name}"))
    else:
        image = images[image_id]
    if not is_int(cat_id):
        found.append((ERROR, f"'category_id' must be an integer, got {cat_id!r}"))
    elif cat_id not in categories:
        found.append((ERROR, f"category_id {cat_id} is not in 'categories' (known ids: {describe_ids(categories)})"))

    bbox = ann.get("bbox")
    bbox_ok = isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox)
    if not bbox_ok:
        found.append((ERROR, f"'bbox' must be [x, y, width, height] with 4 numbers, got {bbox!r}"))
    elif bbox[2] < 0 or bbox[3] < 0:
        found.append((ERROR, f"bbox {bbox} has a negative width or height"))

    height, width = (image[1], image[2]) if image else (None, None)
    rle = _segmentation_rle(ann.get("segmentation"), height, width, found)
    if rle is None:
        return found
    if float(mask_utils.area(rle)) <= 0:
        found.append(
            (
                ERROR,
                "mask has zero area: the polygons enclose no pixel (collinear or repeated points, "
                "or entirely outside the image)",
            )
        )
        return found
    if bbox_ok:
        found += _bbox_vs_mask(bbox, [float(v) for v in mask_utils.toBbox(rle)])
    return found


def _bbox_vs_mask(bbox: list, mask_bbox: list) -> list[tuple[str, str]]:
    iou = _bbox_iou(bbox, mask_bbox)
    worst = max(
        abs(bbox[0] - mask_bbox[0]),
        abs(bbox[1] - mask_bbox[1]),
        abs(bbox[0] + bbox[2] - mask_bbox[0] - mask_bbox[2]),
        abs(bbox[1] + bbox[3] - mask_bbox[1] - mask_bbox[3]),
    )
    if iou < BBOX_MIN_IOU and worst > BBOX_TOLERANCE_PX:
        shown = [round(v, 1) for v in mask_bbox]
        message = (
            f"bbox {bbox} does not match the mask's bbox {shown} (IoU {iou:.2f}); "
            "detectron2 trains the box head on the json bbox"
        )
        return [(WARNING, message)]
    return []


def _segmentation_rle(seg, height, width, found: list):
    """The segmentation's merged RLE, or None when it cannot be rasterized; problems go to ``found``."""
    if seg is None or seg == [] or (isinstance(seg, list) and all(p == [] for p in seg)):
        found.append((ERROR, NO_MASK))
        return None
    size_known = height is not None and width is not None
    if isinstance(seg, dict):
        return _rle(seg, height, width, found) if size_known else None
    if not isinstance(seg, list):
        kind = type(seg).__name__
        found.append((ERROR, f"unsupported segmentation type {kind}: expected a list of polygons or an RLE object"))
        return None
    valid = True
    for k, poly in enumerate(seg):
        if not isinstance(poly, list):
            message = f"polygon {k} is a {type(poly).__name__}, expected a flat list [x1, y1, x2, y2, ...]"
        elif not all(_is_number(v) for v in poly):
            message = f"polygon {k} has non-numeric or non-finite coordinates"
        elif len(poly) % 2:
            message = f"polygon {k} has an odd number of coordinates ({len(poly)}); expected x, y pairs"
        elif len(poly) < 6:
            message = f"polygon {k} has {len(poly) // 2} points (needs >= 3)"
        else:
            continue
        found.append((ERROR, message))
        valid = False
    # pycocotools reads a 4-number "polygon" as a bbox, so only rasterize fully valid polygons.
    if not valid or not size_known:
        return None
    found += _points_outside(seg, height, width)
    return mask_utils.merge(mask_utils.frPyObjects(seg, height, width))


def _points_outside(polygons: list, height: int, width: int) -> list[tuple[str, str]]:
    """Points far outside are clipped by the rasterizer; usually a sign of swapped x/y or sizes."""
    found = []
    for k, poly in enumerate(polygons):
        xy = np.asarray(poly, dtype=float).reshape(-1, 2)
        outside = (
            (xy[:, 0] < -EDGE_TOLERANCE_PX)
            | (xy[:, 0] > width + EDGE_TOLERANCE_PX)
            | (xy[:, 1] < -EDGE_TOLERANCE_PX)
            | (xy[:, 1] > height + EDGE_TOLERANCE_PX)
        )
        if outside.any():
            first = xy[outside][0]
            message = (
                f"polygon {k} has {plural(int(outside.sum()), 'point')} outside the {width}x{height} "
                f"image (e.g. x={first[0]:g}, y={first[1]:g}); they are clipped"
            )
            found.append((WARNING, message))
    return found


def _rle(seg: dict, height: int, width: int, found: list):
    size, counts = seg.get("size"), seg.get("counts")
    if not (isinstance(size, list) and len(size) == 2 and all(is_int(v) for v in size)):
        found.append((ERROR, f"RLE 'size' must be [height, width], got {size!r}"))
        return None
    if size != [height, width]:
        found.append((ERROR, f"RLE size [height, width] = {size} does not match the image's [{height}, {width}]"))
        return None
    if isinstance(counts, list):
        if not all(is_int(v) and v >= 0 for v in counts):
            found.append((ERROR, "RLE 'counts' must be non-negative integers"))
            return None
        if sum(counts) != height * width:
            found.append((ERROR, f"RLE counts sum to {sum(counts)}, expected height * width = {height * width}"))
            return None
        return mask_utils.frPyObjects(seg, height, width)
    if isinstance(counts, (str, bytes)) and counts:
        rle = {"size": size, "counts": counts}
        try:
            mask_utils.area(rle)
        except Exception as exc:  # noqa: BLE001 - pycocotools gives no specific type for a corrupt string
            found.append((ERROR, f"RLE 'counts' cannot be decoded: {exc}"))
            return None
        return rle
    found.append((ERROR, f"RLE 'counts' must be a list of integers or a compressed string, got {counts!r:.40}"))
    return None
