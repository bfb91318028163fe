"""Predict once, cache every detection, and serve notebooks 03 and 04 from the cache.

The model runs on a split at a low score floor and every detection (class as the dataset's
category id, score, box, mask as compressed RLE) goes to ``output/predictions/``. The cache file
name is a hash of everything that changes the result (checkpoint file, config, TTA, score floor,
image list), so a new checkpoint or setting is never answered from a stale cache, and a new
export threshold costs no inference at all.

The file is two JSON lines: a header, then the list of detections. Every mask string is checked
by the submission check once, when the file is written, and the header holds the sha256 of the
detections line; a cache whose bytes still match was checked, so the export need not parse its
10,000 RLE strings again (``cached["checked_rles"]``). A damaged cache, or one of another format,
is predicted again rather than read.

Images are read in the channel order the config expects (``cfg.INPUT.FORMAT``, BGR for the model
zoo), by detectron2's own reader through ``image_reader`` (the dataset check's reader: an image whose
size differs from the json's or that EXIF would turn is refused, naming the file, rather than
predicted in another orientation than the RLE sizes), in a thread pool ahead of the model.
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

from .atomic import write_bytes
from .dataset import ClassMap, DatasetRecord, load_coco
from .errors import TinyVocError
from .image_reader import ImageToRead, read_image
from .paths import Outputs
from .rle import encode_mask
from .submission_check import rle_problems

CACHE_FORMAT = 2  # 1: one JSON document, no checksum
DEFAULT_SCORE_FLOOR = 0.01


@dataclass(frozen=True)
class ImageItem:
    image_id: int
    path: Path
    height: int
    width: int


def split_items(record: DatasetRecord, split: str) -> tuple[list[ImageItem], str | None]:
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
    return {it.image_id: it.path for it in split_items(record, split)[0]}


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
        from detectron2.data import transforms as T
        from detectron2.modeling import GeneralizedRCNNWithTTA, build_model

        from .training import load_checkpoint_state

        self.cfg = cfg.clone()
        state = load_checkpoint_state(checkpoint, cfg.MODEL.ROI_HEADS.NUM_CLASSES)
        model = build_model(self.cfg)
        try:
            model.load_state_dict(state)  # strict: every weight must fit this config
        except RuntimeError as exc:
            raise TinyVocError(f"{checkpoint} does not fit the training config (train/config.yaml): {exc}") from None
        model.eval()
        self.model = GeneralizedRCNNWithTTA(self.cfg, model) if tta else model
        self.aug = T.ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MIN_SIZE_TEST], cfg.INPUT.MAX_SIZE_TEST)

    def read(self, item: ImageItem) -> np.ndarray:
        """The dataset check's reader: the json's size and no EXIF turn, so RLE sizes match the pixels."""
        return read_image(ImageToRead(item.path, item.height, item.width), self.cfg.INPUT.FORMAT)

    def __call__(self, images: list[np.ndarray], sizes: list[tuple[int, int]]):
        import torch

        inputs = []
        for image, (height, width) in zip(images, sizes):
            resized = self.aug.get_transform(image).apply_image(image)
            tensor = torch.as_tensor(resized.astype("float32").transpose(2, 0, 1))
            inputs.append({"image": tensor, "height": height, "width": width})
        with torch.inference_mode():
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
    items, gt_json = split_items(record, split)
    key = cache_key(ckpt, cfg.dump(), items, tta, score_floor)
    cache_file = outputs.predictions_dir / f"{split}-{key}.jsonl"
    if cache_file.exists() and not refresh:
        cached = read_cache(cache_file)
        if cached is not None:
            cached["gt_json"] = gt_json  # this runtime's path to the same split file
            print(f"Using cached predictions {cache_file.name} ({len(cached['detections'])} detections)")
            return cached
        print(f"{cache_file.name} is damaged or of another format; predicting again")

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
    header = {
        "key": key,
        "split": split,
        "checkpoint": ckpt.name,
        "tta": tta,
        "score_floor": score_floor,
        "gt_json": gt_json,
        "image_ids": [it.image_id for it in items],
        "seconds": round(time.perf_counter() - started, 2),
    }
    for old in [*outputs.predictions_dir.glob(f"{split}-*.json"), *outputs.predictions_dir.glob(f"{split}-*.jsonl")]:
        old.unlink()
    header["gt_json"] = os.path.relpath(gt_json, outputs.root) if gt_json else None  # portable across runtimes
    cached = write_cache(cache_file, header, detections)
    cached["gt_json"] = gt_json
    return cached


def write_cache(path: Path, header: dict, detections: list[dict]) -> dict:
    """Check every mask string once, write header and detections atomically, return what a read returns."""
    bad = [p for p in rle_problems(*_rle_columns(detections)) if p]
    if bad:  # masks come from pycocotools' encoder, so this is a bug, not a user error
        raise TinyVocError(f"{len(bad)} of {len(detections)} encoded masks fail the submission check: {bad[0]}")
    body = json.dumps(detections).encode()
    checksum = hashlib.sha256(body).hexdigest()
    header = {"format": CACHE_FORMAT, **header, "num_detections": len(detections), "detections_sha256": checksum}
    write_bytes(path, json.dumps(header).encode() + b"\n" + body)
    return _cached(header, json.loads(body))


def read_cache(path: Path) -> dict | None:
    """The cached predictions, or None when the file is of another format or its detections changed."""
    head, _, body = Path(path).read_bytes().partition(b"\n")
    try:
        header = json.loads(head)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(header, dict) or header.get("format") != CACHE_FORMAT:
        return None
    if hashlib.sha256(body).hexdigest() != header.get("detections_sha256"):
        return None
    return _cached(header, json.loads(body))


def _rle_columns(detections: list[dict]) -> tuple[list[str], list[tuple[int, int]]]:
    segs = [d["segmentation"] for d in detections]
    return [s["counts"] for s in segs], [(s["size"][0], s["size"][1]) for s in segs]


def _cached(header: dict, detections: list[dict]) -> dict:
    """The dict notebooks use: the header's fields, the detections, and the mask strings known valid.

    ``checked_rles`` is built here from immutable strings, so editing ``detections`` afterwards cannot
    smuggle an unchecked mask past the export's check: a changed string is simply not in the set.
    """
    counts, sizes = _rle_columns(detections)
    checked = frozenset((h, w, c) for c, (h, w) in zip(counts, sizes))
    fields = {k: v for k, v in header.items() if k not in ("format", "num_detections", "detections_sha256")}
    return {**fields, "detections": detections, "checked_rles": checked}
