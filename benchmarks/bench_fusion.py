"""Fusing runs' cached predictions vs predicting again, at the real load.

The real load: two runs (members), each with 100 detections on every one of the 100 test images and
on a 135-image validation split of the test images' sizes (the density of ``bench_rethreshold.py``
part 3): 23,500 detections per member. Member A's masks are shaped like Mask R-CNN's
(``_common.mask_head_like``); member B is another model's view of the same images: most of A's
objects again, each box moved by a few percent and its mask redrawn, rescored, the rest replaced by
detections of its own, so fusion has groups to vote on. A third member, made like B, times the
three-member vote.

Printed, each measured in this run:

1. Fusing A and B, test and validation: computed and written to the cache, then read from it;
   the instances in and out and how many groups had two members.
2. Three members (A, B, C) the same way.
3. Validation mask AP50 / AP of A, B and their fusions on the synthetic split: only a check that the
   fused predictions go through the evaluation as a run's do. B and C are degraded copies of A (moved
   masks, a third of the objects replaced by random guesses), so the fusions are expected below A;
   this says nothing about fusing real models.
4. What predicting again would cost instead: the smoke profile's R18-FPN Mask R-CNN (trained two
   iterations on the real files, score floor 0, so it fills its 100 detections per image) timed on
   the first ``--images`` real test images on this CPU, scaled to the images of both members' two splits.
5. Soft masks (mask voting): A's and B's test detections given the mask head's 28 x 28 probabilities
   (each mask's box resampled to 28 x 28, sharpened as a trained head's confident output, with a smooth
   random texture), as the cache keeps them (8-bit; all of a cache's in one xz stream, base64, on a line
   of their own). Printed: A's cache without them, with them (goal: at most +25%), and with them as
   caches kept them before (each detection's zlib-compressed on its own, base64, in its row); the time
   to write and read that cache without and with them; then the time to fuse the two 10,000-detection
   runs by mask voting beside the binary vote (goal: under 3 s), with the load average at the time.
   ``--soft-only`` builds A's and B's test detections alone and runs this part. These maps are nearly
   binary (98% of their levels within 2 of 0 or 255) and compress to about 94 bytes a detection; the
   maps of a model trained 40 iterations, on the sample, take about 420 (docs/measurements.md).

    .venv/bin/python benchmarks/bench_fusion.py [--images N] [--soft-only]
"""

from __future__ import annotations

import base64
import io
import json
import os
import statistics
import tempfile
import time
import zlib
from contextlib import redirect_stdout
from dataclasses import replace
from pathlib import Path

import numpy as np
from _common import detection, random_box, real_files, smoke_model_outputs, strong_model_detections, validation_split

from tinyvoc.inference import evaluate, fusion
from tinyvoc.inference.cache_file import Predictions, mask_probs_levels, read_cache, write_cache
from tinyvoc.inference.selection import Selection
from tinyvoc.inference.trained_run import read_split

PER_IMAGE = 100
VAL_IMAGES = 135


def another_model(rows: list[dict], images: dict[int, dict], category_ids: list[int], seed: int) -> list[dict]:
    """Another model's detections of the same images: 70% of ``rows`` moved and rescored, the rest its own."""
    rng = np.random.default_rng(seed)
    out = []
    for row in rows:
        image = images[row["image_id"]]
        height, width = image["height"], image["width"]
        x, y, w, h = row["bbox"]
        if rng.random() < 0.7 and w >= 2 and h >= 2:
            jitter = rng.normal(scale=0.04, size=4) * [w, h, w, h]
            x0, y0 = np.clip([x + jitter[0], y + jitter[1]], 0, [width - 2, height - 2])
            x1, y1 = np.clip([x + w + jitter[2], y + h + jitter[3]], [x0 + 2, y0 + 2], [width, height])
            score = float(np.clip(row["score"] * rng.uniform(0.6, 1.4), 0.01, 1.0))
            out.append(detection(rng, image, row["category_id"], score, (x0, y0, x1, y1)))
        else:
            score = float(np.clip(rng.beta(0.4, 2.0), 0.01, 1.0))
            category = int(rng.choice(category_ids))
            out.append(detection(rng, image, category, score, random_box(rng, height, width)))
    return out


