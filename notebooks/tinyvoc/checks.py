"""Check the Tiny VOC COCO files and images before they are registered with detectron2.

detectron2 reads the json lazily and trusts it: a truncated file, a missing image, a wrong size or a
two-point polygon shows up minutes into training as a KeyError, an assert or a shape mismatch deep in
the data loader, without the file or the id that caused it. This module reads everything once, up
front, and reports every problem with the file, the image or annotation id, and what is wrong, so
the user can fix the data before spending GPU time.

Errors are problems that break registration or training; warnings are things that train but
probably not as the user expects (objects outside the image, crowd regions that are ignored, ...).
Only the standard library, numpy, Pillow and pycocotools are used, so the check runs before
torch/detectron2 are installed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from .errors import TinyVocError

ERROR = "error"
WARNING = "warning"

# Annotation tools round and clip differently; a point this far past the border is still "on" it.
EDGE_TOLERANCE_PX = 1.0
# A json bbox is only reported when it overlaps the mask's own bbox poorly AND a corner is off by more
# than a few pixels: rasterizing a polygon shifts the bbox of a small object by a pixel or two,
# which alone can drop the IoU below the threshold.
BBOX_MIN_IOU = 0.8
BBOX_TOLERANCE_PX = 3.0
# How far from the end of a JPEG its end-of-image marker may sit (some writers pad the file).
JPEG_TAIL_BYTES = 1024


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the data, located precisely enough to fix it by hand."""

    severity: str  # ERROR or WARNING
    file: str  # json or image path the problem is in
    where: str  # "image 17", "annotation 5 (image 3)", "category 4", or "" for the whole file
    message: str

    def __str__(self) -> str:
        # Only the file's name: the summary stays readable, and names are unique within the dataset.
        name = Path(self.file).name or self.file
        place = f"{name} {self.where}" if self.where else name
        return f"{self.severity.upper()} {place}: {self.message}"


@dataclass
class CheckReport:
    """Everything found in one check; nothing is dropped, only the summary truncates."""

    problems: list[Problem] = field(default_factory=list)
    stats: dict = field(default_factory=dict)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == WARNING]

    @property
    def ok(self) -> bool:
        """True when nothing blocks registration; warnings alone keep the run going."""
        return not self.errors

    def summary(self, limit: int = 30) -> str:
        """Readable report for a notebook cell or the terminal: counts, then errors, then warnings.

        At most ``limit`` problem lines are shown (errors take the budget first, since they must be
        fixed); the rest are counted in "... and N more" lines so none disappear silently.
        """
        errors, warnings = self.errors, self.warnings
        s = self.stats
        counts = (
            f"{s.get('images', 0)} images ({s.get('images_checked', 0)} image files read), "
            f"{s.get('annotations', 0)} annotations, {s.get('categories', 0)} categories"
        )
        if not errors and not warnings:
            return f"Dataset check passed: no errors, no warnings ({counts})."
        verdict = "FAILED" if errors else "passed with warnings"
        lines = [
            (
                f"Dataset check {verdict}: {_plural(len(errors), 'error')}, "
                f"{_plural(len(warnings), 'warning')} ({counts})."
            )
        ]
        budget = max(limit, 0)
        for title, group in (("Errors (fix these first):", errors), ("Warnings:", warnings)):
            if not group:
                continue
            lines.append(title)
            shown = group[:budget]
            budget -= len(shown)
            lines.extend(f"  {p}" for p in shown)
            if len(group) > len(shown):
                kind = "error" if group is errors else "warning"
                lines.append(f"  ... and {len(group) - len(shown)} more {kind}s")
        return "\n".join(lines)

    def raise_if_errors(self) -> None:
        """Stop a notebook before registration, with the full summary as the message."""
        if self.errors:
            raise TinyVocError(self.summary())


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _is_int(value) -> bool:
    # bool is an int subclass; True as an id is a data bug, not id 1.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _describe_ids(ids) -> str:
    """Short list of known ids for "unknown id" messages: a range when contiguous."""
    ids = sorted(ids)
    if not ids:
        return "none"
    if ids == list(range(ids[0], ids[-1] + 1)) and len(ids) > 2:
        return f"{ids[0]}..{ids[-1]}"
    if len(ids) > 10:
        return ", ".join(map(str, ids[:10])) + f", ... ({len(ids)} ids)"
    return ", ".join(map(str, ids))


