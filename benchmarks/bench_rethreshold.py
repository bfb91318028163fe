"""A new score threshold from the prediction cache vs re-running inference with the same model.

On the 100 real test images: fresh inference + export (what the usual notebook does for every new
threshold) against export from the cache (what notebook 04 does), same threshold, same instances.

    .venv/bin/python benchmarks/bench_rethreshold.py
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from _common import smoke_model_outputs
from tinyvoc import export, predict
from tinyvoc.dataset import DatasetRecord

THRESHOLD = 0.05
FLOOR = 0.0  # the nearly random model scores low: keep everything so masks are really encoded and exported


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        outputs = smoke_model_outputs(Path(tmp))
        test_json = DatasetRecord.load(outputs).data_files.test_json
        predict.predict_split(
            outputs, "test", "final", score_floor=FLOOR
        )  # warm-up: model load paths, caches of the OS

        start = time.perf_counter()
        fresh = predict.predict_split(outputs, "test", "final", score_floor=FLOOR, refresh=True)
        export.export_submission(fresh, test_json, outputs.root / "fresh.json", THRESHOLD)
        detections = len(fresh["detections"])
        infer = time.perf_counter() - start

        runs = []
        for _ in range(5):
            start = time.perf_counter()
            cached = predict.predict_split(outputs, "test", "final", score_floor=FLOOR)
            export.export_submission(cached, test_json, outputs.root / "cached.json", THRESHOLD)
            runs.append(time.perf_counter() - start)
        from_cache = min(runs)
        same = json.loads((outputs.root / "fresh.json").read_text()) == json.loads(
            (outputs.root / "cached.json").read_text()
        )
        n = len(json.loads((outputs.root / "cached.json").read_text()))
    print(f"100 test images: {detections} cached detections; threshold {THRESHOLD}: {n} instances")
    print(f"identical files: {same}")
    print(f"re-run inference + export: {infer:8.2f} s")
    print(f"export from the cache:     {from_cache:8.3f} s (includes loading the cache and validating)")
    print(f"ratio: {infer / from_cache:.0f}x")


if __name__ == "__main__":
    main()
