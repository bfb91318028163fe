"""The model's predictions in the forms other tools read, written together: what 04's last cell and ``tinyvoc
predict`` (03's ``PREDICT_IMAGES``) hand over.

For the detections a :class:`~.inference.selection.Selection` keeps (the export's threshold):
``prelabels/<split>.json`` (a COCO dataset to correct in a labelling tool, ``submission.prelabels``) with the
same as Label Studio tasks beside it (``submission.label_studio``),
``masks/<split>/<stem>.png`` + ``.json`` (16-bit instance ids, ``submission.mask_files``),
``overlays/<split>/<stem>.jpg`` (``visualize.overlays``), and one ``predictions.zip`` of all of it with the
results file. :class:`OutputWriter` takes one image at a time, so new images stream from the model (or their
cache) to the files: memory holds a few images' masks; the pre-label annotations and, for ``predict``, the
results wait on disk (:class:`Spool`) until their files are written.
Every file is written atomically; the zip last, from the files on disk.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import zipfile
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from itertools import groupby
from pathlib import Path

from .core.atomic import atomic_path, write_json
from .core.gc_pause import paused_gc
from .core.paths import Outputs
from .dataset.record import ClassMap
from .inference.cache_file import Predictions
from .inference.selection import Selection
from .submission.coco_results import to_coco_results
from .submission.label_studio import label_studio_task, tasks_path, write_config
from .submission.mask_files import DecodedMasks, instance_ids, output_stems, write_mask_files
from .submission.prelabels import categories_of, prelabel_file, traced_annotations
from .visualize.overlays import OverlayWriter

STORED = (".png", ".jpg", ".jpeg")  # already compressed: deflating them again only costs time
# Images written at once. On 2 cores 2 threads took 3.5 s, 1 thread 4.2 s and 4 threads 4.1 s
# (benchmarks/bench_prediction_outputs.py --threads).
WORKERS = min(2, os.cpu_count() or 1)
PREDICT_SPLIT = "predict"  # the split name of new images (tinyvoc predict): prelabels/predict.json, masks/predict/


@dataclass(frozen=True)
class Written:
    """Where the outputs went, and how much they hold (the lines 04 and ``predict`` print)."""

    prelabels: Path
    masks: Path
    overlays: Path
    archive: Path | None
    images: int
    instances: int
    seconds: float
    results: Path | None = None

    def summary(self) -> str:
        lines = [f"{self.instances} instances on {self.images} images ({self.seconds:.1f} s):"]
        if self.results is not None:
            lines.append(f"  results (COCO results, the dataset's ids):           {self.results}")
        lines += [
            f"  pre-labels (COCO, for CVAT and Roboflow):            {self.prelabels}",
            f"  pre-labels as Label Studio tasks (config beside):    {tasks_path(self.prelabels)}",
            f"  masks (16-bit instance ids, a json beside each):    {self.masks}",
            f"  overlays (JPEG):                                     {self.overlays}",
        ]
        if self.archive is not None:
            lines.append(f"  all of it in one file:                               {self.archive}")
        return "\n".join(lines)


class OutputWriter:
    """Masks, overlays and pre-labels of one split under ``root``, fed image by image (:meth:`add`)."""

    def __init__(self, root: Path, split: str, class_map: ClassMap, description: str):
        layout = Outputs.at(root)
        self.root, self.split, self.class_map, self.description = Path(root), split, class_map, description
        self.masks_dir, self.overlays_dir = layout.masks_dir / split, layout.overlays_dir / split
        self.prelabels_path = layout.prelabels_dir / f"{split}.json"
        self.overlays = OverlayWriter(class_map)
        self.images: list[dict] = []
        self.stems: list[str] = []
        self.annotations = Spool(self.prelabels_path)  # on disk until the end: a thousand images' polygons
        self.tasks = Spool(tasks_path(self.prelabels_path))  # the same for Label Studio, a task per image
        self.instances = 0
        self.started = time.perf_counter()

    def add(self, image: dict, path: Path, stem: str, rows: Sequence[dict]) -> None:
        """One image (its json entry, its file, its output name) and its kept rows, best first."""
        self._collect(image, stem, self._write_files(image, path, stem, rows), len(rows))

    def add_all(self, items: Iterable[tuple[dict, Path, str, Sequence[dict]]], progress=None) -> None:
        """:meth:`add` for each ``(image, path, stem, rows)``, :data:`WORKERS` images at a time (decoding, tracing,
        PNG and JPEG encoding let go of the GIL), in order; at most a few images ahead, so memory stays flat.
        ``progress(done)`` after each."""
        window: deque = deque()
        with ThreadPoolExecutor(WORKERS) as pool:
            for image, path, stem, rows in items:
                window.append((image, stem, pool.submit(self._write_files, image, path, stem, rows), len(rows)))
                if len(window) > 2 * WORKERS:
                    self._collect(*_result(window.popleft()))
                    if progress:
                        progress(len(self.images))
            while window:
                self._collect(*_result(window.popleft()))
                if progress:
                    progress(len(self.images))

    def _write_files(self, image: dict, path: Path, stem: str, rows: Sequence[dict]) -> tuple[list[str], str]:
        """The image's mask PNG and json and its overlay; its pre-label annotations, as JSON without their ``id``
        (numbered in :meth:`_collect`), and its Label Studio task, as JSON. Encoded here, in the writer threads,
        so the encoding of one image overlaps another's PNG and JPEG encoding, which let go of the GIL."""
        decoded = DecodedMasks.of(rows, image["height"], image["width"])  # once, for all three
        ids = instance_ids(rows, image["height"], image["width"], decoded)
        write_mask_files(rows, image, stem, self.masks_dir, self.class_map, ids, decoded.boxes.astype(float))
        self.overlays.write(path, rows, self.overlays_dir / f"{stem}.jpg", ids)
        with paused_gc():  # a hundred thousand small lists of points, no cycles (core/gc_pause.py): 4x faster
            traced = traced_annotations(rows, 1, decoded)
            task = label_studio_task(image, traced, self.class_map, self.description)
            for annotation, _ in traced:
                del annotation["id"]
            return [json.dumps(annotation) for annotation, _ in traced], task

    def _collect(self, image: dict, stem: str, labels: tuple[list[str], str], instances: int) -> None:
        annotations, task = labels
        for annotation in annotations:  # '{"image_id": ...' becomes '{"id": 7, "image_id": ...'
            self.annotations.add_encoded(f'{{"id": {self.annotations.count + 1}, {annotation[1:]}')
        self.tasks.add_encoded(task)
        self.images.append(image)
        self.stems.append(stem)
        self.instances += instances

    def finish(self, results: Sequence[Path] = (), archive: Path | None = None, results_file=None) -> Written:
        """Write the pre-labels, then ``archive`` of ``results`` and every file written (when given)."""
        head = json.dumps(prelabel_file(self.images, [], self.class_map, self.description))
        before, after = head.split('"annotations": []')
        with atomic_path(self.prelabels_path) as tmp, open(tmp, "w") as out:
            out.write(before + '"annotations": [')
            self.annotations.copy_into(out)
            out.write("]" + after)
        label_studio = [tasks_path(self.prelabels_path), write_config(self.class_map, self.prelabels_path)]
        with atomic_path(label_studio[0]) as tmp, open(tmp, "w") as out:
            out.write("[")
            self.tasks.copy_into(out)
            out.write("]")
        if archive is not None:
            parts = [*results, self.prelabels_path, *label_studio]
            parts += [self.masks_dir / f"{s}{suffix}" for s in self.stems for suffix in (".png", ".json")]
            parts += [self.overlays_dir / f"{s}.jpg" for s in self.stems]
            write_archive(archive, self.root, parts)
        seconds = time.perf_counter() - self.started
        return Written(self.prelabels_path, self.masks_dir, self.overlays_dir, archive, len(self.images),
                       self.instances, seconds, results_file)  # fmt: skip


