"""How long one move of the threshold view's slider takes, at the real load.

The load is a strong model at a low threshold: 100 detections on each of the 100 real test images
(10,000, masks shaped like Mask R-CNN's at the real images' sizes) and a 135-image validation split
of the same density (13,500 detections), as in ``bench_rethreshold.py``. The view is built once
(the validation matching, each image's rows), then the slider is moved through ``MOVES`` thresholds
from 0.01 to 0.9 and back; each move selects, counts, scores the validation AP from the one matching
and redraws the picked images. Printed: the median seconds per move with the counts drawn, the
median CPU seconds per move (this process's own time, which other programs on the machine do not
inflate: compare it with the wall time when the load average is high), and the parts of one move.

    .venv/bin/python benchmarks/bench_inspect.py [--images 6]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import real_files, strong_model_detections, validation_split

from tinyvoc.dataset.record import ClassMap
from tinyvoc.inference import evaluate
from tinyvoc.inference.cache_file import Predictions
from tinyvoc.inference.selection import Selection
from tinyvoc.inference.trained_run import read_split
from tinyvoc.visualize import inspector, render

PER_IMAGE = 100
MOVES = 21


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=6, help="images drawn per move (the view's default is 6)")
    args = parser.parse_args()
    files = real_files()
    test_json = json.loads(files.test_json.read_text())
    categories = [c["id"] for c in test_json["categories"]]
    started = time.perf_counter()
    test_split = read_split("test", files.test_json, files.test_images)
    test = Predictions(
        "test",
        strong_model_detections(test_json["images"], categories, PER_IMAGE),
        0.01,
        image_ids=[it.image_id for it in test_split.items],
        images=test_split,
    )
    with tempfile.TemporaryDirectory() as tmp:
        gt, val_detections = validation_split(test_json, num_images=135, per_image=PER_IMAGE)
        gt_path = Path(tmp) / "val.json"
        gt_path.write_text(json.dumps(gt))
        val = Predictions("val", val_detections, 0.01, images=read_split("val", gt_path, Path(tmp), check_files=False))
        print(f"load made in {time.perf_counter() - started:.0f} s: {len(test.detections)} test detections on "
              f"{len(test.image_ids)} images, {len(val.detections)} validation detections")  # fmt: skip
        class_map = ClassMap(tuple(categories), tuple(c["name"] for c in test_json["categories"]))

        start = time.perf_counter()
        matching = evaluate.Matching(val)
        matched = time.perf_counter() - start
        start = time.perf_counter()
        view = inspector.ThresholdView(test, class_map, Selection(0.05), matching, n_images=args.images)
        first = time.perf_counter() - start
        print(f"built once: validation matching {matched:.2f} s; the view with its first draw {first:.2f} s "
              "(reads the images and decodes their masks, then keeps them)")  # fmt: skip

        up = np.geomspace(0.01, 0.9, (MOVES + 1) // 2)
        thresholds = [*up, *up[::-1][1:]]
        seconds, cpu, drawn = [], [], []
        for threshold in thresholds:
            start, start_cpu = time.perf_counter(), time.process_time()
            view.slider.value = float(threshold)
            seconds.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
            drawn.append(sum(len(d) for d in view.drawn.values()))
        assert len(view.drawn) == args.images and max(drawn) > 0

        selection = view.selection
        parts = {
            "select and count": lambda: view.columns.keep(selection),
            "validation AP": lambda: matching.scores(selection),
            "draw and encode": lambda: render.jpeg(
                render.grid([view.draw(i, view.drawn[i]) for i in view.images.value], 3)
            ),
        }
        timed = {name: statistics.median(_time(fn) for _ in range(5)) for name, fn in parts.items()}
        print(
            f"redraw: {statistics.median(seconds):.3f} s per change (median of {len(seconds)} moves from 0.01 to 0.9 "
            f"and back; {args.images} images drawn, {min(drawn)}-{max(drawn)} detections drawn per change, "
            f"slowest {max(seconds):.3f} s)"
        )
        print(
            f"CPU time per change: {statistics.median(cpu):.3f} s (median; what the change costs this process, "
            f"whatever else runs on the machine: load average {os.getloadavg()[0]:.1f} at the end)"
        )
        print("one change at 100 detections drawn per image: " + ", ".join(f"{k} {v:.3f} s" for k, v in timed.items()))


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