def _bbox_iou(a, b) -> float:
    ax1, ay1, aw, ah = a
    bx1, by1, bw, bh = b
    ix = max(0.0, min(ax1 + aw, bx1 + bw) - max(ax1, bx1))
    iy = max(0.0, min(ay1 + ah, by1 + bh) - max(ay1, by1))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


class _FileChecker:
    """Checks one COCO json and its image folder, collecting problems instead of stopping."""

    def __init__(self, json_path, image_dir, *, require_annotations: bool, read_images: bool):
        self.json_path = Path(json_path)
        self.image_dir = Path(image_dir)
        self.require_annotations = require_annotations
        self.read_images = read_images
        self.problems: list[Problem] = []
        self.stats = {"images": 0, "annotations": 0, "categories": 0, "images_checked": 0}
        # id -> name, or None when the categories could not be read; check_dataset compares these.
        self.categories: dict | None = None

    def add(self, severity: str, where: str, message: str, file=None) -> None:
        self.problems.append(Problem(severity, str(file if file is not None else self.json_path), where, message))

    def error(self, where: str, message: str, file=None) -> None:
        self.add(ERROR, where, message, file)

    def warn(self, where: str, message: str, file=None) -> None:
        self.add(WARNING, where, message, file)

    def report(self) -> CheckReport:
        return CheckReport(list(self.problems), dict(self.stats))

    # --- the json file --------------------------------------------------------------------

    def run(self) -> CheckReport:
        data = self.load_json()
        folder_ok = self.check_image_dir(data)
        if data is None:
            return self.report()
        images = self.check_images(data["images"], folder_ok)
        self.categories = self.check_categories(data["categories"])
        self.check_annotations(data, images)
        return self.report()

    def load_json(self):
        """Parse the json; on failure say where it broke, since a truncated download is common."""
        path = self.json_path
        if not path.exists():
            self.error("", f"json file not found: {path}")
            return None
        if path.is_dir():
            self.error("", f"{path} is a folder; expected the COCO json file")
            return None
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            self.error("", f"cannot read {path}: {exc}")
            return None
        if not text.strip():
            self.error("", f"json file is empty ({path.stat().st_size} bytes); download it again")
            return None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            near_end = exc.pos >= len(text.rstrip()) - 1 or "Unterminated" in exc.msg
            hint = (
                "the file ends early: it looks truncated (interrupted download or copy); download it again"
                if near_end
                else "the file is corrupt; download it again"
            )
            self.error(
                "",
                f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno} "
                f"(character {exc.pos} of {len(text)}); {hint}",
            )
            return None
        if not isinstance(data, dict):
            self.error(
                "",
                f"not a COCO json: the top level is a {type(data).__name__}, expected an object with "
                "'images' and 'categories'",
            )
            return None
        broken = False
        for key in ("images", "categories"):
            if key not in data:
                self.error("", f"not a COCO json: no '{key}' key (keys found: {sorted(data)[:10]})")
                broken = True
            elif not isinstance(data[key], list):
                self.error("", f"not a COCO json: '{key}' is a {type(data[key]).__name__}, expected a list")
                broken = True
        if "annotations" in data and not isinstance(data["annotations"], list):
            self.error(
                "",
                f"not a COCO json: 'annotations' is a {type(data['annotations']).__name__}, expected a list",
            )
            broken = True
        return None if broken else data

    def check_image_dir(self, data) -> bool:
        """Folder-level problems are reported once instead of as one "missing" per image."""
        listed = len(data["images"]) if data else 0
        folder = self.image_dir
        if not folder.exists():
            self.error("", f"image folder not found: {folder}", file=folder)
            return False
        if not folder.is_dir():
            self.error("", f"{folder} is not a folder; expected the folder of images", file=folder)
            return False
        if not any(not p.name.startswith(".") for p in folder.iterdir()):
            self.error(
                "",
                f"image folder {folder} is empty ({_plural(listed, 'image')} listed in {self.json_path.name}); "
                "unzip the images there",
                file=folder,
            )
            return False
        return True

    # --- images ------------------------------------------------------------------------------

    def check_images(self, entries: list, folder_ok: bool) -> dict:
        """Validate image entries and files; return id -> (file_name, height, width) of usable ones."""
        self.stats["images"] = len(entries)
        images: dict = {}
        names_by_id = defaultdict(list)
        ids_by_name = defaultdict(list)
        missing = 0
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict):
                self.error(f"image entry #{index}", f"is a {type(entry).__name__}, expected an object")
                continue
            image_id = entry.get("id")
            if not _is_int(image_id):
                self.error(f"image entry #{index}", f"'id' must be an integer, got {image_id!r}")
                continue
            where = f"image {image_id}"
            file_name = entry.get("file_name")
            names_by_id[image_id].append(file_name)
            if not isinstance(file_name, str) or not file_name:
                self.error(where, f"'file_name' must be a non-empty string, got {file_name!r}")
                continue
            ids_by_name[file_name].append(image_id)
            height, width = entry.get("height"), entry.get("width")
            size_ok = True
            for key, value in (("height", height), ("width", width)):
                if not _is_int(value) or value <= 0:
                    self.error(where, f"'{key}' must be a positive integer, got {value!r} ({file_name})")
                    size_ok = False
            if image_id not in images:
                images[image_id] = (file_name, height, width) if size_ok else (file_name, None, None)
            if folder_ok and not self.check_image_file(where, file_name, height, width, size_ok):
                missing += 1

        for image_id, names in names_by_id.items():
            if len(names) > 1:
                self.error(
                    f"image {image_id}",
                    f"image id {image_id} is used by {len(names)} entries "
                    f"({', '.join(map(str, names))}); ids must be unique",
                )
        for name, ids in ids_by_name.items():
            if len(set(ids)) > 1:
                self.warn(
                    f"image {ids[0]}",
                    f"file {name} is listed under {len(ids)} image ids ({', '.join(map(str, ids))}); "
                    "it will be used more than once",
                )
        if folder_ok and entries and missing == len(entries):
            self.error(
                "",
                f"none of the {len(entries)} images listed are in {self.image_dir}: is it the right folder "
                f"for {self.json_path.name}?",
                file=self.image_dir,
            )
        return images

    def check_image_file(self, where: str, file_name: str, height, width, size_ok: bool) -> bool:
        """Return False when the file is missing. Reads only the header and verifies the file."""
        path = self.image_dir / file_name
        if not path.is_file():
            self.error(where, f"image file not found: {path} (listed in {self.json_path.name})", file=path)
            return False
        if not self.read_images:
            return True
        self.stats["images_checked"] += 1
        try:
            with Image.open(path) as im:
                # The stored size, before any EXIF rotation: detectron2 checks against this too.
                file_w, file_h = im.size
                image_format = im.format
                im.verify()
        except Exception as exc:  # noqa: BLE001 - PIL raises many types for broken files; all mean unreadable
            self.error(where, f"cannot read image {file_name}: {type(exc).__name__}: {exc}", file=path)
            return True
        if size_ok and (file_w, file_h) != (width, height):
            rotated = (file_w, file_h) == (height, width)
            note = (
                " (the json has width and height swapped, as if EXIF rotation were applied; EXIF rotation "
                "does not count, the size stored in the file does)"
                if rotated
                else " (EXIF rotation does not count: compare with the size stored in the file)"
            )
            self.error(
                where,
                f"size mismatch: {self.json_path.name} says width x height = {width}x{height}, "
                f"the file is {file_w}x{file_h}{note}",
                file=path,
            )
        if image_format == "JPEG" and not self.jpeg_has_end_marker(path):
            self.warn(
                where,
                f"{file_name} has no JPEG end marker: the file may be truncated (re-copy it)",
                file=path,
            )
        return True

    @staticmethod
    def jpeg_has_end_marker(path: Path) -> bool:
        """Cheap truncation test: verify() does not decode JPEG data, but a cut file loses its EOI."""
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - JPEG_TAIL_BYTES))
            return b"\xff\xd9" in fh.read()

    # --- categories --------------------------------------------------------------------------

    def check_categories(self, entries: list) -> dict:
        self.stats["categories"] = len(entries)
        categories: dict = {}
        names_by_id = defaultdict(list)
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict):
                self.error(f"category entry #{index}", f"is a {type(entry).__name__}, expected an object")
                continue
            cat_id, name = entry.get("id"), entry.get("name")
            if not _is_int(cat_id):
                self.error(f"category entry #{index}", f"'id' must be an integer, got {cat_id!r}")
                continue
            if not isinstance(name, str) or not name:
                self.error(f"category {cat_id}", f"'name' must be a non-empty string, got {name!r}")
            names_by_id[cat_id].append(name)
            categories.setdefault(cat_id, name)
        for cat_id, names in names_by_id.items():
            if len(names) > 1:
                self.error(
                    f"category {cat_id}",
                    f"category id {cat_id} is used by {len(names)} entries ({', '.join(map(repr, names))}); "
                    "ids must be unique",
                )
        if not entries:
            self.error("", "'categories' is empty: there are no classes to train")
        return categories

    # --- annotations -------------------------------------------------------------------------

    def check_annotations(self, data: dict, images: dict) -> None:
        annotations = data.get("annotations")
        if not self.require_annotations:
            if annotations:
                self.warn(
                    "",
                    f"has {_plural(len(annotations), 'annotation')}; a test json needs none, they are ignored",
                )
            self.stats["annotations"] = len(annotations or [])
            return
        if annotations is None:
            self.error("", "no 'annotations' key: a training json needs the object annotations")
            return
        self.stats["annotations"] = len(annotations)
        if not annotations:
            self.error("", "'annotations' is empty: there is nothing to train on")
            return
        image_ids_by_ann = defaultdict(list)
        annotated = set()
        for index, ann in enumerate(annotations):
            if not isinstance(ann, dict):
                self.error(f"annotation entry #{index}", f"is a {type(ann).__name__}, expected an object")
                continue
            ann_id, image_id = ann.get("id"), ann.get("image_id")
            if not _is_int(ann_id):
                where = f"annotation entry #{index} (image {image_id})"
                self.error(where, f"'id' must be an integer, got {ann_id!r}")
            else:
                where = f"annotation {ann_id} (image {image_id})"
                image_ids_by_ann[ann_id].append(image_id)
            if _is_int(image_id):
                annotated.add(image_id)
            self.check_annotation(where, ann, images)
        for ann_id, image_ids in image_ids_by_ann.items():
            if len(image_ids) > 1:
                self.error(
                    f"annotation {ann_id}",
                    f"annotation id {ann_id} is used by {len(image_ids)} annotations "
                    f"(images {', '.join(map(str, image_ids))}); ids must be unique",
                )
        for image_id, (file_name, _, _) in images.items():
            if image_id not in annotated:
                self.warn(
                    f"image {image_id}",
                    f"{file_name} has no annotations; detectron2 leaves it out of training",
                )

    def check_annotation(self, where: str, ann: dict, images: dict) -> None:
        image_id, cat_id = ann.get("image_id"), ann.get("category_id")
        image = None
        if not _is_int(image_id):
            self.error(where, f"'image_id' must be an integer, got {image_id!r}")
        elif image_id not in images:
            self.error(where, f"image_id {image_id} is not in 'images' of {self.json_path.name}")
        else:
            image = images[image_id]
        if not _is_int(cat_id):
            self.error(where, f"'category_id' must be an integer, got {cat_id!r}")
        elif self.categories is not None and cat_id not in self.categories:
            self.error(
                where,
                f"category_id {cat_id} is not in 'categories' (known ids: {_describe_ids(self.categories)})",
            )
        if ann.get("iscrowd"):
            self.warn(where, "iscrowd=1: detectron2 ignores crowd regions for training, this object is not learned")

        bbox = ann.get("bbox")
        bbox_ok = isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox)
        if not bbox_ok:
            self.error(where, f"'bbox' must be [x, y, width, height] with 4 numbers, got {bbox!r}")
        elif bbox[2] < 0 or bbox[3] < 0:
            self.error(where, f"bbox {bbox} has a negative width or height")

        height, width = (image[1], image[2]) if image else (None, None)
        rle = self.check_segmentation(where, ann.get("segmentation"), height, width)
        if rle is None:
            return
        area = float(mask_utils.area(rle))
        if area <= 0:
            self.error(
                where,
                "mask has zero area: the polygons enclose no pixel (collinear or repeated points, "
                "or entirely outside the image)",
            )
            return
        if bbox_ok:
            mask_bbox = [float(v) for v in mask_utils.toBbox(rle)]
            iou = _bbox_iou(bbox, mask_bbox)
            worst = max(
                abs(bbox[0] - mask_bbox[0]),
                abs(bbox[1] - mask_bbox[1]),
                abs(bbox[0] + bbox[2] - mask_bbox[0] - mask_bbox[2]),
                abs(bbox[1] + bbox[3] - mask_bbox[1] - mask_bbox[3]),
            )
            if iou < BBOX_MIN_IOU and worst > BBOX_TOLERANCE_PX:
                shown = [round(v, 1) for v in mask_bbox]
                self.warn(
                    where,
                    f"bbox {bbox} does not match the mask's bbox {shown} (IoU {iou:.2f}); "
                    "detectron2 trains the box head on the json bbox",
                )

    def check_segmentation(self, where: str, seg, height, width):
        """Validate the segmentation; return its merged RLE, or None when it cannot be rasterized."""
        if seg is None:
            self.error(where, "no 'segmentation': Mask R-CNN needs a mask for every object")
            return None
        size_known = height is not None and width is not None
        if isinstance(seg, dict):
            return self.check_rle(where, seg, height, width) if size_known else None
        if not isinstance(seg, list):
            self.error(
                where,
                f"unsupported segmentation type {type(seg).__name__}: expected a list of polygons or an RLE object",
            )
            return None
        if not seg:
            self.error(where, "segmentation is an empty list: the object has no mask")
            return None
        valid = True
        for k, poly in enumerate(seg):
            if not isinstance(poly, list):
                self.error(
                    where,
                    f"polygon {k} is a {type(poly).__name__}, expected a flat list [x1, y1, x2, y2, ...]",
                )
                valid = False
            elif not all(_is_number(v) for v in poly):
                self.error(where, f"polygon {k} has non-numeric or non-finite coordinates")
                valid = False
            elif len(poly) % 2:
                self.error(where, f"polygon {k} has an odd number of coordinates ({len(poly)}); expected x, y pairs")
                valid = False
            elif len(poly) < 6:
                self.error(where, f"polygon {k} has {len(poly) // 2} points (needs >= 3)")
                valid = False
        # pycocotools reads a 4-number "polygon" as a bbox, so only rasterize fully valid polygons.
        if not valid or not size_known:
            return None
        self.check_points_inside(where, seg, height, width)
        return mask_utils.merge(mask_utils.frPyObjects(seg, height, width))

    def check_points_inside(self, where: str, polygons: list, height: int, width: int) -> None:
        """Points far outside are clipped by the rasterizer; usually a sign of swapped x/y or sizes."""
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
                self.warn(
                    where,
                    f"polygon {k} has {_plural(int(outside.sum()), 'point')} outside the {width}x{height} "
                    f"image (e.g. x={first[0]:g}, y={first[1]:g}); they are clipped",
                )

    def check_rle(self, where: str, seg: dict, height: int, width: int):
        size, counts = seg.get("size"), seg.get("counts")
        if not (isinstance(size, list) and len(size) == 2 and all(_is_int(v) for v in size)):
            self.error(where, f"RLE 'size' must be [height, width], got {size!r}")
            return None
        if size != [height, width]:
            self.error(
                where,
                f"RLE size [height, width] = {size} does not match the image's [{height}, {width}]",
            )
            return None
        if isinstance(counts, list):
            if not all(_is_int(v) and v >= 0 for v in counts):
                self.error(where, "RLE 'counts' must be non-negative integers")
                return None
            if sum(counts) != height * width:
                self.error(
                    where,
                    f"RLE counts sum to {sum(counts)}, expected height * width = {height * width}",
                )
                return None
            return mask_utils.frPyObjects(seg, height, width)
        if isinstance(counts, (str, bytes)) and counts:
            try:
                rle = {"size": size, "counts": counts}
                mask_utils.area(rle)
            except Exception as exc:  # noqa: BLE001 - pycocotools gives no specific type for a corrupt string
                self.error(where, f"RLE 'counts' cannot be decoded: {exc}")
                return None
            return rle
        self.error(where, f"RLE 'counts' must be a list of integers or a compressed string, got {counts!r:.40}")
        return None


