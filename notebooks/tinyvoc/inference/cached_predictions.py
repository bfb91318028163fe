"""Predict once, cache every detection, and serve notebooks 03 and 04 from the cache.

The model (``model_runner.py``) runs on a split at a low score floor and every detection goes to
``output/predictions/<run>/`` (``cache_file.py`` holds the file format): one folder per run, and in it
one cache per checkpoint and split (``test-model_best-<key>.jsonl``), so switching runs or checkpoints
(a fusion of a run's best and final) never predicts either again. The key is a hash of everything that
changes the result (checkpoint file, config, TTA, score floor, image list, and for your own data the
dataset's fingerprint: its classes), so a new checkpoint or setting is never answered from a stale
cache, and a new export threshold costs no inference at all. A new cache replaces only the stale ones
of its own checkpoint and split. Images are decoded in a thread pool ahead of the model.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..core.paths import safe_name_part
from .cache_file import CACHE_FORMAT, Predictions, reuse_cache, write_cache
from .trained_run import ImageItem, TrainedRun


def cache_key(
    checkpoint: Path, config_text: str, items, tta: bool, score_floor: float, dataset: str | None = None
) -> str:
    """The hash naming a cache: what changes the detections. ``dataset``: your own data's fingerprint (its classes
    can change under the same images); None for the course's fixed classes, whose caches keep their keys."""
    stat = Path(checkpoint).stat()
    payload = {
        "format": CACHE_FORMAT,
        "checkpoint": [Path(checkpoint).name, stat.st_size, stat.st_mtime_ns],  # no runtime path: portable
        "config": config_text,
        "tta": bool(tta),
        "score_floor": float(score_floor),
        "images": [[it.image_id, it.path.name, it.height, it.width] for it in items],
        **({"dataset": dataset} if dataset else {}),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class CacheSlot:
    """Where one run's predictions of one split at one checkpoint are cached, and what they are made with."""

    path: Path
    key: str
    tta: bool
    score_floor: float
    cfg: object = field(repr=False)

    @property
    def older_name(self) -> Path:
        """The same cache as a version before per-checkpoint caches named it (``test-<key>.jsonl``)."""
        split = self.path.name.split("-", 1)[0]
        return self.path.with_name(f"{split}-{self.key}.jsonl")


def cache_slot(run: TrainedRun, split: str, tta: bool | None = None, score_floor: float | None = None) -> CacheSlot:
    """The cache of ``run``'s ``split`` at its checkpoint; reads the split's json and nothing else (no model)."""
    score_floor = run.score_floor if score_floor is None else float(score_floor)
    cfg = run.inference_config(score_floor)
    tta = run.tta if tta is None else bool(tta)
    dataset = None if run.record.is_course else run.record.fingerprint
    key = cache_key(run.checkpoint, cfg.dump(), run.split(split).items, tta, score_floor, dataset)
    return CacheSlot(run.predictions_dir / f"{split}-{_checkpoint_part(run.checkpoint)}-{key}.jsonl", key, tta,
                     score_floor, cfg)  # fmt: skip


def _checkpoint_part(checkpoint: Path) -> str:
    return safe_name_part(Path(checkpoint).stem).replace("-", "_")  # "-" separates split, checkpoint and key


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
    slot = cache_slot(run, split, tta, score_floor)
    images = run.split(split)
    if not slot.path.exists() and slot.older_name.exists() and not refresh:
        os.replace(slot.older_name, slot.path)  # a cache named before per-checkpoint names: the same key, kept
    cached = reuse_cache(slot.path, images, refresh, "predictions")
    if cached is not None:
        return cached
    started = time.perf_counter()
    detections = _run_model(run, slot.cfg, images.items, split, slot.tta, batch_size)
    for old in _stale(run, split):
        old.unlink(missing_ok=True)
    made = Predictions(
        split=split,
        detections=detections,
        score_floor=slot.score_floor,
        image_ids=[it.image_id for it in images.items],
        key=slot.key,
        checkpoint=run.checkpoint.name,
        tta=slot.tta,
        seconds=round(time.perf_counter() - started, 2),
        # relative to the output folder: portable across runtimes
        gt_json=os.path.relpath(images.json_path, run.outputs.root) if images.has_ground_truth else None,
        images=images,
    )
    return write_cache(slot.path, made)


def _stale(run: TrainedRun, split: str) -> list[Path]:
    """This checkpoint's other caches of ``split`` (replaced by a new one); other checkpoints' stay. A cache named
    before per-checkpoint names (``test-<key>.jsonl``) is this checkpoint's when its header says so."""
    mine = list(run.predictions_dir.glob(f"{split}-{_checkpoint_part(run.checkpoint)}-*.jsonl"))
    older = [p for p in run.predictions_dir.glob(f"{split}-*.json*") if _OLDER_NAME.fullmatch(p.name)]
    return mine + [p for p in older if _header(p).get("checkpoint") == run.checkpoint.name]


_OLDER_NAME = re.compile(r"[a-z]+-[0-9a-f]{16}\.jsonl?")


def _header(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            header = json.loads(fh.readline())
    except (OSError, ValueError):
        return {}
    return header if isinstance(header, dict) else {}


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
