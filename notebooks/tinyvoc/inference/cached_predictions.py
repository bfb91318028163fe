"""Predict once, cache every detection, and serve notebooks 03 and 04 from the cache.

The model (``model_runner.py``) runs on a split at a low score floor and every detection goes to
``output/predictions/<run>/`` (``cache_file.py`` holds the file format): one folder per run, so
switching runs never predicts a run again. The cache file name is a hash of
everything that changes the result (checkpoint file, config, TTA, score floor, image list), so a new
checkpoint or setting is never answered from a stale cache, and a new export threshold costs no
inference at all. Images are decoded in a thread pool ahead of the model.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .cache_file import CACHE_FORMAT, Predictions, reuse_cache, write_cache
from .trained_run import ImageItem, TrainedRun


def cache_key(checkpoint: Path, config_text: str, items, tta: bool, score_floor: float) -> str:
    stat = Path(checkpoint).stat()
    payload = {
        "format": CACHE_FORMAT,
        "checkpoint": [Path(checkpoint).name, stat.st_size, stat.st_mtime_ns],  # no runtime path: portable
        "config": config_text,
        "tta": bool(tta),
        "score_floor": float(score_floor),
        "images": [[it.image_id, it.path.name, it.height, it.width] for it in items],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def predict_split(
    run: TrainedRun,
    split: str = "test",
    tta: bool | None = None,
    batch_size: int | None = None,
    refresh: bool = False,
    score_floor: float | None = None,
) -> Predictions:
    """The cached detections for ``split``, running the model only if the cache is missing or stale.

    Detections are kept down to the run's score floor (``run.score_floor``), whatever threshold the
    notebook exports or draws at, so every threshold from the floor up is served by one cache.
    ``score_floor`` overrides it for benchmarks and tests that want every detection (0).
    """
    score_floor = run.score_floor if score_floor is None else float(score_floor)
    cfg = run.inference_config(score_floor)
    tta = run.tta if tta is None else bool(tta)
    images = run.split(split)
    key = cache_key(run.checkpoint, cfg.dump(), images.items, tta, score_floor)
    predictions_dir = run.predictions_dir
    cache_file = predictions_dir / f"{split}-{key}.jsonl"
    cached = reuse_cache(cache_file, images, refresh, "predictions")
    if cached is not None:
        return cached
    started = time.perf_counter()
    detections = _run_model(run, cfg, images.items, split, tta, batch_size)
    for old in [*predictions_dir.glob(f"{split}-*.json"), *predictions_dir.glob(f"{split}-*.jsonl")]:
        old.unlink()
    made = Predictions(
        split=split,
        detections=detections,
        score_floor=score_floor,
        image_ids=[it.image_id for it in images.items],
        key=key,
        checkpoint=run.checkpoint.name,
        tta=tta,
        seconds=round(time.perf_counter() - started, 2),
        # relative to the output folder: portable across runtimes
        gt_json=os.path.relpath(images.json_path, run.outputs.root) if images.has_ground_truth else None,
        images=images,
    )
    return write_cache(cache_file, made)


def _run_model(run: TrainedRun, cfg, items: tuple[ImageItem, ...], split: str, tta: bool, batch_size) -> list[dict]:
    """Every detection of the model on ``items``, decoding the next batches while the model runs."""
    from .model_runner import BatchPredictor, instances_to_detections

    predictor = BatchPredictor(cfg, run.checkpoint, tta=tta)
    batch_size = batch_size or (4 if cfg.MODEL.DEVICE.startswith("cuda") and not tta else 1)
    detections: list[dict] = []
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        # at most two batches held in memory ahead of the model
        ahead = [pool.submit(predictor.read, item) for item in items[: 2 * batch_size]]
        for start in range(0, len(items), batch_size):
            batch = items[start : start + batch_size]
            arrays = [ahead.pop(0).result() for _ in batch]
            queued = start + len(batch) + len(ahead)
            ahead += [pool.submit(predictor.read, item) for item in items[queued : start + 3 * batch_size]]
            outs = predictor(arrays, [(it.height, it.width) for it in batch])
            for item, instances in zip(batch, outs):
                detections += instances_to_detections(instances, item.image_id, run.record.class_map)
            done = start + len(batch)
            if done == len(items) or done % max(1, len(items) // 5) < len(batch):
                print(f"  predicted {done}/{len(items)} {split} images ({time.perf_counter() - started:.0f} s)")
    return detections
