"""Check a submission file against the test set before it is uploaded.

The grader rejects a whole submission for one bad entry, or silently scores it zero when the ids are
off by one, so this check is strict and reports every problem it finds (up to ``MAX_ERRORS``), each
naming the entry, instead of stopping at the first. It needs only the standard library, numpy and
pycocotools, so it runs on a laptop without torch or detectron2 and on files made by anyone.

The RLE ``counts`` strings are parsed for all entries at once (``core.rle.rle_problems``), rather than with
``pycocotools.mask.decode`` alone: decode rejects run lengths that overrun the mask, but when they
fall short of ``height * width`` it returns a mask whose tail is uninitialised memory instead of
failing, and decoding 10k full-size masks one by one takes seconds.

A caller that already checked some RLE strings (the prediction cache checks each of its masks once,
when it is written, and guards them with a checksum) passes them as ``checked_rles``; an entry whose
``(height, width, counts)`` is among them skips the parse and gets every other check. Any string that
differs by one character is not in the set and is parsed like any other.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from ..core.coco_json import describe_ids, describe_json_error, is_int, load_coco
from ..core.errors import TinyVocError
from ..core.gc_pause import paused_gc
from ..core.rle import rle_problems

# the four keys of a submission entry; export.py writes exactly these
SUBMISSION_KEYS = ("image_id", "category_id", "segmentation", "score")
# standard COCO results (what pycocotools' ``COCO.loadRes`` and detectron2's ``--eval-only`` read): the box too
COCO_RESULT_KEYS = ("image_id", "category_id", "segmentation", "bbox", "score")
# the two formats: the course grader's (the course's data) and COCO results (your own data; coco_results.py)
FORMAT_KEYS = {"course": SUBMISSION_KEYS, "coco": COCO_RESULT_KEYS}
# errors kept in the report; the rest are only counted, so a broken 10k-entry file stays readable
MAX_ERRORS = 1000
SUMMARY_ERRORS = 20
SUMMARY_IMAGES = 10
IN_MEMORY = "<in-memory>"

_COUNTS_NOT_STR = "counts must be a str (decode bytes with .decode('ascii'))"


@dataclass
class SubmissionReport:
    """What was wrong with a submission, and what it contains when it is right.

    ``num_instances``, ``per_image`` and ``per_class`` count only the entries without errors, so on an
    invalid file they show what would survive if the bad entries were fixed or dropped;
    ``num_entries`` is the length of the submitted list.
    """

    path: str
    errors: list[str] = field(default_factory=list)
    num_instances: int = 0
    per_image: dict[int, int] = field(default_factory=dict)
    per_class: dict[int, int] = field(default_factory=dict)
    images_without_detections: list[int] = field(default_factory=list)
    num_entries: int = 0
    more_errors: int = 0  # errors found beyond MAX_ERRORS, counted but not kept
    num_test_images: int = 0
    category_names: dict[int, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.more_errors

    @property
    def num_errors(self) -> int:
        return len(self.errors) + self.more_errors

    def summary(self, max_errors: int = SUMMARY_ERRORS) -> str:
        """A few lines for a notebook cell or a terminal; ``max_errors=0`` leaves the error list out."""
        covered = f"{len(self.per_image)} of {self.num_test_images} test images"
        if not self.ok:
            head = (
                f"{self.path}: INVALID: {self.num_errors} problem(s); {self.num_instances} of "
                f"{self.num_entries} entries are valid, on {covered}"
            )
        elif self.num_instances == 0:
            head = (
                f"{self.path}: valid but EMPTY: no detections at all, so every test image scores zero "
                "(was the score threshold too high, or did prediction run on the wrong images?)"
            )
        else:
            head = f"{self.path}: VALID: {self.num_instances} instances on {covered}"
        lines = [head]
        if self.per_class:
            counts = ", ".join(f"{self._name(c)} {n}" for c, n in sorted(self.per_class.items()))
            lines.append(f"per class: {counts}")
            absent = [self._name(c) for c in sorted(self.category_names) if c not in self.per_class]
            if absent:
                lines.append(f"classes with no detections: {', '.join(absent)}")
        if self.images_without_detections and self.num_instances:
            shown = ", ".join(str(i) for i in self.images_without_detections[:SUMMARY_IMAGES])
            rest = len(self.images_without_detections) - SUMMARY_IMAGES
            more = f" ... and {rest} more" if rest > 0 else ""
            lines.append(f"{len(self.images_without_detections)} test images without detections: {shown}{more}")
        if self.errors and max_errors > 0:
            lines.append("errors:")
            lines.extend(f"  {e}" for e in self.errors[:max_errors])
            rest = self.num_errors - min(max_errors, len(self.errors))
            if rest > 0:
                lines.append(f"  ... and {rest} more")
        return "\n".join(lines)

    def _name(self, category_id: int) -> str:
        name = self.category_names.get(category_id)
        return f"{name}({category_id})" if name else f"category {category_id}"


@dataclass(frozen=True)
class _TestSet:
    sizes: dict[int, tuple[int, int]]  # image id -> (height, width)
    names: dict[int, str]  # category id -> name


class _Errors:
    """Collects messages in entry order up to MAX_ERRORS and counts the rest."""

    def __init__(self) -> None:
        self.kept: list[str] = []
        self.dropped = 0

    def add(self, message: str) -> None:
        if len(self.kept) < MAX_ERRORS:
            self.kept.append(message)
        else:
            self.dropped += 1


def validate_submission(
    submission: str | os.PathLike | list,
    test_json: str | os.PathLike | dict,
    checked_rles: Collection[tuple[int, int, str]] = (),
    format: str = "course",
) -> SubmissionReport:
    """Check every entry of ``submission`` (a path or a loaded list) against ``test_json``.

    ``format``: ``"course"`` (the grader's four keys, nothing else) or ``"coco"`` (COCO results: a ``bbox``
    ``[x, y, w, h]`` too, as ``COCO.loadRes`` reads it).

    ``checked_rles`` holds ``(height, width, counts)`` triples already known to decode to exactly
    that size (see the module docstring); their counts strings are not parsed again.

    Problems with the submission end up in the report, never raised, so a notebook can show all of
    them at once. Problems with the test json (missing, not JSON, no images or categories) raise
    ``TinyVocError``: without it nothing can be checked, and it is a setup problem, not the
    submission's fault. A missing submission file raises too, since there is nothing to report on.
    """
    if format not in FORMAT_KEYS:
        raise TinyVocError(f"unknown submission format {format!r}; use one of {', '.join(FORMAT_KEYS)}")
    keys = FORMAT_KEYS[format]
    test = _load_test_set(test_json)
    with paused_gc():  # tens of thousands of parsed objects, no cycles among them (core/gc_pause.py)
        entries, label, load_error = _load_submission(submission)
        report = SubmissionReport(path=label, num_test_images=len(test.sizes), category_names=dict(test.names))
        if load_error is not None:
            report.errors.append(load_error)
        elif not isinstance(entries, list):
            report.errors.append(_top_level_error(label, entries))
        else:
            report.num_entries = len(entries)
            _check_entries(entries, test, report, checked_rles, keys)
        del entries
    report.images_without_detections = sorted(i for i in test.sizes if i not in report.per_image)
    return report


def _load_test_set(test_json: str | os.PathLike | dict) -> _TestSet:
    if isinstance(test_json, dict):
        label = "<in-memory test json>"
        data = test_json
        if not isinstance(data.get("images"), list) or not isinstance(data.get("categories"), list):
            raise TinyVocError(f"{label}: not a COCO file (needs 'images' and 'categories' lists)")
    elif isinstance(test_json, (str, os.PathLike)):
        label = str(test_json)
        data = load_coco(test_json)
    else:
        raise TinyVocError(f"test json must be a path or a loaded dict, got {type(test_json).__name__}")
    sizes: dict[int, tuple[int, int]] = {}
    for i, image in enumerate(data["images"]):
        values = [image.get(k) if isinstance(image, dict) else None for k in ("id", "height", "width")]
        if not all(is_int(v) for v in values):
            raise TinyVocError(f"{label}: images[{i}] needs integer 'id', 'height' and 'width'; got {image!r:.200}")
        sizes[values[0]] = (values[1], values[2])
    names: dict[int, str] = {}
    for i, category in enumerate(data["categories"]):
        if not isinstance(category, dict) or not is_int(category.get("id")):
            raise TinyVocError(f"{label}: categories[{i}] needs an integer 'id'; got {category!r:.200}")
        names[category["id"]] = str(category.get("name", ""))
    if not names:
        raise TinyVocError(f"{label}: 'categories' is empty, so no category id can be checked")
    return _TestSet(sizes, names)


def _load_submission(submission: str | os.PathLike | list) -> tuple[object, str, str | None]:
    """The loaded object, the name to report it under, and why it could not be read (or None)."""
    if not isinstance(submission, (str, os.PathLike)):
        return submission, IN_MEMORY, None
    path = Path(submission)
    label = str(submission)
    if not path.is_file():
        raise TinyVocError(f"{label}: submission file not found")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, label, f"{label}: not UTF-8 text (byte {exc.start}); is this really the JSON file?"
    try:
        return json.loads(text), label, None
    except json.JSONDecodeError as exc:
        return None, label, f"{label}: {describe_json_error(text, exc)}"


def _top_level_error(label: str, value: object) -> str:
    hint = ""
    if isinstance(value, dict) and "annotations" in value:
        hint = "; write the list of detections itself, not a COCO file with 'annotations'"
    return f"{label}: the top level must be a JSON list of detections, got {_type_name(value)}{hint}"


def _check_entries(
    entries: list,
    test: _TestSet,
    report: SubmissionReport,
    checked_rles: Collection[tuple[int, int, str]],
    keys: tuple[str, ...] = SUBMISSION_KEYS,
) -> None:
    category_hint = _category_hint(entries, test.names)
    problems: dict[int, list[str]] = {}
    rle_entries: list[int] = []  # entries whose counts go through the batched RLE parse
    rle_counts: list[str] = []
    rle_sizes: list[tuple[int, int]] = []
    for index, entry in enumerate(entries):
        if _plainly_valid(entry, test, keys):
            parse = True
        else:
            found = _entry_problems(entry, test, category_hint, keys)
            if found:
                problems[index] = found
            parse = _counts_to_parse(entry)  # also for entries with other problems, to report everything at once
        if parse:
            seg = entry["segmentation"]
            height, width = seg["size"][0], seg["size"][1]
            if (height, width, seg["counts"]) not in checked_rles:
                rle_entries.append(index)
                rle_counts.append(seg["counts"])
                rle_sizes.append((height, width))
    for index, problem in zip(rle_entries, rle_problems(rle_counts, rle_sizes), strict=True):
        if problem:
            problems.setdefault(index, []).append(problem)

    collected = _Errors()
    for index, entry in enumerate(entries):
        if index in problems:
            for problem in problems[index]:
                collected.add(f"{_entry_label(index, entry)}: {problem}")
            continue
        report.num_instances += 1
        report.per_image[entry["image_id"]] = report.per_image.get(entry["image_id"], 0) + 1
        report.per_class[entry["category_id"]] = report.per_class.get(entry["category_id"], 0) + 1
    report.errors, report.more_errors = collected.kept, collected.dropped


_KEY_SETS = {keys: frozenset(keys) for keys in FORMAT_KEYS.values()}


def _plainly_valid(entry: object, test: _TestSet, keys: tuple[str, ...] = SUBMISSION_KEYS) -> bool:
    """True for an entry of exactly the usual shape and types with every value in range; else False.

    A shortcut for the common case, about five times faster than ``_entry_problems``, which is
    what makes checking 10,000 entries take a few hundredths of a second. It only ever says True
    when ``_entry_problems`` would find nothing; anything unusual (an int score, extra keys in the
    segmentation, a numpy id) returns False and gets the full check with its messages.
    The counts string itself is checked separately, as for every entry.
    """
    if type(entry) is not dict or entry.keys() != _KEY_SETS[keys]:
        return False
    if "bbox" in keys and _bbox_problem(entry["bbox"]) is not None:
        return False
    image_id, category_id, seg, score = entry["image_id"], entry["category_id"], entry["segmentation"], entry["score"]
    if type(image_id) is not int or type(category_id) is not int or type(score) is not float:
        return False
    expected = test.sizes.get(image_id)
    if expected is None or category_id not in test.names or not 0.0 <= score <= 1.0:  # NaN fails the comparison
        return False
    if type(seg) is not dict or seg.keys() != {"size", "counts"} or type(seg["counts"]) is not str:
        return False
    size = seg["size"]
    return (
        type(size) is list
        and len(size) == 2
        and type(size[0]) is int
        and type(size[1]) is int
        and size[0] > 0
        and size[1] > 0
        and (size[0], size[1]) == expected
    )


def _entry_problems(
    entry: object, test: _TestSet, category_hint: str, keys: tuple[str, ...] = SUBMISSION_KEYS
) -> list[str]:
    """Everything wrong with one entry except what its counts string decodes to."""
    if not isinstance(entry, dict):
        return [f"expected an object with keys {', '.join(keys)}, got {_type_name(entry)}"]
    found = []
    missing = [k for k in keys if k not in entry]
    extra = [k for k in entry if k not in keys]
    if missing:
        found.append(f"missing key(s) {', '.join(map(repr, missing))}")
    if extra:
        shown = ", ".join(repr(k) for k in extra)
        found.append(f"unexpected key(s) {shown}; only {', '.join(keys)} are allowed")
    if "bbox" in keys and "bbox" in entry:
        problem = _bbox_problem(entry["bbox"])
        if problem:
            found.append(problem)

    image_id = entry.get("image_id")
    size = None
    if "image_id" in entry:
        if not is_int(image_id):
            found.append(f"image_id must be an int, got {_type_name(image_id)} {image_id!r:.50}")
        elif image_id not in test.sizes:
            found.append(f"image_id {image_id} is not an image in test.json ({_image_hint(image_id, test)})")
        else:
            size = test.sizes[image_id]

    category_id = entry.get("category_id")
    if "category_id" in entry:
        if not is_int(category_id):
            found.append(f"category_id must be an int, got {_type_name(category_id)} {category_id!r:.50}")
        elif category_id not in test.names:
            hint = category_hint or f"known ids are {describe_ids(test.names)}"
            found.append(f"category_id {category_id} is not a category in test.json; {hint}")

    if "segmentation" in entry:
        found.extend(_segmentation_problems(entry["segmentation"], size))

    if "score" in entry:
        score = entry["score"]
        if not isinstance(score, (int, float)) or isinstance(score, bool):
            found.append(f"score must be a number in [0, 1], got {_type_name(score)} {score!r:.50}")
        elif not math.isfinite(score):
            found.append(f"score must be a finite number in [0, 1], got {score}")
        elif not 0 <= score <= 1:
            found.append(f"score {score} is outside [0, 1]; scores must be confidences between 0 and 1")
    return found


def _bbox_problem(bbox: object) -> str | None:
    """Why a COCO results ``bbox`` is not ``[x, y, width, height]`` of four finite numbers, sizes >= 0; or None."""
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
        return f"bbox must be [x, y, width, height], a list of four numbers, got {bbox!r:.60}"
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in bbox):
        return f"bbox must hold four finite numbers, got {bbox!r:.60}"
    if bbox[2] < 0 or bbox[3] < 0:
        return f"bbox width and height must not be negative (it is [x, y, width, height]), got {bbox!r:.60}"
    return None


def _segmentation_problems(seg: object, expected: tuple[int, int] | None) -> list[str]:
    """Shape and type checks of the RLE dict; ``expected`` is the image's (height, width) when known."""
    rle_shape = "a compressed RLE dict {'size': [height, width], 'counts': str}"
    if isinstance(seg, list):
        return [f"segmentation must be {rle_shape}, got a list (polygons?); encode masks with mask_util.encode"]
    if not isinstance(seg, dict):
        return [f"segmentation must be {rle_shape}, got {_type_name(seg)}"]
    missing = [k for k in ("size", "counts") if k not in seg]
    if missing:
        return [f"segmentation must be {rle_shape}; missing {', '.join(map(repr, missing))}"]
    found = []
    size = seg["size"]
    if not _is_size(size):
        found.append(f"segmentation size must be [height, width] as two positive ints, got {size!r:.50}")
    elif expected is not None and (size[0], size[1]) != expected:
        transposed = "; height and width look swapped" if (size[1], size[0]) == expected else ""
        found.append(
            f"segmentation size does not match the image: expected [{expected[0]}, {expected[1]}] "
            f"(height, width from test.json), got {list(size)}{transposed}"
        )
    counts = seg["counts"]
    if isinstance(counts, (bytes, bytearray)):
        found.append(f"segmentation {_COUNTS_NOT_STR}; bytes cannot be written to JSON")
    elif isinstance(counts, list):
        found.append(
            f"segmentation {_COUNTS_NOT_STR}; a list is uncompressed RLE, compress it with "
            "pycocotools.mask.frPyObjects first"
        )
    elif not isinstance(counts, str):
        found.append(f"segmentation {_COUNTS_NOT_STR}; got {_type_name(counts)}")
    return found


