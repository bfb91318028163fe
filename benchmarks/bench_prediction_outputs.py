"""Predictions in the forms other tools read (issue 36), at the real load, from the cache; and ``predict``'s memory.

1. The 100 real test images with 100 detections each (10,000 instances, ``strong_model_detections``), exported
   at threshold 0 (everything kept): the course's submission alone, then all of it: COCO results, pre-labels
   (polygons traced per mask), 16-bit mask PNGs with their json, JPEG overlays and the zip. The target: all of
   it in under 5 s on the 2-core machine. Then the masks' decoding alone, pycocotools' ``decode`` beside
   ``core.rle.decode_masks`` (what the outputs use), and with ``--threads`` all of it again with 1, 2 and 4
   writer threads (``deliverables.WORKERS``).
2. ``predict`` over N new images (default 100 and 1,000), each in a fresh process, printing its peak RSS: flat
   means streaming. The model is a stand-in (``FakePredictor``: 20 random Mask R-CNN-like masks per image, no
   network), since what is measured is what happens around the model: reading, caching, writing.

    .venv/bin/python benchmarks/bench_prediction_outputs.py            # both
    .venv/bin/python benchmarks/bench_prediction_outputs.py --outputs  # only 1
    .venv/bin/python benchmarks/bench_prediction_outputs.py --outputs --threads
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from itertools import groupby
from pathlib import Path

from _common import median_seconds, peak_rss_mib, real_files, strong_model_detections
from pycocotools import mask as mask_util

from tinyvoc import deliverables
from tinyvoc.core.paths import Outputs
from tinyvoc.core.rle import decode_masks, to_pycocotools
from tinyvoc.dataset.record import ClassMap
from tinyvoc.deliverables import write_prediction_outputs
from tinyvoc.inference.cache_file import Predictions
from tinyvoc.inference.selection import Selection
from tinyvoc.inference.trained_run import read_split
from tinyvoc.submission.export import export_submission


def outputs_from_cache(threads: bool = False) -> None:
    files = real_files()
    split = read_split("test", files.test_json, files.test_images)
    category_ids = [c["id"] for c in split.coco["categories"]]
    detections = strong_model_detections(split.coco["images"], category_ids)
    predictions = Predictions("test", detections, 0.0, [im["id"] for im in split.coco["images"]], images=split)
    classes = ClassMap.from_categories(split.coco["categories"])
    everything = Selection(0.0)
    with tempfile.TemporaryDirectory() as tmp:
        outputs = Outputs.at(Path(tmp) / "output")
        start = time.perf_counter()
        export_submission(predictions, split.coco, outputs.submission, everything, format="course")
        course = time.perf_counter() - start

        start = time.perf_counter()
        export_submission(predictions, split.coco, outputs.submission, everything, format="coco")
        results = time.perf_counter() - start
        written = write_prediction_outputs(predictions, classes, everything, outputs.root,
                                           results=[outputs.submission], archive=outputs.predictions_zip,
                                           progress=None)  # fmt: skip
        total = time.perf_counter() - start
        zipped = outputs.predictions_zip.stat().st_size / 2**20
    print(f"{written.instances} instances on {written.images} images (real test images, 100 each), from the cache:")
    print(f"  course submission alone (write + check):                      {course:6.2f} s")
    print(f"  COCO results (write + check):                                 {results:6.2f} s")
    print(f"  + pre-labels, mask PNGs + json, overlays, zip ({zipped:.0f} MiB):      {total - results:6.2f} s")
    print(f"  all of it:                                                    {total:6.2f} s  (target: under 5 s)")
    by_image = [list(rows) for _, rows in groupby(detections, key=lambda r: r["image_id"])]
    segmentations = [[r["segmentation"] for r in rows] for rows in by_image]
    # .shape: each image's masks dropped at once (19 MB each), so the parent of the predict runs stays small
    ours = median_seconds(lambda: [decode_masks(masks).shape for masks in segmentations])
    theirs = median_seconds(
        lambda: [mask_util.decode([to_pycocotools(m) for m in masks]).shape for masks in segmentations]
    )
    print(f"  decoding the {written.instances} masks, image by image (median of 5): pycocotools {theirs:.2f} s, "
          f"decode_masks {ours:.2f} s ({theirs / ours:.1f}x)")  # fmt: skip
    if threads:
        for workers in (1, 2, 4):
            deliverables.WORKERS = workers
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                write_prediction_outputs(predictions, classes, everything, Path(tmp), progress=None)
                seconds = time.perf_counter() - start
            print(f"  pre-labels, masks, overlays with {workers} writer thread(s): {seconds:5.2f} s")


class FakePredictor:
    """Stands in for ``model_runner.BatchPredictor``: 20 random masks per image, as Instances."""

    def __init__(self, cfg, checkpoint, tta=False):
        import numpy as np

        self.cfg, self.rng = cfg, np.random.default_rng(0)

    def __call__(self, images, sizes):
        import numpy as np
        import torch
        from _common import mask_head_like, random_box
        from detectron2.structures import Boxes, Instances

        out = []
        for height, width in sizes:
            boxes = [random_box(self.rng, height, width) for _ in range(20)]
            inst = Instances((height, width))
            inst.pred_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32))
            inst.scores = torch.tensor(self.rng.uniform(0.05, 1, 20), dtype=torch.float32)
            inst.pred_classes = torch.tensor(self.rng.integers(0, 3, 20))
            masks = [mask_head_like(self.rng, height, width, b) for b in boxes]
            inst.pred_masks = torch.from_numpy(np.stack(masks).astype(bool))
            out.append(inst)
        return out


def predict_memory(count: int) -> None:
    """One process: ``count`` new 480x360 JPEGs through ``predict_new_images`` with the stand-in model."""
    from types import SimpleNamespace

    import numpy as np
    from PIL import Image

    from tinyvoc.deliverables import predict_new_images
    from tinyvoc.inference import model_runner

    model_runner.BatchPredictor = FakePredictor
    classes = ClassMap((3, 7, 12), ("cat", "dog", "zebra"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "new"
        folder.mkdir()
        rng = np.random.default_rng(1)
        base = rng.integers(0, 255, (360, 480, 3), dtype=np.uint8)
        for k in range(count):
            Image.fromarray(np.roll(base, k, axis=1)).save(folder / f"img_{k:04d}.jpg", quality=80)
        checkpoint = Path(tmp) / "model.pth"
        checkpoint.write_bytes(b"stand-in")
        config = SimpleNamespace(dump=lambda: "stand-in config", MODEL=SimpleNamespace(DEVICE="cpu"))
        record = SimpleNamespace(class_map=classes)
        run = SimpleNamespace(name="fake", checkpoint=checkpoint, tta=False, score_floor=0.001, record=record,
                              inference_config=lambda floor: config)  # fmt: skip
        before = peak_rss_mib()
        start = time.perf_counter()
        written = predict_new_images(run, [folder], Path(tmp) / "out", Selection(0.0), say=lambda line: None)
        seconds = time.perf_counter() - start
    print(f"  predict {count:5d} images, {written.instances:6d} instances: {seconds:6.1f} s, "
          f"peak RSS {peak_rss_mib():6.0f} MiB ({before:.0f} MiB before)")  # fmt: skip


def main() -> None:
    if "--predict" in sys.argv:
        predict_memory(int(sys.argv[sys.argv.index("--predict") + 1]))
        return
    outputs_from_cache(threads="--threads" in sys.argv)
    if "--outputs" in sys.argv:
        return
    print("predict over new images (stand-in model: 20 masks an image; each count in a fresh process):")
    for count in (100, 1000):
        subprocess.run([sys.executable, __file__, "--predict", str(count)], check=True)


if __name__ == "__main__":
    main()