def members(root: Path, test_only: bool = False) -> tuple[list[Predictions], list[Predictions]]:
    """Three members' test and val predictions, written to caches as predict_split writes them; ``test_only``: A's
    and B's test predictions alone (the same ones), for part 5."""
    test = json.loads(real_files().test_json.read_text())
    category_ids = [c["id"] for c in test["categories"]]
    root.mkdir(parents=True, exist_ok=True)
    if test_only:
        gt, val_a, val_images = {"images": []}, [], None
    else:
        gt, val_a = validation_split(test, num_images=VAL_IMAGES, per_image=PER_IMAGE)
        gt_path = root / "val.json"
        gt_path.write_text(json.dumps(gt))
        val_images = read_split("val", gt_path, root, check_files=False)
    test_a = strong_model_detections(test["images"], category_ids, PER_IMAGE)
    by_id = {i["id"]: i for i in test["images"] + gt["images"]}
    tests, vals = [], []
    for name, seed in (("A", 0), ("B", 1)) if test_only else (("A", 0), ("B", 1), ("C", 2)):
        test_rows = test_a if name == "A" else another_model(test_a, by_id, category_ids, seed)
        splits = [("test", test_rows, [i["id"] for i in test["images"]], tests)]
        if not test_only:
            val_rows = val_a if name == "A" else another_model(val_a, by_id, category_ids, 100 + seed)
            splits.append(("val", val_rows, [i["id"] for i in gt["images"]], vals))
        for split, rows, ids, out in splits:
            made = Predictions(split, rows, 0.01, image_ids=ids, key=f"{name}-{split}", checkpoint=f"{name}.pth")
            out.append(write_cache(root / "predictions" / f"{split}-{name}.jsonl", made))
    vals = [replace(v, images=val_images) for v in vals]
    return tests, vals


def fuse_both(tests, vals, cache: Path) -> tuple[float, float, list[Predictions]]:
    """Seconds to fuse test and val (computed and cached), seconds to read both back, the fused pair."""
    started = time.perf_counter()
    fused = [fusion.fuse(tests, cache_dir=cache, refresh=True), fusion.fuse(vals, cache_dir=cache, refresh=True)]
    computed = time.perf_counter() - started
    reads = []
    for _ in range(3):
        started = time.perf_counter()
        again = [fusion.fuse(tests, cache_dir=cache), fusion.fuse(vals, cache_dir=cache)]
        reads.append(time.perf_counter() - started)
    assert [a.detections for a in again] == [f.detections for f in fused]
    return computed, statistics.median(reads), fused


def predict_seconds(root: Path, num_images: int) -> tuple[float, int]:
    """Median seconds per real test image for the smoke model (read, predict, encode the masks), and detections."""
    from tinyvoc.inference.model_runner import BatchPredictor, instances_to_detections
    from tinyvoc.inference.trained_run import TrainedRun

    with redirect_stdout(io.StringIO()):
        run = TrainedRun.load(smoke_model_outputs(root), "final")
    predictor = BatchPredictor(run.inference_config(0.0), run.checkpoint)
    times, found = [], 0
    for item in run.split("test").items[:num_images]:
        started = time.perf_counter()
        instances = predictor([predictor.read(item)], [(item.height, item.width)])[0]
        found += len(instances_to_detections(instances, item.image_id, run.record.class_map))
        times.append(time.perf_counter() - started)
    return statistics.median(times), found


def with_probs(predictions: Predictions, seed: int) -> Predictions:
    """``predictions`` with each detection's mask head probabilities: its mask's box resampled to 28 x 28, then
    sharpened as a trained head is confident (interior and background near 1 and 0, a soft edge)."""
    from _common import _resize_matrix

    from tinyvoc.core.rle import decode_mask
    from tinyvoc.inference.cache_file import encode_mask_probs  # as model_runner makes them

    rng = np.random.default_rng(seed)
    smooth = _resize_matrix(28, 5)
    rows = []
    for row in predictions.detections:
        x, y, w, h = row["bbox"]
        mask = decode_mask(row["segmentation"]).astype(float)
        top, left = int(y), int(x)
        crop = mask[top : top + max(1, int(round(h))), left : left + max(1, int(round(w)))]
        fraction = _resize_matrix(28, crop.shape[0]) @ crop @ _resize_matrix(28, crop.shape[1]).T
        texture = smooth @ rng.normal(scale=0.5, size=(5, 5)) @ smooth.T  # a head's output varies smoothly
        probs = 1 / (1 + np.exp(-12 * (fraction - 0.5) + texture))
        rows.append({**row, "mask_probs": encode_mask_probs(probs)})
    return replace(predictions, detections=rows)


def one_by_one(probs: str) -> str:
    """A detection's probabilities as caches kept them before the probabilities' own line: 8-bit, compressed on
    their own (zlib, level 9), base64, in the detection's row."""
    return base64.b64encode(zlib.compress(mask_probs_levels(probs).tobytes(), 9)).decode("ascii")