def _counts_to_parse(entry: object) -> bool:
    """Whether an entry with other problems still has a str counts and usable size worth decoding."""
    seg = entry.get("segmentation") if isinstance(entry, dict) else None
    return isinstance(seg, dict) and isinstance(seg.get("counts"), str) and _is_size(seg.get("size"))


def _category_hint(entries: list, names: dict[int, str]) -> str:
    """The off-by-one advice, when the submitted category ids look like 0-based or shifted indices."""
    submitted = {e.get("category_id") for e in entries if isinstance(e, dict) and is_int(e.get("category_id"))}
    unknown = submitted - names.keys()
    if not unknown:
        return ""
    dataset_ids = f"category ids must be the dataset's ids ({describe_ids(names)} here)"
    if 0 in unknown or {c + 1 for c in submitted} <= names.keys():
        return f"{dataset_ids}, not 0-based indices; map model class indices through the dataset's categories"
    if {c - 1 for c in submitted} <= names.keys():
        return f"{dataset_ids}; these look shifted up by one"
    return ""


def _image_hint(image_id: int, test: _TestSet) -> str:
    hint = f"its {len(test.sizes)} image ids are {describe_ids(test.sizes)}"
    if 0 <= image_id < len(test.sizes):
        hint += "; use each image's 'id' from test.json, not its position in the list"
    return hint


def _entry_label(index: int, entry: object) -> str:
    image_id = entry.get("image_id") if isinstance(entry, dict) else None
    return f"entry {index} (image_id {image_id})" if is_int(image_id) else f"entry {index}"


def _is_size(value: object) -> bool:
    return isinstance(value, (list, tuple)) and len(value) == 2 and all(is_int(v) and v > 0 for v in value)


def _type_name(value: object) -> str:
    """``numpy.int64`` rather than ``int64``, so the json.dump failure it would cause is recognisable."""
    kind = type(value)
    return kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"
