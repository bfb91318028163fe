"""The trained model on new images: any folder, files or a zip of images, no json, cached image by image.

``tinyvoc predict`` and 03's ``PREDICT_IMAGES`` come here, as detectron2's ``demo.py --input`` and Ultralytics'
``predict source=folder`` do: every image under a folder (sorted, recursive), each file given, every image in a
zip. Each image's detections (down to the run's score floor, so any threshold is served later) go to their own
cache file, named by the model (checkpoint, config, TTA, floor: ``cached_predictions.cache_key``) and the file
(path, size, modification time); an interrupted folder continues where it stopped, and a second run over it
costs no model call. A file that cannot be read (not an image, cut short, empty) is listed and skipped, never a
stop halfway. Images are read as detectron2 reads them (EXIF orientation applied: the picture a viewer shows),
in a thread ahead of the model, and handed on one at a time: memory stays that of a batch, however many images.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import zipfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..core.atomic import write_bytes
from ..core.errors import TinyVocError
from .cached_predictions import cache_key
from .trained_run import TrainedRun

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
UNZIPPED = "unzipped"  # where a zip's images are put, under the output folder's cache


@dataclass(frozen=True)
class NewImage:
    """One image to predict: its file, and the name it goes by in the outputs (relative to what was given)."""

    path: Path
    name: str


@dataclass(frozen=True)
class Predicted:
    """One image's detections (``image_id`` 0: the caller numbers the images) with its size as read."""

    image: NewImage
    index: int  # its place among the images given: image id index + 1, the same however often it is resumed
    height: int
    width: int
    detections: list[dict]
    cached: bool


@dataclass
class Progress:
    """Counts for the progress line and the summary."""

    total: int
    predicted: int = 0
    from_cache: int = 0
    unreadable: list[tuple[Path, str]] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def line(self) -> str:
        done = self.predicted + self.from_cache + len(self.unreadable)
        parts = [f"{self.predicted} predicted", f"{self.from_cache} from the cache"]
        if self.unreadable:
            parts.append(f"{len(self.unreadable)} unreadable")
        return f"  {done}/{self.total} images ({', '.join(parts)}; {time.perf_counter() - self.started:.0f} s)"

    def unreadable_summary(self, shown: int = 10) -> str:
        if not self.unreadable:
            return ""
        lines = [f"{len(self.unreadable)} file(s) could not be read and were skipped:"]
        lines += [f"  {path}: {why}" for path, why in self.unreadable[:shown]]
        if len(self.unreadable) > shown:
            lines.append(f"  ... and {len(self.unreadable) - shown} more")
        return "\n".join(lines)


def collect(sources: Sequence[str | os.PathLike], scratch: Path) -> list[NewImage]:
    """The images of ``sources`` in order: a folder's (sorted, recursive, by suffix), a file as given (whatever its
    suffix: it is read, and listed if it is no image), a zip's image members (unpacked once under ``scratch``)."""
    found: list[NewImage] = []
    for source in sources:
        path = Path(os.path.expanduser(str(source)))
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            found += [NewImage(p, p.relative_to(path).as_posix()) for p in files]
        elif path.is_file() and path.suffix.lower() == ".zip":
            found += _unzipped(path, Path(scratch) / UNZIPPED / path.stem)
        elif path.is_file():
            found.append(NewImage(path, path.name))
        else:
            raise TinyVocError(f"{path}: no such file or folder (give folders, image files or .zip files)")
    names: dict[str, int] = {}
    for image in found:
        names[image.name] = names.get(image.name, 0) + 1
    clashing = {n for n, count in names.items() if count > 1}  # the same relative name from two sources
    return [NewImage(im.path, str(im.path)) if im.name in clashing else im for im in found]