def soft_masks(tests: list[Predictions], root: Path) -> None:
    """Part 5 (module docstring): the cache's growth and mask voting's time on two 10,000-detection runs."""
    soft = [with_probs(p, seed) for seed, p in enumerate(tests[:2])]
    sizes, writes, reads = [], [], []
    for name, predictions in (("binary", tests[0]), ("soft", soft[0])):
        path = root / f"{name}.jsonl"
        started = time.perf_counter()
        write_cache(path, replace(predictions, key=name))
        writes.append(time.perf_counter() - started)
        sizes.append(path.stat().st_size)
        times = []
        for _ in range(3):
            started = time.perf_counter()
            read_cache(path)
            times.append(time.perf_counter() - started)
        reads.append(statistics.median(times))
    # the same cache as written before: the binary cache's header (only its checksum differs), then rows with probs
    before = [{**d, "mask_probs": one_by_one(d["mask_probs"])} for d in soft[0].detections]
    sizes.append(sizes[0] + len(json.dumps(before)) - len(json.dumps(tests[0].detections)))
    timings, loads = {}, {}
    for name, pair in (("binary vote", tests[:2]), ("mask voting", soft)):
        runs = []
        loads[name] = os.getloadavg()[0]
        for _ in range(3):
            with redirect_stdout(io.StringIO()):
                started = time.perf_counter()
                fusion.fuse(pair)
                runs.append(time.perf_counter() - started)
        timings[name] = statistics.median(runs)
    n = len(tests[0].detections)
    grow = [size / sizes[0] - 1 for size in sizes]
    print(f"5. soft masks: A's test cache ({n} detections) without the probabilities {sizes[0] / 2**20:.2f} MiB, "
          f"with them {sizes[1] / 2**20:.2f} MiB ({grow[1]:+.1%}; goal at most +25%)")  # fmt: skip
    print(f"   with them as caches kept them before (each detection's own zlib, base64, in its row): "
          f"{sizes[2] / 2**20:.2f} MiB ({grow[2]:+.1%})")  # fmt: skip
    print(f"   writing that cache {writes[0]:.2f} s without them, {writes[1]:.2f} s with; reading it (median of 3) "
          f"{reads[0]:.2f} s without, {reads[1]:.2f} s with")  # fmt: skip
    print(f"   fusing {n} + {len(tests[1].detections)} test detections (median of 3): binary vote "
          f"{timings['binary vote']:.2f} s (load average {loads['binary vote']:.1f}), mask voting "
          f"{timings['mask voting']:.2f} s (load average {loads['mask voting']:.1f}; goal under 3 s)")  # fmt: skip


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3, help="real test images to time the smoke model on")
    parser.add_argument("--soft-only", action="store_true", help="only part 5, soft masks")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        tests, vals = members(root / "members", test_only=args.soft_only)
        total = sum(len(p.detections) for p in tests[:2] + vals[:2])
        print(f"members built in {time.perf_counter() - started:.0f} s (not part of any timing below)")
        if args.soft_only:
            soft_masks(tests, root)
            return

        with redirect_stdout(io.StringIO()):
            computed, read, (test_ab, val_ab) = fuse_both(tests[:2], vals[:2], root / "fused")
        pairs = sum(len(p.detections) for p in tests[:2]) - len(test_ab.detections)
        pairs += sum(len(p.detections) for p in vals[:2]) - len(val_ab.detections)
        print(
            f"1. two members: {len(tests[0].detections)} + {len(tests[1].detections)} test detections "
            f"({len(tests[0].image_ids)} images), {len(vals[0].detections)} + {len(vals[1].detections)} val "
            f"({len(vals[0].image_ids)} images): {total} in, {len(test_ab.detections) + len(val_ab.detections)} out, "
            f"{pairs} groups of two"
        )
        print(f"   fuse test + val, computed and cached: {computed:6.2f} s")
        print(f"   the same from the fused caches:       {read:6.2f} s")

        with redirect_stdout(io.StringIO()):
            computed3, read3, (test_abc, val_abc) = fuse_both(tests, vals, root / "fused")
        total3 = sum(len(p.detections) for p in tests + vals)
        print(f"2. three members: {total3} in, {len(test_abc.detections) + len(val_abc.detections)} out")
        print(f"   fuse test + val, computed and cached: {computed3:6.2f} s")
        print(f"   the same from the fused caches:       {read3:6.2f} s")

        print("3. validation (synthetic split; checks the fused predictions evaluate like a run's)")
        for name, predictions in (("A", vals[0]), ("B", vals[1]), ("A+B fused", val_ab), ("A+B+C fused", val_abc)):
            scored = evaluate.Matching(predictions).scores(Selection(0.01))
            print(f"   {name:12s} mask AP50 {scored['AP50']:.3f}  AP {scored['AP']:.3f}  ({scored['instances']} kept)")

        print("4. predicting again instead (smoke profile, this CPU)")
        per_image, found = predict_seconds(root / "model", args.images)
        images = 2 * (len(tests[0].image_ids) + len(vals[0].image_ids))
        print(f"   smoke model: {found} detections on {args.images} real test images, {per_image:.2f} s per image")
        print(f"   two members' test + val ({images} images): ~{per_image * images:.0f} s")
        print(
            f"   vs fusing them: {computed:.2f} s ({per_image * images / computed:.0f}x), from the cache {read:.2f} s"
        )
        soft_masks(tests, root)


if __name__ == "__main__":
    main()
