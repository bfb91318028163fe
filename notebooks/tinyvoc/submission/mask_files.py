"""Masks as files: one 16-bit PNG of instance ids per image, with a json of the instances beside it.

What a user of Ultralytics' ``save_txt`` or a segmentation pipeline expects from a trained model: per image
``<stem>.png`` whose pixels hold the instance id (0: background, 1: the best-scored instance, 2: the next, ...)
and ``<stem>.json`` naming each id's class, the dataset's category id, score and box. Where two instances
overlap, the better-scored one owns the pixel (as the overlays draw it); an instance wholly covered by better
ones keeps its entry in the json (its box and score) but no pixel. 16 bits hold 65,535 instances, far above the
model's 100 per image.

Two images whose stems clash (``a.jpg`` and ``a.png``, or ``x/a.jpg`` and ``y/a.jpg``) keep both:
:func:`output_stems` names each clash by its path, so no file is written over another.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from ..core.atomic import atomic_path, write_bytes
from ..core.paths import UNSAFE_IN_NAMES
from ..core.rle import decode_masks
from ..dataset.record import ClassMap
from .coco_results import mask_boxes

MAX_INSTANCES = np.iinfo(np.uint16).max


def output_stems(file_names: Sequence[str]) -> list[str]:
    """A distinct, file-system-safe name per image for the files written about it: the image's stem where it is
    unique, else its whole relative path with the suffix (``a.jpg`` -> ``a_jpg``, ``x/a.jpg`` -> ``x__a_jpg``)."""
    paths = [PurePosixPath(str(name).replace("\\", "/")) for name in file_names]
    stems = [_safe(p.stem) for p in paths]
    taken: dict[str, int] = {}
    for stem in stems:
        taken[stem.lower()] = taken.get(stem.lower(), 0) + 1  # case-blind: macOS and Windows folders are
    out = []
    for path, stem in zip(paths, stems):
        name = stem if taken[stem.lower()] == 1 else _safe("__".join(p for p in path.parts if p not in ("/", ".."))
                                                                  .replace(".", "_"))  # fmt: skip
        while name.lower() in {o.lower() for o in out}:  # still clashing (a.jpg beside a_jpg.png): number it
            name += "_"
        out.append(name)
    return out


def _safe(text: str) -> str:
    return UNSAFE_IN_NAMES.sub("_", text).lstrip(".") or "_"


@dataclass(frozen=True)
class DecodedMasks:
    """One image's kept masks decoded once, for the id map, the pre-label polygons and the overlay alike.

    ``masks`` is pycocotools' ``H x W x N`` Fortran-ordered array (each mask one contiguous block) as bools,
    decoded by ``core.rle.decode_masks`` (10x pycocotools' decoder); ``boxes`` each mask's ``[x, y, w, h]`` in
    whole pixels (pycocotools' ``toBbox``, zeros for an empty mask), so every use reads only the box, not the image.
    """

    masks: np.ndarray
    boxes: np.ndarray

    @classmethod
    def of(cls, rows: Sequence[dict], height: int, width: int) -> DecodedMasks:
        if not rows:
            return cls(np.zeros((height, width, 0), dtype=bool), np.zeros((0, 4), dtype=np.int64))
        segmentations = [r["segmentation"] for r in rows]
        return cls(decode_masks(segmentations), mask_boxes(segmentations).astype(np.int64))

    def crop(self, k: int) -> tuple[int, int, np.ndarray]:
        """``(top, left, mask k inside its box)``."""
        x, y, w, h = self.boxes[k]
        return int(y), int(x), self.masks[y : y + h, x : x + w, k]


def instance_ids(rows: Sequence[dict], height: int, width: int, decoded: DecodedMasks | None = None) -> np.ndarray:
    """``height x width`` uint16: at each pixel the 1-based position in ``rows`` (best first) of the first instance
    covering it, 0 where none does."""
    if len(rows) > MAX_INSTANCES:
        raise ValueError(f"{len(rows)} instances do not fit 16-bit ids")
    ids = np.zeros((height, width), dtype=np.uint16, order="F")  # column by column, as the masks are laid out
    decoded = decoded or DecodedMasks.of(rows, height, width)
    for k in range(len(rows) - 1, -1, -1):  # the worst first, so the best is painted last, on top
        top, left, crop = decoded.crop(k)
        if crop.size:
            np.copyto(ids[top : top + crop.shape[0], left : left + crop.shape[1]], np.uint16(k + 1), where=crop)
    return np.ascontiguousarray(ids)


def instances_json(rows: Sequence[dict], image: dict, class_map: ClassMap, boxes: np.ndarray | None = None) -> dict:
    """What ``<stem>.json`` holds: the image, and instance id -> class name, category id, score, mask's box
    (``boxes`` when known already)."""
    boxes = (mask_boxes([r["segmentation"] for r in rows]) if boxes is None else boxes).tolist()
    return {
        "image": image["file_name"],
        "image_id": image["id"],
        "height": image["height"],
        "width": image["width"],
        "instances": {
            str(k + 1): {
                "class": class_map.name_of(r["category_id"]),
                "category_id": r["category_id"],
                "score": round(float(r["score"]), 5),
                "bbox": [round(v, 2) for v in box],
            }
            for k, (r, box) in enumerate(zip(rows, boxes))
        },
    }


def write_mask_files(
    rows: Sequence[dict],
    image: dict,
    stem: str,
    folder: Path,
    class_map: ClassMap,
    ids: np.ndarray | None = None,
    boxes: np.ndarray | None = None,
) -> Path:
    """Write ``folder/<stem>.png`` (16-bit ids: ``ids`` when made already) and ``folder/<stem>.json`` for one
    image's kept rows (best first; their mask ``boxes`` when known)."""
    from PIL import Image

    folder = Path(folder)
    ids = instance_ids(rows, image["height"], image["width"]) if ids is None else ids
    png = folder / f"{stem}.png"
    with atomic_path(png, sync=False) as tmp:  # one of hundreds, written again by the next run: no flush each
        Image.fromarray(ids).save(tmp, format="PNG", compress_level=1)  # mode I;16: mostly zeros, fast to pack
    write_bytes(folder / f"{stem}.json", json.dumps(instances_json(rows, image, class_map, boxes)).encode(), sync=False)
    return png
