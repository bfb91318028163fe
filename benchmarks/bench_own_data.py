"""Your own data at scale: a COCO export of 10,000 images and 100,000 polygon annotations, from staging to detectron2.

Issue 35's goals: the check of such a file, without reading pixels, under 30 s on the 2-core machine, and
registering it under 10 s more (the split, the dataset record and detectron2's three reads; importing
detectron2.data, a few seconds once per kernel that 01's check has paid already, is not counted). Printed
beside a plain pycocotools ``COCO()`` load of the same json (the floor any reader pays), in one run.
The images are empty files (only their presence is checked without pixels); each has 10 polygons of 16 points,
ids start at 0 and skip numbers, and one category owns nothing (Roboflow's root category).

    .venv/bin/python benchmarks/bench_own_data.py [--images 10000] [--per-image 10]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import random
import tempfile
import time
from pathlib import Path

from tinyvoc.core.paths import Outputs
from tinyvoc.dataset import own_data
from tinyvoc.dataset.check import check_files
from tinyvoc.dataset.record import prepare_dataset
from tinyvoc.dataset.registry import register_all


def polygon(rng: random.Random, width: int, height: int, points: int = 16) -> tuple[list[float], list[float]]:
    cx, cy, r = rng.uniform(60, width - 60), rng.uniform(60, height - 60), rng.uniform(10, 50)
    xy = []
    for k in range(points):
        angle = 2 * math.pi * k / points
        xy += [round(cx + r * math.cos(angle), 1), round(cy + r * math.sin(angle), 1)]
    return xy, [cx - r, cy - r, 2 * r, 2 * r]


def write_export(root: Path, n_images: int, per_image: int) -> Path:
    rng = random.Random(0)
    categories = [{"id": 0, "name": "my-dataset"}] + [{"id": 3 * k + 1, "name": f"class{k}"} for k in range(12)]
    images, annotations = [], []
    (root / "images").mkdir(parents=True)
    for i in range(n_images):
        name = f"img_{i:05d}.jpg"
        (root / "images" / name).touch()
        images.append({"id": 2 * i, "file_name": name, "width": 640, "height": 480})
        for _ in range(per_image):
            seg, bbox = polygon(rng, 640, 480)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": 2 * i,
                    "category_id": rng.choice(categories[1:])["id"],
                    "segmentation": [seg],
                    "bbox": bbox,
                    "area": bbox[2] * bbox[3],
                    "iscrowd": 0,
                }
            )
    path = root / "annotations.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path


def timed(label: str, fn):
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        result = fn()
    seconds = time.perf_counter() - started
    print(f"  {label:<52} {seconds:6.2f} s")
    return result, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--per-image", type=int, default=10)
    args = parser.parse_args()
    from detectron2.data import DatasetCatalog  # noqa: F401 - imported once per kernel by 01's check, not timed here
    from pycocotools.coco import COCO

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        json_path = write_export(scratch / "export", args.images, args.per_image)
        size = json_path.stat().st_size / 2**20
        print(f"{args.images:,} images, {args.images * args.per_image:,} polygon annotations, json {size:.0f} MiB")
        _, coco_s = timed("pycocotools COCO(json) (the floor)", lambda: COCO(str(json_path)))
        prepared, prepare_s = timed("stage, find the layout, resolve names, classes", lambda: own_data.prepare(
            scratch / "export", scratch / "data"))  # fmt: skip
        report, check_s = timed("the check, no pixels read", lambda: check_files(prepared.files, read_images=False))
        assert report.ok, report.summary()
        outputs = Outputs.at(scratch / "output", scratch / "data")
        record, split_s = timed("split and dataset record", lambda: prepare_dataset(
            prepared.files, outputs, "own", 0.1, 0))  # fmt: skip
        _, register_s = timed("register with detectron2 (train, val, test read once)", lambda: register_all(record))
    checked = prepare_s + check_s
    print(f"check (staging included): {checked:.1f} s = {checked / coco_s:.1f}x a COCO() load; goal < 30 s")
    print(f"register (split included): {split_s + register_s:.1f} s more; goal < 10 s")


if __name__ == "__main__":
    main()
