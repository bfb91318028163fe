"""The model on lists of images: ``DefaultPredictor``'s preprocessing, batched, with the dataset check's reader.

Besides each detection's mask (pasted, cut at 0.5, as RLE), the mask head's own probabilities (28 x 28,
kept as 8-bit) go to the cache for soft-mask fusion (``fusion.py``); not with TTA, whose passes merge.

Images are read in the channel order the config expects (``cfg.INPUT.FORMAT``, BGR for the model
zoo), by detectron2's own reader through ``core.image_reader`` (the dataset check's reader: an image
whose size differs from the json's or that EXIF would turn is refused, naming the file, rather than
predicted in another orientation than the RLE sizes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.errors import TinyVocError
from ..core.image_reader import ImageToRead, read_image
from ..core.rle import encode_mask
from ..dataset.record import ClassMap
from .cache_file import encode_mask_probs
from .trained_run import ImageItem, load_checkpoint_state


class BatchPredictor:
    """Runs a detectron2 model on lists of images; same preprocessing as ``DefaultPredictor``."""

    def __init__(self, cfg, checkpoint: str | Path, tta: bool = False):
        from detectron2.data import transforms as T
        from detectron2.modeling import GeneralizedRCNNWithTTA, build_model

        self.cfg = cfg.clone()
        state = load_checkpoint_state(checkpoint, cfg.MODEL.ROI_HEADS.NUM_CLASSES)
        model = build_model(self.cfg)
        try:
            model.load_state_dict(state)  # strict: every weight must fit this config
        except RuntimeError as exc:
            raise TinyVocError(f"{checkpoint} does not fit the training config (train/config.yaml): {exc}") from None
        model.eval()
        self.tta = tta
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
            if self.tta:  # TTA merges its passes' pasted masks: no one mask head output to keep
                return [out["instances"].to("cpu") for out in self.model(inputs)]
            return [_with_mask_probs(raw, height, width) for raw, (height, width) in
                    zip(self.model.inference(inputs, do_postprocess=False), sizes)]  # fmt: skip


def _with_mask_probs(raw, height: int, width: int):
    """detectron2's postprocessing (``GeneralizedRCNN._postprocess``: boxes to the image's size, masks pasted and
    cut at 0.5), keeping the mask head's own probabilities (N x 28 x 28) as ``mask_probs`` for soft-mask fusion."""
    from detectron2.modeling.postprocessing import detector_postprocess

    if raw.has("pred_masks"):
        raw.mask_probs = raw.pred_masks[:, 0].clone()
    return detector_postprocess(raw, height, width).to("cpu")


def instances_to_detections(instances, image_id: int, class_map: ClassMap) -> list[dict]:
    """detectron2 Instances -> cache rows with dataset category ids and RLE masks."""
    boxes = instances.pred_boxes.tensor.numpy().tolist()
    scores = instances.scores.numpy().tolist()
    classes = instances.pred_classes.numpy().tolist()
    masks = instances.pred_masks.numpy()
    probs = instances.mask_probs.numpy() if instances.has("mask_probs") else None
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
                **({"mask_probs": encode_mask_probs(probs[k])} if probs is not None else {}),
            }
        )
    return rows
