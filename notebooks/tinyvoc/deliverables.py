"""The model's predictions in the forms other tools read, written together: what 04's last cell and ``tinyvoc
predict`` hand over.

For one split's cached predictions at one :class:`~.inference.selection.Selection` (the export's threshold):
``prelabels/<split>.json`` (a COCO dataset to correct in a labelling tool, ``submission.prelabels``),
``masks/<split>/<stem>.png`` + ``.json`` (16-bit instance ids, ``submission.mask_files``),
``overlays/<split>/<stem>.jpg`` (``visualize.overlays``), and one ``predictions.zip`` of all of it with the
results file. Nothing runs a model: everything is read from the cache, image by image, so memory stays that of
one image however many there are. Every file is written atomically; the zip last, from the files on disk.
"""

from __future__ import annotations

import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

from .core.atomic import atomic_path, write_json
from .core.paths import Outputs
from .dataset.record import ClassMap
from .inference.cache_file import Predictions
from .inference.selection import Selection
from .submission.mask_files import output_stems, write_mask_files
from .submission.prelabels import prelabel_dataset
from .visualize.overlays import OverlayWriter

STORED = (".png", ".jpg", ".jpeg")  # already compressed: deflating them again only costs time


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

    def summary(self) -> str:
        lines = [
            f"{self.instances} instances on {self.images} images ({self.seconds:.1f} s):",
            f"  pre-labels (COCO, for CVAT, Label Studio, Roboflow): {self.prelabels}",
            f"  masks (16-bit instance ids, a json beside each):    {self.masks}",
            f"  overlays (JPEG):                                     {self.overlays}",
        ]
        if self.archive is not None:
            lines.append(f"  all of it in one file:                               {self.archive}")
        return "\n".join(lines)


def write_prediction_outputs(
    predictions: Predictions,
    class_map: ClassMap,
    selection: Selection,
    root: Path,
    split: str | None = None,
    *,
    results: Sequence[Path] = (),
    archive: Path | None = None,
    images: Sequence[dict] | None = None,
    paths: dict[int, Path] | None = None,
    progress: Callable[[str], None] | None = print,
) -> Written:
    """Pre-labels, masks and overlays of what ``selection`` keeps of ``predictions``, under ``root`` (the output
    folder); then ``archive`` (a zip) of them and of ``results`` (e.g. ``submission.json``), when given.

    ``images`` (the split json's entries) and ``paths`` (image id -> file) default to the predictions' split.
    """
    started = time.perf_counter()
    split = split or predictions.split
    images = list(images if images is not None else predictions.images.coco["images"])
    paths = paths if paths is not None else predictions.images.paths()
    rows = selection.apply(predictions.detections)  # grouped by image id, best first: the submission's order
    by_image = {image_id: list(group) for image_id, group in groupby(rows, key=lambda r: r["image_id"])}
    root = Path(root)
    layout = Outputs.at(root)
    masks_dir, overlays_dir = layout.masks_dir / split, layout.overlays_dir / split
    prelabels = write_json(
        layout.prelabels_dir / f"{split}.json",
        prelabel_dataset(images, rows, class_map, f"tinyvoc pre-labels of {split} at {selection.describe()}"),
    )
    overlays = OverlayWriter(class_map)
    stems = output_stems([im["file_name"] for im in images])
    step = max(1, len(images) // 5)
    for done, (image, stem) in enumerate(zip(images, stems), start=1):
        kept = by_image.get(image["id"], [])
        write_mask_files(kept, image, stem, masks_dir, class_map)
        overlays.write(paths[image["id"]], kept, overlays_dir / f"{stem}.jpg")
        if progress and (done % step == 0 or done == len(images)):
            progress(f"  masks and overlays: {done}/{len(images)} images ({time.perf_counter() - started:.0f} s)")
    if archive is not None:
        parts = [*results, prelabels, *_files(masks_dir, stems, ".png", ".json"), *_files(overlays_dir, stems, ".jpg")]
        write_archive(archive, root, parts)
    return Written(prelabels, masks_dir, overlays_dir, archive, len(images), len(rows), time.perf_counter() - started)


def _files(folder: Path, stems: Sequence[str], *suffixes: str) -> list[Path]:
    return [folder / f"{stem}{suffix}" for stem in stems for suffix in suffixes]


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
