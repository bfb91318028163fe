"""Check a COCO dataset (the course's Tiny VOC files or your own export) before it is registered with detectron2.

detectron2 reads the json lazily and trusts it: a truncated file, a missing image, a wrong size or a
two-point polygon shows up minutes into training as a KeyError, an assert or a shape mismatch deep in
the data loader, without the file or the id that caused it. This module reads everything once, up
front, and reports every problem with the file, the image or annotation id, and what is wrong, so
the user can fix the data before spending GPU time.

Images are read the way training and prediction read them (``core.image_reader``: detectron2's own
``read_image`` and ``check_image_size`` with the config's format), so the check and the loader cannot
disagree: every image the check passes, the loader reads; every one it cannot is an error naming the
file. EXIF-rotated images are errors (the reason is in ``core.image_reader``).

Errors are problems that break registration or training; warnings are things that train but
probably not as the user expects (objects outside the image, crowd regions that are ignored, ...).
Like ``validate``, the work is done by module-level functions that return lists of problems; the
only classes are the two records they fill. This module reads the files (json structure, ids, image
files, categories); one annotation's geometry is judged in ``annotation_check``.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..core.coco_json import describe_json_error, is_int
from ..core.errors import TinyVocError
from ..core.image_reader import LOADER_FORMAT, ImageToRead, read_problems
from .annotation_check import ERROR, NO_MASK, WARNING, annotation_problems, plural


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
class DatasetReport:
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

        Problems of one kind (the same message but for its numbers and names) are one line, the first of
        them, and a count of the rest with where the next few are: a json with 3,000 box-only annotations
        says so once. At most ``limit`` kinds are shown (errors take the budget first, since they must be
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
            (f"Dataset check {verdict}: {plural(len(errors), 'error')}, {plural(len(warnings), 'warning')} ({counts}).")
        ]
        budget = max(limit, 0)
        for title, group in (("Errors (fix these first):", errors), ("Warnings:", warnings)):
            if not group:
                continue
            lines.append(title)
            kinds = _by_kind(group)
            shown = kinds[:budget]
            budget -= len(shown)
            for first, *rest in shown:
                lines.append(f"  {first}")
                if rest:
                    places = ", ".join(p.where or Path(p.file).name for p in rest[:3])
                    lines.append(f"    ... and {len(rest)} more like it ({places}{', ...' if len(rest) > 3 else ''})")
            if len(kinds) > len(shown):
                kind = "error" if group is errors else "warning"
                left = sum(len(k) for k in kinds[len(shown) :])
                lines.append(f"  ... and {left} more {kind}s of {plural(len(kinds) - len(shown), 'other kind')}")
        return "\n".join(lines)

    def raise_if_errors(self) -> None:
        """Stop a notebook before registration, with the full summary as the message."""
        if self.errors:
            raise TinyVocError(self.summary())


# What makes two messages one kind: their numbers, quoted values, paths and file names set aside.
_PARTICULARS = re.compile(
    r"'[^']*'|\S*[/\\]\S*|\S+\.(?:jpe?g|png|bmp|tiff?|webp|json)\b|-?\d+(?:\.\d+)?", re.IGNORECASE
)


def _by_kind(problems: list[Problem]) -> list[list[Problem]]:
    """``problems`` grouped by kind, in the order each kind first appears."""
    kinds: dict[str, list[Problem]] = {}
    for problem in problems:
        kinds.setdefault(_PARTICULARS.sub("#", problem.message), []).append(problem)
    return list(kinds.values())


def _error(file, where: str, message: str) -> Problem:
    return Problem(ERROR, str(file), where, message)


def _warning(file, where: str, message: str) -> Problem:
    return Problem(WARNING, str(file), where, message)


# --- one file --------------------------------------------------------------------------------------


def check_coco_file(
    json_path,
    image_dir,
    *,
    require_annotations: bool,
    read_images: bool = True,
    image_format: str = LOADER_FORMAT,
    workers: int | None = None,
    progress=print,
) -> DatasetReport:
    """Check one COCO json against its image folder.

    ``require_annotations`` is True for the training json (objects must be there and be valid) and
    False for the test json (annotations are not expected; if present they only earn a warning).
    ``read_images=False`` checks only that the image files exist, for a quick pass over a slow disk.
    ``image_format`` is the config's ``INPUT.FORMAT``; ``progress`` gets a line every 10% of a large
    folder (None: silent).
    """
    report, _ = _check_file(
        Path(json_path),
        Path(image_dir),
        require_annotations=require_annotations,
        read_images=read_images,
        image_format=image_format,
        workers=workers,
        progress=progress,
    )
    return report


def _check_file(
    json_path: Path, image_dir: Path, *, require_annotations: bool, keep_empty_images: bool = False, **read_options
):
    """The report for one json, and its categories (id -> name, None when unreadable) for comparison."""
    stats = {"images": 0, "annotations": 0, "categories": 0, "images_checked": 0}
    data, problems = _load_json(json_path)
    folder_problems = _check_image_dir(image_dir, json_path, len(data["images"]) if data else 0)
    problems += folder_problems
    if data is None:
        return DatasetReport(problems, stats), None
    stats["images"] = len(data["images"])
    images, listed, entry_problems = _check_image_entries(data["images"], json_path)
    problems += entry_problems
    if not folder_problems:
        file_problems, stats["images_checked"] = _check_image_files(
            listed, len(data["images"]), image_dir, json_path, **read_options
        )
        problems += file_problems
    stats["categories"] = len(data["categories"])
    categories, category_problems = _check_categories(data["categories"], json_path)
    problems += category_problems
    stats["annotations"], annotation_problems = _check_annotations(
        data, images, categories, json_path, require_annotations, keep_empty_images
    )
    problems += annotation_problems + _large_images(images, json_path)
    return DatasetReport(problems, stats), categories


def _load_json(path: Path) -> tuple[dict | None, list[Problem]]:
    """Parse the json; on failure say where it broke, since a truncated download is common."""
    if not path.exists():
        return None, [_error(path, "", f"json file not found: {path}")]
    if path.is_dir():
        return None, [_error(path, "", f"{path} is a folder; expected the COCO json file")]
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [_error(path, "", f"cannot read {path}: {exc}")]
    if not text.strip():
        return None, [_error(path, "", f"json file is empty ({path.stat().st_size} bytes); download it again")]
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, [_error(path, "", describe_json_error(text, exc))]
    if not isinstance(data, dict):
        message = (
            f"not a COCO json: the top level is a {type(data).__name__}, expected an object with "
            "'images' and 'categories'"
        )
        return None, [_error(path, "", message)]
    problems = []
    for key in ("images", "categories"):
        if key not in data:
            problems.append(_error(path, "", f"not a COCO json: no '{key}' key (keys found: {sorted(data)[:10]})"))
        elif not isinstance(data[key], list):
            problems.append(
                _error(path, "", f"not a COCO json: '{key}' is a {type(data[key]).__name__}, expected a list")
            )
    if "annotations" in data and not isinstance(data["annotations"], list):
        kind = type(data["annotations"]).__name__
        problems.append(_error(path, "", f"not a COCO json: 'annotations' is a {kind}, expected a list"))
    return (None if problems else data), problems


def _check_image_dir(folder: Path, json_path: Path, listed: int) -> list[Problem]:
    """Folder-level problems are reported once instead of as one "missing" per image."""
    if not folder.exists():
        return [_error(folder, "", f"image folder not found: {folder}")]
    if not folder.is_dir():
        return [_error(folder, "", f"{folder} is not a folder; expected the folder of images")]
    if not any(not p.name.startswith(".") for p in folder.iterdir()):
        message = (
            f"image folder {folder} is empty ({plural(listed, 'image')} listed in {json_path.name}); "
            "unzip the images there"
        )
        return [_error(folder, "", message)]
    return []


# --- images ------------------------------------------------------------------------------------------


def _check_image_entries(entries: list, json_path: Path):
    """Validate the 'images' entries.

    Returns id -> (file_name, height, width) of usable entries (sizes None when invalid), the
    (where, file_name, height, width) of every entry whose file should be looked at, and the problems.
    """
    problems: list[Problem] = []
    images: dict = {}
    listed: list[tuple] = []
    names_by_id = defaultdict(list)
    ids_by_name = defaultdict(list)
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            problems.append(
                _error(json_path, f"image entry #{index}", f"is a {type(entry).__name__}, expected an object")
            )
            continue
        image_id = entry.get("id")
        if not is_int(image_id):
            problems.append(_error(json_path, f"image entry #{index}", f"'id' must be an integer, got {image_id!r}"))
            continue
        where = f"image {image_id}"
        file_name = entry.get("file_name")
        names_by_id[image_id].append(file_name)
        if not isinstance(file_name, str) or not file_name:
            problems.append(_error(json_path, where, f"'file_name' must be a non-empty string, got {file_name!r}"))
            continue
        ids_by_name[file_name].append(image_id)
        height, width = entry.get("height"), entry.get("width")
        size_ok = True
        for key, value in (("height", height), ("width", width)):
            if not is_int(value) or value <= 0:
                problems.append(
                    _error(json_path, where, f"'{key}' must be a positive integer, got {value!r} ({file_name})")
                )
                size_ok = False
        if not size_ok:
            height = width = None
        images.setdefault(image_id, (file_name, height, width))
        listed.append((where, file_name, height, width))

    problems += _reused_ids(json_path, "image", names_by_id, "entries", lambda names: ", ".join(map(str, names)))
    for name, ids in ids_by_name.items():
        if len(set(ids)) > 1:
            message = (
                f"file {name} is listed under {len(ids)} image ids ({', '.join(map(str, ids))}); "
                "it will be used more than once"
            )
            problems.append(_warning(json_path, f"image {ids[0]}", message))
    return images, listed, problems


def _objects(entries: list, json_path: Path, label: str, problems: list[Problem]):
    """(index, entry) for the entries that are json objects; an error in ``problems`` for each other one."""
    for index, entry in enumerate(entries):
        if isinstance(entry, dict):
            yield index, entry
        else:
            message = f"is a {type(entry).__name__}, expected an object"
            problems.append(_error(json_path, f"{label} #{index}", message))


def _reused_ids(json_path: Path, kind: str, users_by_id: dict, noun: str, describe) -> list[Problem]:
    """An error for each ``kind`` id that more than one entry uses: ``<kind> id N is used by 2 <noun> (...)``."""
    return [
        _error(
            json_path,
            f"{kind} {id_}",
            f"{kind} id {id_} is used by {len(users)} {noun} ({describe(users)}); ids must be unique",
        )
        for id_, users in users_by_id.items()
        if len(users) > 1
    ]


def _check_image_files(
    listed: list[tuple],
    n_entries: int,
    image_dir: Path,
    json_path: Path,
    *,
    read_images: bool,
    image_format: str,
    workers: int | None,
    progress,
) -> tuple[list[Problem], int]:
    """Missing files, then every present file read as the loader reads it; returns (problems, files read)."""
    problems: list[Problem] = []
    present: list[tuple[str, ImageToRead]] = []
    for where, file_name, height, width in listed:
        path = image_dir / file_name
        if path.is_file():
            present.append((where, ImageToRead(path, height, width, json_path.name)))
        else:
            problems.append(_error(path, where, f"image file not found: {path} (listed in {json_path.name})"))
    if n_entries and len(listed) - len(present) == n_entries:
        message = (
            f"none of the {n_entries} images listed are in {image_dir}: is it the right folder for {json_path.name}?"
        )
        problems.append(_error(image_dir, "", message))
    if not read_images or not present:
        return problems, 0
    results = read_problems(
        [item for _, item in present],
        image_format,
        workers=workers,
        label=f"images of {json_path.name}",
        progress=progress,
    )
    problems += [_error(item.path, where, message) for (where, item), message in zip(present, results) if message]
    return problems, len(present)


# --- categories --------------------------------------------------------------------------------------


def _check_categories(entries: list, json_path: Path) -> tuple[dict, list[Problem]]:
    """id -> name of the categories, and their problems."""
    problems: list[Problem] = []
    categories: dict = {}
    names_by_id = defaultdict(list)
    for index, entry in _objects(entries, json_path, "category entry", problems):
        cat_id, name = entry.get("id"), entry.get("name")
        if not is_int(cat_id):
            problems.append(_error(json_path, f"category entry #{index}", f"'id' must be an integer, got {cat_id!r}"))
            continue
        if not isinstance(name, str) or not name:
            problems.append(_error(json_path, f"category {cat_id}", f"'name' must be a non-empty string, got {name!r}"))
        names_by_id[cat_id].append(name)
        categories.setdefault(cat_id, name)
    problems += _reused_ids(json_path, "category", names_by_id, "entries", lambda names: ", ".join(map(repr, names)))
    if not entries:
        problems.append(_error(json_path, "", "'categories' is empty: there are no classes to train"))
    return categories, problems


# --- annotations -------------------------------------------------------------------------------------


def _check_annotations(
    data: dict, images: dict, categories: dict, json_path: Path, require_annotations: bool, keep_empty_images: bool
) -> tuple[int, list[Problem]]:
    """(number of annotations, problems) of the json's annotations against its images and categories."""
    annotations = data.get("annotations")
    if not require_annotations:
        problems = []
        if annotations:
            message = (
                f"has {plural(len(annotations), 'annotation')}: a labelled test set, so 04 and "
                "`tinyvoc evaluate --split test` score the predictions against them (mask and box AP)"
            )
            problems.append(_warning(json_path, "", message))
        return len(annotations or []), problems
    if annotations is None:
        return 0, [_error(json_path, "", "no 'annotations' key: a training json needs the object annotations")]
    if not annotations:
        return 0, [_error(json_path, "", "'annotations' is empty: there is nothing to train on")]
    problems: list[Problem] = []
    image_ids_by_ann = defaultdict(list)
    annotated = set()
    counted: dict[str, list[str]] = defaultdict(list)  # what is said once for all annotations: where each is
    for index, ann in _objects(annotations, json_path, "annotation entry", problems):
        ann_id, image_id = ann.get("id"), ann.get("image_id")
        if not is_int(ann_id):
            where = f"annotation entry #{index} (image {image_id})"
            problems.append(_error(json_path, where, f"'id' must be an integer, got {ann_id!r}"))
        else:
            where = f"annotation {ann_id} (image {image_id})"
            image_ids_by_ann[ann_id].append(image_id)
        if is_int(image_id):
            annotated.add(image_id)
        if ann.get("iscrowd"):
            counted["crowd"].append(where)
        if ann.get("ignore"):
            counted["ignore"].append(where)
        if _tiny(ann, images.get(image_id)):
            counted["tiny"].append(where)
        for severity, message in annotation_problems(ann, images, categories, json_path.name):
            if message == NO_MASK:
                counted["no mask"].append(where)
            else:
                problems.append(Problem(severity, str(json_path), where, message))
    problems += _reused_ids(
        json_path, "annotation", image_ids_by_ann, "annotations", lambda ids: "images " + ", ".join(map(str, ids))
    )
    problems += _counted(counted, len(annotations), json_path)
    empty = [image_id for image_id in images if image_id not in annotated]
    if empty:
        what = (
            "kept as negative examples (KEEP_EMPTY_IMAGES = True)"
            if keep_empty_images
            else "left out of training, as detectron2 does (KEEP_EMPTY_IMAGES = True keeps them as negative examples)"
        )
        message = f"{len(empty)} of {len(images)} images have no annotations (e.g. {images[empty[0]][0]}): {what}"
        problems.append(_warning(json_path, "", message))
    return len(annotations), problems


