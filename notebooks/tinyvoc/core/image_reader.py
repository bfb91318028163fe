"""Read an image exactly as detectron2's data loader does: the one reader for the dataset check and prediction.

detectron2's loader decodes the whole file with ``detection_utils.read_image`` (Pillow, then the EXIF
orientation, then the config's channel order) and compares the result with the json's width and
height in ``detection_utils.check_image_size``. Any cheaper test (``verify()``, a header size, an end
marker) can pass a file that these raise on minutes into a GPU run, so the dataset check and
prediction call the same two functions: what the check accepts, training and prediction can read.

EXIF orientation (decided in issue 12, widened in issue 35): detectron2 and image viewers turn an image
whose EXIF tag asks for it (orientation 2..8). The json's width and height say which picture was labelled
when the turn swaps them: the turned size means the turned picture (phone photos labelled in CVAT, Label
Studio or Roboflow, which show them turned), the one the loader reads, so it is used; the stored size
means the stored pixels, which the loader will not read, so it is refused naming the fix. When the turn
keeps the size (180 degrees, a mirror, a square image) which picture was labelled cannot be told from
the files, and a wrong guess trains on, or predicts, masks that miss their objects: refused with both
fixes, train and test alike.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .errors import TinyVocError

# cfg.INPUT.FORMAT of every profile (profiles.build_config): the channel order the loader reads with.
LOADER_FORMAT = "BGR"
EXIF_ORIENTATION_TAG = 0x0112
# The orientations detection_utils._apply_exif_orientation acts on, and what each does to the picture.
EXIF_TURNS = {
    2: "mirrored left to right",
    3: "rotated 180 degrees",
    4: "mirrored top to bottom",
    5: "transposed (mirrored and rotated 90 degrees)",
    6: "rotated 90 degrees clockwise",
    7: "transversed (mirrored and rotated 90 degrees)",
    8: "rotated 90 degrees counter-clockwise",
}
# Folders with more images than this report progress, every PROGRESS_STEP of the way.
PROGRESS_MIN_IMAGES = 200
PROGRESS_STEP = 0.1


@dataclass(frozen=True)
class ImageToRead:
    """One image as the json lists it; ``height``/``width`` are None when the json's values are invalid."""

    path: Path
    height: int | None
    width: int | None
    listed_in: str = "the json"  # the json's file name, for messages


def image_problem(item: ImageToRead, image_format: str = LOADER_FORMAT) -> str | None:
    """Read ``item`` as the loader does; return what is wrong with it (None when the loader can use it)."""
    return _read(item, image_format)[1]


def read_image(item: ImageToRead, image_format: str = LOADER_FORMAT):
    """The HWC array the loader would get; a ``TinyVocError`` naming the file when it would fail."""
    image, problem = _read(item, image_format)
    if problem is not None:
        raise TinyVocError(f"{item.path}: {problem}")
    return image


def _detection_utils():
    """detectron2's reader, or one clear error (not one per image) when detectron2 is not installed."""
    try:
        from detectron2.data import detection_utils
    except ImportError as exc:
        raise TinyVocError(
            f"reading images as the loader does needs detectron2 ({exc}): run 00_install.ipynb first, "
            "or check with read_images=False (CLI: --no-images) to only see that the files exist"
        ) from None
    return detection_utils


