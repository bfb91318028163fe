"""How long the dataset check takes now that it decodes every image as detectron2's loader does.

On the real files (../shared/tinyvoc: 10 training + 100 test images): the whole check (json, images,
categories, annotations), then the image reads alone, serially, in a thread pool and in a process
pool, then 1,449 reads (the real training set's size, the 110 files cycled: page cache warm, so a
first read from a slow disk or Drive adds its I/O on top).

    .venv/bin/python benchmarks/bench_dataset_check.py
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor

from _common import real_files

from tinyvoc.core.coco_json import load_coco
from tinyvoc.core.image_reader import LOADER_FORMAT, ImageToRead, image_problem, read_problems
from tinyvoc.dataset.check import check_dataset

REAL_TRAIN_IMAGES = 1449


def best_of(runs: int, fn) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def items_of(json_path, folder) -> list[ImageToRead]:
    return [
        ImageToRead(folder / im["file_name"], im["height"], im["width"], json_path.name)
        for im in load_coco(json_path)["images"]
    ]


def serial(items):
    return [image_problem(item) for item in items]


def processes(items, workers: int):
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(image_problem, items, [LOADER_FORMAT] * len(items), chunksize=16))


def main() -> None:
    files = real_files()
    start = time.perf_counter()
    from detectron2.data import detection_utils  # noqa: F401 - the one-off import the first check pays

    print(f"import detectron2.data (once per kernel): {time.perf_counter() - start:.2f} s")
    items = items_of(files.train_json, files.train_images) + items_of(files.test_json, files.test_images)
    assert all(problem is None for problem in serial(items)), "the real images must all pass"
    print(f"{os.cpu_count()} CPUs, {len(items)} real images, best of 3 runs")

    whole = best_of(
        3,
        lambda: check_dataset(files.train_json, files.train_images, files.test_json, files.test_images, progress=None),
    )
    print(f"  whole check_dataset (default threads):  {whole:.3f} s")
    rows = [("serial", lambda: serial(items))]
    for workers in (2, 4):
        rows.append((f"threads x{workers}", lambda w=workers: read_problems(items, workers=w, progress=None)))
        rows.append((f"processes x{workers}", lambda w=workers: processes(items, w)))
    per_image = {}
    for name, fn in rows:
        seconds = best_of(3, fn)
        per_image[name] = seconds / len(items)
        print(f"  image reads, {name:<14} {seconds:.3f} s  ({1000 * seconds / len(items):.2f} ms per image)")

    many = (items * (REAL_TRAIN_IMAGES // len(items) + 1))[:REAL_TRAIN_IMAGES]
    seconds = best_of(1, lambda: read_problems(many, progress=None))
    print(f"{REAL_TRAIN_IMAGES} reads (the real training set's size), default threads: {seconds:.2f} s measured")
    fastest = min(per_image, key=per_image.get)
    print(f"  extrapolated from the 110 with {fastest}: {per_image[fastest] * REAL_TRAIN_IMAGES:.2f} s")


if __name__ == "__main__":
    main()
