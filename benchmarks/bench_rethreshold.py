"""A new score threshold from the prediction cache vs re-running inference, at the real load.

The real load is a strong model at a low threshold: 100 instances on each of the 100 test images,
10,000 in all. Three parts, each printing the counts it compares so that nothing passes on empty
input:

1. Re-run inference + export vs export from the cache, with one model on the 100 real test images
   (the smoke profile, an R18-FPN Mask R-CNN trained for 2 iterations, on this machine's CPU). It is
   nearly random and scores everything below 0.01, so its cache floor and the export threshold are
   0: it fills all 100 detection slots per image, and every detection is exported. Both exports
   must be the same 10,000-instance file.
2. Export from a cache of 10,000 realistic detections (masks shaped like Mask R-CNN's on the real
   test images' sizes, scores spread over 0.01-1), exported at the cache floor, so all are kept.
3. The threshold sweep on a 135-image validation split of the same density (13,500 detections),
   one matching for all thresholds vs evaluating every threshold from scratch; then per-class AP
   and the error gallery's matching at the lowest threshold.
4. The inference the cache replaces for users: the ``strong`` profile's X-101-32x8d-FPN Mask R-CNN
   (random weights, score floor 0, so its mask head also fills 100 detections per image), with and
   without its flip + two-scale TTA, timed on the first ``--x101-images`` test images and scaled to
   100 (it takes minutes per image on two CPU cores, so the whole set is not run here).

Timings are the median of ``REPEATS`` runs in this process. Parts 1 and 2 also time the same export
with Python's garbage collector running through it, as it did before ``core/gc_pause.py``, the two
alternating run by run, so both see the same load.

    .venv/bin/python benchmarks/bench_rethreshold.py [--x101-images N] [--device cpu|cuda]
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

from _common import real_files, smoke_model_outputs, strong_model_detections, validation_split

from tinyvoc.core import gc_pause
from tinyvoc.inference import cached_predictions, evaluate
from tinyvoc.inference.cache_file import Predictions, read_cache, write_cache
from tinyvoc.inference.model_runner import instances_to_detections
from tinyvoc.inference.selection import Selection
from tinyvoc.inference.trained_run import TrainedRun, read_split
from tinyvoc.submission import export

REPEATS = 5
PER_IMAGE = 100


def timed(fn, repeats: int = REPEATS) -> tuple[float, object]:
    """Median seconds of ``repeats`` calls, and the last call's result."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def with_and_without_pause(fn, repeats: int = REPEATS) -> tuple[float, float, object]:
    """Median seconds of ``fn`` with the collector paused (as shipped) and running (as before), alternating."""
    paused, running = [], []
    for _ in range(repeats):
        for times, pause in ((running, False), (paused, True)):
            gc_pause.PAUSE = pause
            try:
                start = time.perf_counter()
                result = fn()
                times.append(time.perf_counter() - start)
            finally:
                gc_pause.PAUSE = True
    return statistics.median(paused), statistics.median(running), result


def pause_line(paused: float, running: float) -> str:
    before = "the same, garbage collector running through it (before core/gc_pause.py):"
    return f"   {before} {running:.3f} s, {running / paused:.2f}x"


def count(path: Path) -> int:
    return len(json.loads(path.read_text()))


def model_part(root: Path) -> float:
    """Part 1; returns the seconds of inference + export."""
    outputs = smoke_model_outputs(root)
    # warm-up: load paths, caches
    cached_predictions.predict_split(TrainedRun.load(outputs, "final"), "test", score_floor=0.0)

    def rerun():
        run = TrainedRun.load(outputs, "final")
        fresh = cached_predictions.predict_split(run, "test", score_floor=0.0, refresh=True)
        export.export_submission(fresh, fresh.images.coco, root / "fresh.json", Selection(0.0))
        return len(fresh.detections)

    infer, cached_detections = timed(rerun, repeats=1)

    def from_cache():  # what re-running notebook 04 pays: load the run, read the cache, export
        cached = cached_predictions.predict_split(TrainedRun.load(outputs, "final"), "test", score_floor=0.0)
        return export.export_submission(cached, cached.images.coco, root / "cached.json", Selection(0.0))

    seconds, running, report = with_and_without_pause(from_cache)
    fresh_n, cached_n = count(root / "fresh.json"), count(root / "cached.json")
    assert fresh_n == cached_n == report.num_instances == cached_detections == 100 * PER_IMAGE, (fresh_n, cached_n)
    same = (root / "fresh.json").read_bytes() == (root / "cached.json").read_bytes()
    assert same
    print("1. smoke-profile model (R18-FPN Mask R-CNN, 2 iterations, CPU) on the 100 real test images")
    print(f"   cached detections: {cached_detections}; exported at threshold 0.0: fresh {fresh_n}, cache {cached_n}")
    print(f"   identical files ({cached_n} instances each): {same}")
    print(f"   re-run inference + export: {infer:8.2f} s")
    print(f"   export from the cache:     {seconds:8.3f} s (load the cache, filter, write, check the written file)")
    print(pause_line(seconds, running))
    print(f"   ratio: {infer / seconds:.0f}x")
    return infer


