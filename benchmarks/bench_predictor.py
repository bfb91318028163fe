"""Our batched predictor vs a per-image DefaultPredictor loop, same model, same 100 real test images.

Each side runs in its own process so peak memory (RSS; GPU memory too on CUDA) is its own. The
detections must be identical; throughput and peak memory are reported side by side.

    .venv/bin/python benchmarks/bench_predictor.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import peak_rss_mib, smoke_model_outputs

FLOOR = 0.0  # the nearly random model scores low: keep everything so every mask is pasted and encoded


def run_default_predictor(outputs) -> dict:
    import cv2
    import torch
    from detectron2.engine import DefaultPredictor

    from tinyvoc.inference.model_runner import instances_to_detections
    from tinyvoc.inference.trained_run import TrainedRun

    run = TrainedRun.load(outputs, "final")
    cfg = run.inference_config(FLOOR).clone()
    cfg.defrost()
    cfg.MODEL.WEIGHTS = str(run.checkpoint)  # DefaultPredictor loads the weights itself
    record, items = run.record, run.split("test").items
    start = time.perf_counter()  # both sides are timed from building the model to the last detection
    predictor = DefaultPredictor(cfg)
    detections = []
    for item in items:
        instances = predictor(cv2.imread(str(item.path)))["instances"].to("cpu")
        detections += instances_to_detections(instances, item.image_id, record.class_map)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "detections": detections, "gpu_mib": _gpu_peak(torch)}


def run_batched(outputs) -> dict:
    import torch

    from tinyvoc.inference import cached_predictions
    from tinyvoc.inference.selection import Selection
    from tinyvoc.inference.trained_run import TrainedRun
    from tinyvoc.submission import export

    start = time.perf_counter()
    run = TrainedRun.load(outputs, "final")
    cached = cached_predictions.predict_split(run, "test", score_floor=FLOOR, refresh=True)
    seconds = time.perf_counter() - start
    export.export_submission(cached, cached.images.coco, outputs.root / "submission.json", Selection(FLOOR))
    return {"seconds": seconds, "detections": cached.detections, "gpu_mib": _gpu_peak(torch)}


def _gpu_peak(torch) -> float | None:
    return torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None


def _comparable(dets: list[dict]) -> list[tuple]:
    return [(d["image_id"], d["category_id"], round(d["score"], 5), d["segmentation"]["counts"]) for d in dets]


def child(mode: str, workdir: str) -> None:
    from tinyvoc.core.paths import Outputs

    outputs = Outputs.at(workdir)
    result = (run_default_predictor if mode == "default" else run_batched)(outputs)
    result["rss_mib"] = peak_rss_mib()
    Path(workdir, f"{mode}.json").write_text(json.dumps(result))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        smoke_model_outputs(Path(tmp))
        results = {}
        for mode in ("default", "batched"):
            subprocess.run([sys.executable, __file__, "--child", mode, tmp], check=True, capture_output=True)
            results[mode] = json.loads(Path(tmp, f"{mode}.json").read_text())
    a, b = results["default"], results["batched"]
    same = _comparable(a["detections"]) == _comparable(b["detections"])
    print(f"same detections: {same} ({len(b['detections'])} detections)")
    for name, r in (("DefaultPredictor loop", a), ("tinyvoc batched predictor", b)):
        gpu = f", GPU peak {r['gpu_mib']:.0f} MiB" if r["gpu_mib"] is not None else ""
        print(f"{name:26s} {100 / r['seconds']:6.2f} images/s, peak RSS {r['rss_mib']:.0f} MiB{gpu}")
    print(f"throughput ratio (batched / DefaultPredictor): {a['seconds'] / b['seconds']:.2f}x")
    print("(the batched side's peak RSS includes exporting and validating all 100 images)")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
    else:
        main()