# The training size of every profile's test and of detectron2's defaults: images are scaled to this.
TRAIN_SHORT_SIDE, TRAIN_LONG_SIDE = 800, 1333
MIN_OBJECT_PX = 4  # an object this small at the training size is a few feature-map cells at best
CROWD_STOP_SHARE = 0.5  # more crowd regions than this share: nothing much would be learned


def _tiny(ann: dict, image) -> bool:
    """True when the object's box shrinks below ``MIN_OBJECT_PX`` once the image is scaled to the training size."""
    bbox = ann.get("bbox")
    if image is None or image[1] is None or not (isinstance(bbox, list) and len(bbox) == 4):
        return False
    _, height, width = image
    scale = min(TRAIN_SHORT_SIDE / min(height, width), TRAIN_LONG_SIDE / max(height, width))
    try:
        return 0 < max(float(bbox[2]), float(bbox[3])) * scale < MIN_OBJECT_PX
    except (TypeError, ValueError):
        return False


def _counted(counted: dict[str, list[str]], total: int, json_path: Path) -> list[Problem]:
    """One problem per kind counted over all annotations, with the count and the first place."""
    problems = []

    def first(kind):
        return f"e.g. {counted[kind][0]}"

    if counted["no mask"]:
        message = (
            f"{len(counted['no mask'])} of {total} annotations have no mask (no 'segmentation', or an empty one: "
            f"box-only labels; {first('no mask')}): Mask R-CNN learns a mask for every object. Export again with "
            "masks (polygons or RLE), or delete the box-only annotations"
        )
        problems.append(_error(json_path, "", message))
    crowd = len(counted["crowd"])
    if crowd:
        said = (
            f"{crowd} of {total} annotations are crowd regions (iscrowd: 1; {first('crowd')}), which detectron2 "
            "leaves out of training"
        )
        if crowd > CROWD_STOP_SHARE * total:
            message = (
                f"{said}: nothing much would be learned. CVAT exports masks drawn with its brush tool this way; "
                "set CROWD_AS_OBJECTS = True (command line: --crowd-as-objects) to train them as objects"
            )
            problems.append(_error(json_path, "", message))
        else:
            problems.append(_warning(json_path, "", f"{said}; CROWD_AS_OBJECTS = True trains them as objects"))
    if counted["ignore"]:
        message = (
            f"{len(counted['ignore'])} annotations have 'ignore' set ({first('ignore')}): detectron2 stops on them "
            "with an assertion; remove the key, or those annotations"
        )
        problems.append(_error(json_path, "", message))
    if counted["tiny"]:
        message = (
            f"{len(counted['tiny'])} of {total} objects are under {MIN_OBJECT_PX} px once their image is scaled to "
            f"the training size ({TRAIN_SHORT_SIDE} px short side, at most {TRAIN_LONG_SIDE}; {first('tiny')}): the "
            "model can hardly see them; crop or tile the images around them"
        )
        problems.append(_warning(json_path, "", message))
    return problems