def _read(item: ImageToRead, image_format: str):
    detection_utils = _detection_utils()
    path, name = item.path, item.path.name
    try:
        if path.stat().st_size == 0:
            return None, f"cannot read image {name}: the file is empty (0 bytes); copy it again"
        image = detection_utils.read_image(str(path), format=image_format)
        orientation, stored = _exif_orientation(path)
    except Exception as exc:  # noqa: BLE001 - Pillow and numpy raise many types; each one stops the loader
        return None, _decode_problem(name, exc)
    if orientation in EXIF_TURNS:
        turned, stored = f"{image.shape[1]}x{image.shape[0]}", f"{stored[0]}x{stored[1]}"
        listed = f"{item.width}x{item.height}"
        if turned != stored and listed == turned:  # the json describes the turned picture: the one the loader reads
            return image, None
        if turned != stored and listed == stored:
            return None, (
                f"{name} has EXIF orientation {orientation} ({EXIF_TURNS[orientation]}): {item.listed_in} gives its "
                f"stored size {stored}, so it was labelled on the stored pixels, but detectron2 turns it to {turned} "
                "when reading. Fix: remove the tag (e.g. exiftool -Orientation= FILE, or save the pixels again "
                "without EXIF), or export the labels again from a tool that shows the turned picture"
            )
        turn = (
            f"detectron2 turns it to {turned} when reading, its stored pixels are {stored}"
            if turned != stored
            else f"detectron2 turns it when reading (its stored pixels are {stored} either way)"
        )
        return None, (
            f"{name} has EXIF orientation {orientation} ({EXIF_TURNS[orientation]}): {turn}, and whether the "
            "json's sizes and polygons describe the stored or the turned picture cannot be told from the file. "
            f"Fix: if {item.listed_in} was drawn on the stored pixels, remove the tag; if on the turned picture, "
            "save it turned without the tag (PIL.ImageOps.exif_transpose) and check the json's width, height "
            "and polygons match (README, Troubleshooting)"
        )
    if item.height is not None and item.width is not None:
        record = {"file_name": str(path), "height": item.height, "width": item.width}
        try:
            detection_utils.check_image_size(record, image)
        except detection_utils.SizeMismatchError:
            file_w, file_h = image.shape[1], image.shape[0]
            swapped = " (width and height swapped)" if (file_w, file_h) == (item.height, item.width) else ""
            return None, (
                f"size mismatch: {item.listed_in} says width x height = {item.width}x{item.height}, "
                f"the file is {file_w}x{file_h}{swapped}"
            )
    return image, None


def _decode_problem(name: str, exc: Exception) -> str:
    from PIL import UnidentifiedImageError

    if isinstance(exc, UnidentifiedImageError):  # its text is only the file object's repr
        return (
            f"cannot read image {name}: not an image Pillow can identify (an HTML page, an archive or a "
            "partial download saved under this name?); replace it with the real image"
        )
    text = f"cannot read image {name}: {type(exc).__name__}: {exc}"
    if "truncated" in str(exc).lower():
        return text + " (the file is cut short, as by an interrupted copy or download: copy it again)"
    return text + " (replace the file with a good copy)"


def _exif_orientation(path: Path) -> tuple[int | None, tuple[int, int]]:
    """The orientation tag as detectron2 reads it (an unreadable EXIF block counts as none), and the stored size."""
    from PIL import Image

    with Image.open(path) as image:
        try:
            orientation = image.getexif().get(EXIF_ORIENTATION_TAG)
        except Exception:  # noqa: BLE001 - detectron2 ignores a broken EXIF block the same way
            orientation = None
        return orientation, image.size


def read_problems(
    items: Sequence[ImageToRead],
    image_format: str = LOADER_FORMAT,
    *,
    workers: int | None = None,
    label: str = "images",
    progress: Callable[[str], None] | None = print,
) -> list[str | None]:
    """``image_problem`` for every item, in order, read by a thread pool.

    Threads, not processes: Pillow decodes without the GIL, and a process pool pays for starting
    workers and pickling (benchmarks/bench_dataset_check.py measures both). ``progress`` gets a line
    every 10% when there are more than ``PROGRESS_MIN_IMAGES`` items, so a notebook cell shows at
    most ten lines per folder.
    """
    _detection_utils()  # fail once, before the pool, when detectron2 is missing
    workers = workers or min(8, os.cpu_count() or 1)
    total = len(items)
    report = progress if progress is not None and total > PROGRESS_MIN_IMAGES else None
    step = max(1, int(total * PROGRESS_STEP))
    started = time.perf_counter()
    problems: list[str | None] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for done, problem in enumerate(pool.map(lambda it: image_problem(it, image_format), items), 1):
            problems.append(problem)
            if report and (done % step == 0 or done == total):
                bad = sum(p is not None for p in problems)
                report(f"  read {done}/{total} {label} ({time.perf_counter() - started:.1f} s, {bad} with problems)")
    return problems