def realistic_part(root: Path, infer: float) -> float:
    """Part 2."""
    files = real_files()
    test = json.loads(files.test_json.read_text())
    detections = strong_model_detections(test["images"], [c["id"] for c in test["categories"]], PER_IMAGE)
    cache_file = root / "predictions" / "test-bench.jsonl"
    write_cache(cache_file, Predictions("test", detections, 0.01, key="bench"))
    threshold = min(d["score"] for d in detections)

    def from_cache():
        cached = read_cache(cache_file)
        return export.export_submission(cached, files.test_json, root / "realistic.json", Selection(threshold))

    seconds, running, report = with_and_without_pause(from_cache)
    chars = sum(len(d["segmentation"]["counts"]) for d in detections) / len(detections)
    exported = count(root / "realistic.json")
    assert exported == report.num_instances == len(detections) == 100 * PER_IMAGE, exported
    print(f"2. realistic cache: {len(detections)} detections on the 100 test images' sizes, {chars:.0f} RLE chars each")
    print(f"   exported at threshold {threshold} (the lowest score): {exported} instances")
    print(f"   export from the cache:     {seconds:8.3f} s; part 1's inference + export is {infer / seconds:.0f}x that")
    print(pause_line(seconds, running))
    return seconds


def sweep_part(root: Path) -> None:
    """Part 3."""
    test = json.loads(real_files().test_json.read_text())
    gt, detections = validation_split(test, num_images=135, per_image=PER_IMAGE)
    gt_path = root / "val.json"
    root.mkdir(parents=True, exist_ok=True)
    gt_path.write_text(json.dumps(gt))
    cached = Predictions("val", detections, 0.01, images=read_split("val", gt_path, root, check_files=False))

    floor = Selection(cached.score_floor)
    new_seconds, rows = timed(lambda: evaluate.threshold_sweep(evaluate.Matching(cached), floor), repeats=3)

    def from_scratch():
        scratch = []
        for threshold in sorted(t for t in evaluate.DEFAULT_SWEEP if t >= cached.score_floor):
            kept = Selection(threshold).apply(cached.detections)
            segm = evaluate.evaluate_detections(kept, gt_path, iou_types=("segm",))["segm"]
            scratch.append({"threshold": threshold, "AP": segm["AP"], "AP50": segm["AP50"], "instances": len(kept)})
        return scratch

    old_seconds, old_rows = timed(from_scratch, repeats=1)
    assert rows == old_rows, (rows, old_rows)
    assert rows[0]["instances"] == len(detections) == 135 * PER_IMAGE
    per_class_seconds, metrics = timed(lambda: evaluate.evaluate_cached(cached, Selection(0.01)), repeats=3)
    errors_seconds, errors = timed(lambda: evaluate.match_errors(cached, Selection(0.01)), repeats=3)
    missed = sum(len(e["missed"]) for e in errors.values())
    false_positives = sum(len(e["false_positives"]) for e in errors.values())
    objects = len(gt["annotations"])
    print(f"3. validation split: {len(gt['images'])} images, {objects} objects, {len(detections)} detections")
    print(f"   sweep over {len(rows)} thresholds, instances kept: {[r['instances'] for r in rows]}")
    print(f"   mask AP50 by threshold: {[round(r['AP50'], 3) for r in rows]}")
    print(f"   sweep, one matching:        {new_seconds:8.2f} s")
    print(f"   sweep, each from scratch:   {old_seconds:8.2f} s (same numbers: {rows == old_rows})")
    print(f"   ratio: {old_seconds / new_seconds:.1f}x")
    segm = metrics["segm"]
    print(f"   per-class AP (segm + bbox) at 0.01: {per_class_seconds:6.2f} s (mask AP50 {segm['AP50']:.3f})")
    print(f"   error gallery matching at 0.01:     {errors_seconds:6.2f} s ({missed} missed, {false_positives} FP)")


def x101_part(num_images: int, device: str, export_seconds: float) -> None:
    """Part 4."""
    import torch
    from detectron2.data import detection_utils
    from detectron2.data import transforms as T
    from detectron2.modeling import GeneralizedRCNNWithTTA, build_model

    from tinyvoc.training.profiles import build_config

    files = real_files()
    test = json.loads(files.test_json.read_text())
    images = test["images"][:num_images]
    cfg = build_config("strong", num_classes=20, output_dir="unused", has_gpu=device == "cuda")
    cfg.MODEL.WEIGHTS = ""
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.0
    model = build_model(cfg).eval()
    aug = T.ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST] * 2, cfg.INPUT.MAX_SIZE_TEST)
    print(f"4. X-101-32x8d-FPN Mask R-CNN (strong profile, random weights) on {device}, {num_images} test image(s)")
    for name, net in (("no TTA", model), ("flip + 2-scale TTA", GeneralizedRCNNWithTTA(cfg, model))):
        found, times = 0, []
        for image in images:
            array = detection_utils.read_image(str(files.test_images / image["file_name"]), format="BGR")
            start = time.perf_counter()
            tensor = torch.as_tensor(aug.get_transform(array).apply_image(array).astype("float32").transpose(2, 0, 1))
            with torch.inference_mode():
                out = net([{"image": tensor, "height": image["height"], "width": image["width"]}])[0]["instances"]
            found += len(instances_to_detections(out.to("cpu"), image["id"], _IdentityMap()))
            times.append(time.perf_counter() - start)
        per_image = statistics.median(times)
        print(
            f"   {name:18s}: {per_image:7.2f} s per image ({found} detections on {len(images)}); 100 images "
            f"~{100 * per_image:7.0f} s, {100 * per_image / export_seconds:.0f}x part 2's export from the cache"
        )


class _IdentityMap:
    def to_dataset_id(self, index: int) -> int:
        return index + 1


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--x101-images", type=int, default=2, help="test images for the X-101 timing (0: skip)")
    parser.add_argument("--device", default="cpu", help="device for the X-101 timing")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        infer = model_part(root / "model")
        export_seconds = realistic_part(root / "realistic", infer)
        sweep_part(root / "sweep")
        if args.x101_images:
            x101_part(args.x101_images, args.device, export_seconds)


if __name__ == "__main__":
    main()