def _large_images(images: dict, json_path: Path) -> list[Problem]:
    """One warning for images far above the training size (phone photos): slow to load, memory-hungry."""
    sized = [(w, h) for _, h, w in images.values() if h is not None]
    large = [(w, h) for w, h in sized if max(w, h) > 2 * TRAIN_LONG_SIDE]
    if not large:
        return []
    w, h = max(large, key=lambda s: s[0] * s[1])
    message = (
        f"{len(large)} of {len(sized)} images are over {2 * TRAIN_LONG_SIDE} px on their long side (largest "
        f"{w}x{h}): each is decoded at full size, then scaled to at most {TRAIN_LONG_SIDE} px, which is slow and can "
        "run out of memory (detectron2 #579); resize them before the export"
    )
    return [_warning(json_path, "", message)]


# --- train and test together ---------------------------------------------------------------------


def check_dataset(
    train_json,
    train_images,
    test_json=None,
    test_images=None,
    read_images=True,
    *,
    val_json=None,
    keep_empty_images: bool = False,
    found: list[Problem] = (),
    image_format: str = LOADER_FORMAT,
    workers: int | None = None,
    progress=print,
) -> DatasetReport:
    """Check the train set (the validation json of the export's own and the test set when given) and merge the
    results into one report; ``found``: what staging your own data found (``own_data``), reported with the rest.

    Also an error when the jsons disagree on categories: detectron2 maps category ids to class
    indices per dataset, so a different list would make test predictions use the wrong class names.
    """
    if (test_json is None) != (test_images is None):
        raise TinyVocError("check_dataset: give both test_json and test_images, or neither")
    options = {"read_images": read_images, "image_format": image_format, "workers": workers, "progress": progress}
    train_report, train_categories = _check_file(
        Path(train_json), Path(train_images), require_annotations=True, keep_empty_images=keep_empty_images, **options
    )
    reports = [train_report]
    problems = list(found) + list(train_report.problems)
    others = [(val_json, train_images, True), (test_json, test_images, False)]
    for json_path, images, annotated in ((j, i, a) for j, i, a in others if j is not None):
        report, categories = _check_file(
            Path(json_path), Path(images), require_annotations=annotated, keep_empty_images=True, **options
        )
        reports.append(report)
        problems += report.problems
        if train_categories is not None and categories is not None:
            problems += _compare_categories(train_categories, categories, Path(train_json), Path(json_path))
    stats = {key: sum(r.stats[key] for r in reports) for key in ("images", "annotations", "images_checked")}
    stats["categories"] = train_report.stats["categories"]
    return DatasetReport(problems, stats)


def check_files(files, *, keep_empty_images: bool = False, found: list[Problem] = (), **options) -> DatasetReport:
    """``check_dataset`` of a :class:`~tinyvoc.core.paths.DataFiles` (notebook 01's data, whichever it is)."""
    return check_dataset(
        files.train_json, files.train_images, files.test_json, files.test_images,
        val_json=files.val_json, keep_empty_images=keep_empty_images, found=found, **options,
    )  # fmt: skip


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
