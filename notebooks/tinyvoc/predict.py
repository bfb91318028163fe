"""Predict once, cache every detection, and serve notebooks 03 and 04 from the cache.

The model runs on a split at a low score floor and every detection (class as the dataset's
category id, score, box, mask as compressed RLE) goes to ``output/predictions/``. The cache file
name is a hash of everything that changes the result (checkpoint file, config, TTA, score floor,
image list), so a new checkpoint or setting is never answered from a stale cache, and a new
export threshold costs no inference at all.

Images are read in the channel order the config expects (``cfg.INPUT.FORMAT``, BGR for the model
zoo), by detectron2's own reader, in a thread pool ahead of the model.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atomic import write_json
from .dataset import ClassMap, DatasetRecord, load_coco
from .errors import TinyVocError
from .paths import Outputs
from .rle import encode_mask

CACHE_FORMAT = 1
DEFAULT_SCORE_FLOOR = 0.01


@dataclass(frozen=True)
class ImageItem:
    image_id: int
    path: Path
    height: int
    width: int


def split_images(record: DatasetRecord, split: str) -> tuple[list[ImageItem], str | None]:
    """The images of ``split`` ("test" or "val") and the ground-truth json for it (None for test)."""
    files = record.data_files
    if split == "test":
        coco, folder, gt = load_coco(files.test_json), files.test_images, None
    elif split == "val":
        if not record.val_split:
            raise TinyVocError("There is no validation split (VAL_FRACTION was 0 in 01_register_dataset.ipynb).")
        coco, folder, gt = load_coco(record.val_split), files.train_images, record.val_split
    else:
        raise TinyVocError(f"unknown split {split!r}; use 'test' or 'val'")
    items = [
        ImageItem(int(i["id"]), folder / i["file_name"], int(i["height"]), int(i["width"])) for i in coco["images"]
    ]
    missing = [str(it.path) for it in items if not it.path.exists()]
    if missing:
        raise TinyVocError(f"{len(missing)} image(s) listed in the {split} json are missing, e.g. {missing[0]}")
    return items, gt


def image_paths(record: DatasetRecord, split: str) -> dict[int, Path]:
    """Image id -> file, for drawing."""
    return {it.image_id: it.path for it in split_images(record, split)[0]}


def cache_key(checkpoint: Path, config_text: str, items: list[ImageItem], tta: bool, score_floor: float) -> str:
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


class BatchPredictor:
    """Runs a detectron2 model on lists of images; same preprocessing as ``DefaultPredictor``."""

    def __init__(self, cfg, checkpoint: str | Path, tta: bool = False):
        import torch
        from detectron2.data import transforms as T
        from detectron2.modeling import GeneralizedRCNNWithTTA, build_model

        from .training import load_checkpoint_state

        self.cfg = cfg.clone()
        state = load_checkpoint_state(checkpoint, cfg.MODEL.ROI_HEADS.NUM_CLASSES)
        model = build_model(self.cfg)
        try:
            model.load_state_dict(state)  # strict: every weight must fit this config
        except RuntimeError as exc:
            raise TinyVocError(f"{checkpoint} does not fit the config in {cfg.OUTPUT_DIR}: {exc}") from None
        model.eval()
        self.model = GeneralizedRCNNWithTTA(self.cfg, model) if tta else model
        self.aug = T.ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MIN_SIZE_TEST], cfg.INPUT.MAX_SIZE_TEST)
        self.torch = torch

    def read(self, item: ImageItem) -> np.ndarray:
        from detectron2.data import detection_utils

        return detection_utils.read_image(str(item.path), format=self.cfg.INPUT.FORMAT)

    def __call__(self, images: list[np.ndarray], sizes: list[tuple[int, int]]):
        inputs = []
        for image, (height, width) in zip(images, sizes):
            resized = self.aug.get_transform(image).apply_image(image)
            tensor = self.torch.as_tensor(resized.astype("float32").transpose(2, 0, 1))
            inputs.append({"image": tensor, "height": height, "width": width})
        with self.torch.inference_mode():
            return [out["instances"].to("cpu") for out in self.model(inputs)]


def instances_to_detections(instances, image_id: int, class_map: ClassMap) -> list[dict]:
    """detectron2 Instances -> cache rows with dataset category ids and RLE masks."""
    boxes = instances.pred_boxes.tensor.numpy().tolist()
    scores = instances.scores.numpy().tolist()
    classes = instances.pred_classes.numpy().tolist()
    masks = instances.pred_masks.numpy()
    rows = []
    for k in range(len(instances)):
        x0, y0, x1, y1 = boxes[k]
        rows.append(
            {
                "image_id": image_id,
                "category_id": class_map.to_dataset_id(int(classes[k])),
                "score": float(scores[k]),
                "bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
                "segmentation": encode_mask(masks[k]),
            }
        )
    return rows


def predict_split(
    outputs: Outputs,
    split: str = "test",
    checkpoint: str = "best",
    tta: bool | None = None,
    score_floor: float = DEFAULT_SCORE_FLOOR,
    batch_size: int | None = None,
    refresh: bool = False,
) -> dict:
    """Return the cached detections for ``split``, running the model only if the cache is missing or stale."""
    from .training import chosen_checkpoint, load_trained_config

    cfg = load_trained_config(outputs)
    record = DatasetRecord.load(outputs)
    ckpt = chosen_checkpoint(outputs, checkpoint)
    tta = bool(cfg.TEST.AUG.ENABLED) if tta is None else bool(tta)
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = float(score_floor)
    items, gt_json = split_images(record, split)
    key = cache_key(ckpt, cfg.dump(), items, tta, score_floor)
    cache_file = outputs.predictions_dir / f"{split}-{key}.json"
    if cache_file.exists() and not refresh:
        cached = json.loads(cache_file.read_text())
        cached["gt_json"] = gt_json  # this runtime's path to the same split file
        print(f"Using cached predictions {cache_file.name} ({len(cached['detections'])} detections)")
        return cached

    predictor = BatchPredictor(cfg, ckpt, tta=tta)
    batch_size = batch_size or (4 if cfg.MODEL.DEVICE.startswith("cuda") and not tta else 1)
    detections: list[dict] = []
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        # decode the next batches while the model runs on this one; at most two batches held in memory
        ahead = [pool.submit(predictor.read, item) for item in items[: 2 * batch_size]]
        for start in range(0, len(items), batch_size):
            batch = items[start : start + batch_size]
            arrays = [ahead.pop(0).result() for _ in batch]
            queued = start + len(batch) + len(ahead)
            ahead += [pool.submit(predictor.read, item) for item in items[queued : start + 3 * batch_size]]
            outs = predictor(arrays, [(it.height, it.width) for it in batch])
            for item, instances in zip(batch, outs):
                detections += instances_to_detections(instances, item.image_id, record.class_map)
            done = start + len(batch)
            if done == len(items) or done % max(1, len(items) // 5) < len(batch):
                print(f"  predicted {done}/{len(items)} {split} images ({time.perf_counter() - started:.0f} s)")
    cached = {
        "key": key,
        "split": split,
        "checkpoint": ckpt.name,
        "tta": tta,
        "score_floor": score_floor,
        "gt_json": gt_json,
        "image_ids": [it.image_id for it in items],
        "seconds": round(time.perf_counter() - started, 2),
        "detections": detections,
    }
    for old in outputs.predictions_dir.glob(f"{split}-*.json"):
        old.unlink()
    write_json(cache_file, {**cached, "gt_json": os.path.relpath(gt_json, outputs.root) if gt_json else None})
    return cached