def check_coco_file(json_path, image_dir, *, require_annotations: bool, read_images: bool = True) -> CheckReport:
    """Check one COCO json against its image folder.

    ``require_annotations`` is True for the training json (objects must be there and be valid) and
    False for the test json (annotations are not expected; if present they only earn a warning).
    ``read_images=False`` checks only that the image files exist, for a quick pass over a slow disk.
    """
    checker = _FileChecker(json_path, image_dir, require_annotations=require_annotations, read_images=read_images)
    return checker.run()


def check_dataset(train_json, train_images, test_json=None, test_images=None, read_images=True) -> CheckReport:
    """Check the train set (and the test set when given) and merge the results into one report.

    Also an error when the two jsons disagree on categories: detectron2 maps category ids to class
    indices per dataset, so a different list would make test predictions use the wrong class names.
    """
    if (test_json is None) != (test_images is None):
        raise TinyVocError("check_dataset: give both test_json and test_images, or neither")
    train = _FileChecker(train_json, train_images, require_annotations=True, read_images=read_images)
    train.run()
    checkers = [train]
    problems = list(train.problems)
    if test_json is not None:
        test = _FileChecker(test_json, test_images, require_annotations=False, read_images=read_images)
        test.run()
        checkers.append(test)
        problems.extend(test.problems)
        if train.categories is not None and test.categories is not None:
            problems.extend(_compare_categories(train.categories, test.categories, train.json_path, test.json_path))
    stats = {key: sum(c.stats[key] for c in checkers) for key in ("images", "annotations", "images_checked")}
    stats["categories"] = train.stats["categories"]
    return CheckReport(problems, stats)