def _unzipped(archive: Path, folder: Path) -> list[NewImage]:
    try:
        with zipfile.ZipFile(archive) as zf:
            members = sorted(
                m for m in zf.namelist() if m.lower().endswith(IMAGE_SUFFIXES) and not m.startswith(("__MACOSX/", "/"))
            )
            for member in members:
                target = folder / member
                if ".." in Path(member).parts:
                    continue
                if not target.exists() or target.stat().st_size != zf.getinfo(member).file_size:
                    write_bytes(target, zf.read(member))
    except zipfile.BadZipFile as exc:
        raise TinyVocError(f"{archive}: not a readable zip ({exc})") from None
    return [NewImage(folder / m, f"{archive.stem}/{m}") for m in members if ".." not in Path(m).parts]


def model_key(run: TrainedRun, tta: bool, score_floor: float) -> str:
    """What the model's detections depend on (checkpoint, config, TTA, floor), as in the split caches' key."""
    return cache_key(run.checkpoint, run.inference_config(score_floor).dump(), (), tta, score_floor)


def _file_key(path: Path) -> str:
    stat = path.stat()
    return hashlib.sha1(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:20]


def predict_images(
    run: TrainedRun,
    images: Sequence[NewImage],
    cache_dir: Path,
    tta: bool | None = None,
    batch_size: int | None = None,
    progress: Progress | None = None,
    say=print,
) -> Iterator[Predicted]:
    """Each readable image's detections, in order: from its cache file when there is one, else from the model
    (then cached at once, so an interruption loses at most the batch in flight). Unreadable files go to
    ``progress.unreadable``."""
    from detectron2.data import detection_utils

    tta = run.tta if tta is None else bool(tta)
    floor = run.score_floor
    folder = Path(cache_dir) / model_key(run, tta, floor)
    progress = progress or Progress(len(images))
    step = max(1, len(images) // 20)
    predictor = None

    def read(image: NewImage):
        try:
            if image.path.stat().st_size == 0:
                raise ValueError("the file is empty (0 bytes)")
            return detection_utils.read_image(str(image.path), format="BGR"), None
        except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds; each means: not readable here
            return None, f"{type(exc).__name__}: {exc}"

    def counted():
        done = progress.predicted + progress.from_cache + len(progress.unreadable)
        if done % step == 0 or done == len(images):
            say(progress.line())

    pending: list[tuple[int, NewImage, Path]] = []
    for index, image in enumerate(images):
        cached = folder / f"{_file_key(image.path)}.json" if image.path.exists() else None
        if cached is not None and cached.exists():
            saved = json.loads(cached.read_text())
            progress.from_cache += 1
            counted()
            yield Predicted(image, index, saved["height"], saved["width"], saved["detections"], True)
            continue
        pending.append((index, image, cached))
    if not pending:
        return
    from .model_runner import BatchPredictor, instances_to_detections

    predictor = BatchPredictor(run.inference_config(floor), run.checkpoint, tta=tta)
    batch_size = batch_size or (4 if predictor.cfg.MODEL.DEVICE.startswith("cuda") and not tta else 1)
    with ThreadPoolExecutor(max_workers=1) as pool:
        ahead = [pool.submit(read, image) for _, image, _ in pending[: 2 * batch_size]]
        for start in range(0, len(pending), batch_size):
            batch = pending[start : start + batch_size]
            arrays = [ahead.pop(0).result() for _ in batch]
            queued = start + len(batch) + len(ahead)
            ahead += [pool.submit(read, image) for _, image, _ in pending[queued : start + 3 * batch_size]]
            readable = []
            for (index, image, cached), (array, problem) in zip(batch, arrays):
                if problem is not None:
                    progress.unreadable.append((image.path, problem))
                    counted()
                else:
                    readable.append((index, image, cached, array))
            if not readable:
                continue
            outs = predictor([r[3] for r in readable], [r[3].shape[:2] for r in readable])
            for (index, image, cached, array), instances in zip(readable, outs):
                rows = instances_to_detections(instances, 0, run.record.class_map)
                height, width = array.shape[:2]
                saved = {"file": str(image.path), "height": height, "width": width, "detections": rows}
                write_bytes(cached, json.dumps(saved).encode())
                progress.predicted += 1
                counted()
                yield Predicted(image, index, height, width, rows, False)
