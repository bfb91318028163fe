"""Shared setup for the benchmarks: the real Tiny VOC files, and a model on the real test images.

The benchmarks import the installed package (``make setup`` installs it editable); run them with the
venv's python from the repository root, e.g. ``.venv/bin/python benchmarks/bench_rle.py``.
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
from pathlib import Path

from tinyvoc.core.paths import DataFiles

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "tinyvoc"


def real_files() -> DataFiles:
    """The course's 100 test images and 10 annotated training images (../shared/tinyvoc)."""
    if not (SHARED / "test.json").exists():
        sys.exit(f"benchmark needs the real Tiny VOC files at {SHARED}")
    return DataFiles(
        SHARED / "pascal_train_first10.json", SHARED / "train_images", SHARED / "test.json", SHARED / "test_images"
    )


def smoke_model_outputs(workdir: Path, iterations: int = 2):
    """An output folder with the real files registered and a smoke model trained for a few iterations.

    Its weights are nearly random, so it emits many low-score detections: a realistic load for
    prediction, mask encoding and export, which is what these benchmarks time.
    """
    from tinyvoc.core.paths import Outputs
    from tinyvoc.dataset.record import prepare_dataset
    from tinyvoc.training.train import train

    outputs = Outputs.at(workdir)
    prepare_dataset(real_files(), outputs, "tinyvoc", val_fraction=0.2, seed=0)
    train(outputs, "smoke", max_iter=iterations, overrides=["TEST.EVAL_PERIOD", 0])
    return outputs


def median_seconds(fn, repeats: int = 5) -> float:
    """The median wall time of ``repeats`` calls of ``fn``: one slow call (a page fault, a neighbour's burst) moves
    it little."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _resize_matrix(size: int, cells: int):
    """``size`` x ``cells`` weights of linear interpolation from ``cells`` samples to ``size`` pixels."""
    import numpy as np

    position = np.clip((np.arange(size) + 0.5) * cells / size - 0.5, 0, cells - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, cells - 1)
    weights = np.zeros((size, cells))
    weights[np.arange(size), low] += 1 - (position - low)
    weights[np.arange(size), high] += position - low
    return weights


def mask_head_like(rng, height: int, width: int, box: tuple[float, float, float, float]):
    """An HxW mask shaped the way Mask R-CNN makes one: a 28x28 blob resized into its box and thresholded.

    The blob is an ellipse with smooth random dents, resized bilinearly, so masks differ in shape,
    size and place, and their RLE strings are as long as a real model's smooth masks.
    """
    import numpy as np

    x0, y0, x1, y1 = box
    grid = np.linspace(-1, 1, 28)
    smooth = _resize_matrix(28, 5)
    dents = smooth @ rng.normal(size=(5, 5)) @ smooth.T
    logits = 1.0 - (grid[:, None] ** 2 + grid[None, :] ** 2) * rng.uniform(0.8, 1.6) + 0.6 * dents
    left, top = min(max(0, int(x0)), width - 1), min(max(0, int(y0)), height - 1)
    box_w, box_h = max(1, min(int(round(x1 - x0)), width - left)), max(1, min(int(round(y1 - y0)), height - top))
    inside = _resize_matrix(box_h, 28) @ logits @ _resize_matrix(box_w, 28).T > 0
    mask = np.zeros((height, width), np.uint8)
    mask[top : top + box_h, left : left + box_w] = inside
    return mask


def random_box(rng, height: int, width: int) -> tuple[float, float, float, float]:
    box_w, box_h = rng.uniform(0.05, 0.9) * width, rng.uniform(0.05, 0.9) * height
    x0, y0 = rng.uniform(0, width - box_w), rng.uniform(0, height - box_h)
    return x0, y0, x0 + box_w, y0 + box_h


def detection(rng, image: dict, category_id: int, score: float, box) -> dict:
    from tinyvoc.core.rle import encode_mask

    x0, y0, x1, y1 = box
    return {
        "image_id": image["id"],
        "category_id": category_id,
        "score": score,
        "bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
        "segmentation": encode_mask(mask_head_like(rng, image["height"], image["width"], box)),
    }


def strong_model_detections(images: list[dict], category_ids: list[int], per_image: int = 100, seed: int = 0):
    """What a strong model exports at a low threshold: ``per_image`` detections on every image.

    Scores are spread from 0.01 to 1 with most of them low, as after a 0.005-0.01 score floor.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    rows = []
    for image in images:
        for _ in range(per_image):
            score = float(np.clip(rng.beta(0.4, 2.0), 0.01, 1.0))
            box = random_box(rng, image["height"], image["width"])
            rows.append(detection(rng, image, int(rng.choice(category_ids)), score, box))
    return rows


def validation_split(test: dict, num_images: int = 135, per_image: int = 100, seed: int = 1):
    """A validation json (``num_images`` images with the test images' sizes, 1-6 objects each) and
    ``per_image`` detections per image: a close copy of each object scored high, shifted duplicates
    and other-class guesses scored lower, and false positives filling up to ``per_image``."""
    import numpy as np

    from tinyvoc.core.rle import encode_mask

    rng = np.random.default_rng(seed)
    category_ids = [c["id"] for c in test["categories"]]
    images, annotations, detections = [], [], []
    for k in range(num_images):
        size = test["images"][k % len(test["images"])]
        image = {"id": 10_000 + k, "file_name": f"val_{k}.jpg", "height": size["height"], "width": size["width"]}
        images.append(image)
        found = []
        for _ in range(int(rng.integers(1, 7))):
            category, box = int(rng.choice(category_ids)), random_box(rng, image["height"], image["width"])
            gt = encode_mask(mask_head_like(rng, image["height"], image["width"], box))
            x0, y0, x1, y1 = box
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image["id"],
                    "category_id": category,
                    "segmentation": gt,
                    "area": float(x1 - x0) * float(y1 - y0),
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "iscrowd": 0,
                }
            )
            jitter = rng.normal(scale=0.03, size=4) * [x1 - x0, y1 - y0, x1 - x0, y1 - y0]
            found.append(detection(rng, image, category, float(rng.uniform(0.3, 1.0)), box + jitter))
            shifted = box + rng.normal(scale=0.2, size=4) * [x1 - x0, y1 - y0, x1 - x0, y1 - y0]
            shifted = np.clip(shifted, 0, [image["width"] - 1, image["height"] - 1] * 2)
            if shifted[2] - shifted[0] >= 2 and shifted[3] - shifted[1] >= 2:
                found.append(detection(rng, image, category, float(rng.uniform(0.01, 0.5)), shifted))
        while len(found) < per_image:
            score = float(np.clip(rng.beta(0.3, 3.0), 0.01, 1.0))
            found.append(
                detection(
                    rng, image, int(rng.choice(category_ids)), score, random_box(rng, image["height"], image["width"])
                )
            )
        detections += found
    gt_json = {"images": images, "annotations": annotations, "categories": test["categories"]}
    return gt_json, detections