def _compare_categories(train: dict, test: dict, train_path: Path, test_path: Path) -> list[Problem]:
    """One error per differing category id, reported on the test json."""
    problems = []
    for cat_id in sorted(set(train) | set(test)):
        if cat_id not in test:
            message = f"category {cat_id} ({train[cat_id]!r}) is in {train_path.name} but not in this file"
        elif cat_id not in train:
            message = f"category {cat_id} ({test[cat_id]!r}) is not in {train_path.name}"
        elif train[cat_id] != test[cat_id]:
            message = f"category {cat_id} is {test[cat_id]!r} here but {train[cat_id]!r} in {train_path.name}"
        else:
            continue
        problems.append(
            Problem(
                ERROR,
                str(test_path),
                f"category {cat_id}",
                message + "; train and test categories must match",
            )
        )
    return problems


def main(argv=None) -> int:
    """CLI: ``python -m tinyvoc.checks TRAIN_JSON TRAIN_IMAGES [--test-json F --test-images D]``.

    Exit status 0 when there are no errors (warnings allowed), 1 when there are, so scripts and
    make targets can stop before training.
    """
    parser = argparse.ArgumentParser(
        prog="python -m tinyvoc.checks",
        description="Check the Tiny VOC COCO json files and images before registering them.",
    )
    parser.add_argument("train_json", help="training json, e.g. data/pascal_train.json")
    parser.add_argument("train_images", help="folder of training images")
    parser.add_argument("--test-json", help="test json (images and categories only)")
    parser.add_argument("--test-images", help="folder of test images")
    parser.add_argument("--no-images", action="store_true", help="only check that image files exist; do not open them")
    parser.add_argument("--limit", type=int, default=30, help="most problem lines to print (default 30)")
    args = parser.parse_args(argv)
    if (args.test_json is None) != (args.test_images is None):
        parser.error("--test-json and --test-images go together")
    report = check_dataset(
        args.train_json,
        args.train_images,
        args.test_json,
        args.test_images,
        read_images=not args.no_images,
    )
    print(report.summary(limit=args.limit))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