def write_prediction_outputs(
    predictions: Predictions,
    class_map: ClassMap,
    selection: Selection,
    root: Path,
    split: str | None = None,
    *,
    results: Sequence[Path] = (),
    archive: Path | None = None,
    progress: Callable[[str], None] | None = print,
) -> Written:
    """Pre-labels, masks and overlays of what ``selection`` keeps of a split's cached ``predictions``, under
    ``root`` (the output folder); then ``archive`` (a zip) of them and of ``results`` (``submission.json``...)."""
    split = split or predictions.split
    images = predictions.images.coco["images"]
    paths = predictions.images.paths()
    rows = selection.apply(predictions.detections)  # grouped by image id, best first: the submission's order
    by_image = {image_id: list(group) for image_id, group in groupby(rows, key=lambda r: r["image_id"])}
    writer = OutputWriter(root, split, class_map, f"tinyvoc pre-labels of {split} at {selection.describe()}")
    stems = output_stems([im["file_name"] for im in images])
    step = max(1, len(images) // 5)

    def said(done: int) -> None:
        if progress and (done % step == 0 or done == len(images)):
            seconds = time.perf_counter() - writer.started
            progress(f"  masks and overlays: {done}/{len(images)} images ({seconds:.0f} s)")

    items = ((image, paths[image["id"]], stem, by_image.get(image["id"], [])) for image, stem in zip(images, stems))
    writer.add_all(items, said)
    return writer.finish(results, archive)


def predict_new_images(
    run,
    sources: Sequence[str | Path],
    out: Path,
    selection: Selection | None = None,
    *,
    tta: bool | None = None,
    batch_size: int | None = None,
    say: Callable[[str], None] = print,
) -> Written:
    """``tinyvoc predict``: the run on every image of ``sources`` (folders, files, zips), written under ``out``:
    ``results.json`` (COCO results with the dataset's ids) and ``images.json`` (the COCO images they refer to,
    ids 1..N in the order found), pre-labels, masks, overlays, ``predictions.zip``. Per-image caches in
    ``out/cache/``: run again, only new or changed images go through the model. ``selection``: the run's own
    threshold when None."""
    from .core.errors import TinyVocError
    from .inference.predict_images import Progress, collect, predict_images

    if hasattr(run, "members"):
        raise TinyVocError('predicting new images takes one run: set RUN (--run) to one run\'s name or "best"')
    out = Path(out)
    selection = selection or run.selection()
    found = collect(sources, out / "cache")
    if not found:
        raise _no_images(sources)
    say(f"{len(found)} images to predict with run {run.name} ({run.checkpoint.name}); kept: {selection.describe()}")
    stems = output_stems([image.name for image in found])
    writer = OutputWriter(out, PREDICT_SPLIT, run.record.class_map, f"tinyvoc pre-labels at {selection.describe()}")
    progress = Progress(len(found))
    results_path = out / "results.json"
    spooled = Spool(results_path)

    def items():
        for done in predict_images(run, found, out / "cache", tta, batch_size, progress, say):
            image_id = done.index + 1
            image = {"id": image_id, "file_name": done.image.name, "height": done.height, "width": done.width}
            rows = selection.apply([{**row, "image_id": image_id} for row in done.detections])
            for result in to_coco_results(rows):
                spooled.add(result)
            yield image, done.image.path, stems[done.index], rows

    writer.add_all(items())
    if progress.unreadable:
        say(progress.unreadable_summary())
    images_json = write_json(out / "images.json", {"images": sorted(writer.images, key=lambda im: im["id"]),
                                                   "categories": categories_of(run.record.class_map)})  # fmt: skip
    with atomic_path(results_path) as tmp, open(tmp, "w") as results:  # in the order predicted (cached ones first)
        results.write("[")
        spooled.copy_into(results)
        results.write("]")
    written = writer.finish([results_path, images_json], Outputs.at(out).predictions_zip)
    return replace(written, results=results_path)


def _no_images(sources) -> Exception:
    from .core.errors import TinyVocError

    return TinyVocError(
        f"no images in {', '.join(map(str, sources))} (looked for {', '.join(('.jpg', '.png', '...'))} files in "
        "folders and zips, recursively)"
    )


class Spool:
    """A JSON list written item by item to a hidden file beside ``target``, and copied into a file at the end:
    what ``predict`` over thousands of images keeps of their pre-labels and results, outside memory."""

    def __init__(self, target: Path):
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        self.file = tempfile.TemporaryFile("w+", dir=Path(target).parent, prefix=f".{Path(target).name}.")
        self.count = 0

    def add(self, item: dict) -> None:
        self.add_encoded(json.dumps(item))

    def add_encoded(self, text: str) -> None:
        """An item already encoded as JSON."""
        self.file.write(("," if self.count else "") + text)
        self.count += 1

    def copy_into(self, out) -> None:
        """The items, comma-separated (no brackets), into the open text file ``out``; then the spool is gone."""
        self.file.seek(0)
        shutil.copyfileobj(self.file, out)
        self.file.close()


def _result(queued: tuple) -> tuple:
    image, stem, future, instances = queued
    return image, stem, future.result(), instances


def write_archive(target: Path, root: Path, files: Sequence[Path]) -> Path:
    """One zip of ``files`` (each named by its path under ``root``), written atomically: JSON deflated, images as
    they are."""
    with atomic_path(target) as tmp, zipfile.ZipFile(tmp, "w") as archive:
        for path in files:
            path = Path(path)
            if path.exists():
                kind = zipfile.ZIP_STORED if path.suffix.lower() in STORED else zipfile.ZIP_DEFLATED
                archive.write(path, path.relative_to(root).as_posix(), compress_type=kind, compresslevel=1)
    return Path(target)
