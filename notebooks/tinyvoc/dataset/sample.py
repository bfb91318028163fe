"""A small synthetic dataset in exactly the Tiny VOC layout, so the whole pipeline runs on a CPU.

It has the real data's quirks on purpose: category ids that are not 0-based (and here not even
contiguous), image ids that are positions in a sorted list of all file names (so train and test
ids interleave), polygon annotations, odd image sizes, and a test json without annotations.
Shapes differ by outline while colours are random, so a model must learn shape to score, and a
short CPU training run visibly does. Generation is seeded and writes the same files every time.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

from ..core.atomic import write_json
from ..core.paths import DataFiles

# deliberately sparse ids: a "+ 1" class mapping bug produces wrong ids on this data
CATEGORIES = [{"id": 2, "name": "circle"}, {"id": 5, "name": "square"}, {"id": 9, "name": "triangle"}]
NUM_TRAIN = 150
NUM_TEST = 24
SEED = 20261125


def _shape_polygon(kind: str, cx: float, cy: float, r: float, rng: random.Random) -> list[float]:
    if kind == "circle":
        pts = [(cx + r * math.cos(2 * math.pi * k / 24), cy + r * math.sin(2 * math.pi * k / 24)) for k in range(24)]
    elif kind == "square":
        pts = [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    else:
        turn = rng.uniform(0, 2 * math.pi)
        pts = [
            (cx + r * math.cos(turn + 2 * math.pi * k / 3), cy + r * math.sin(turn + 2 * math.pi * k / 3))
            for k in range(3)
        ]
    return [round(v, 1) for p in pts for v in p]


def _bbox(poly: list[float]) -> list[float]:
    xs, ys = poly[0::2], poly[1::2]
    return [round(min(xs), 1), round(min(ys), 1), round(max(xs) - min(xs), 1), round(max(ys) - min(ys), 1)]


def _polygon_area(poly: list[float]) -> float:
    xs, ys = poly[0::2], poly[1::2]
    return abs(sum(xs[i] * ys[i - 1] - xs[i - 1] * ys[i] for i in range(len(xs)))) / 2


def _draw_image(rng: random.Random, width: int, height: int):
    background = tuple(rng.randint(0, 90) for _ in range(3))
    img = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(img)
    for _ in range(12):  # clutter: thin lines the model must learn to ignore
        x0, y0 = rng.randint(0, width), rng.randint(0, height)
        draw.line(
            [x0, y0, x0 + rng.randint(-40, 40), y0 + rng.randint(-40, 40)],
            fill=tuple(rng.randint(0, 255) for _ in range(3)),
        )
    objects, placed = [], []
    for _ in range(rng.randint(1, 3)):
        for _attempt in range(20):
            r = rng.uniform(11, 26)
            cx, cy = rng.uniform(r + 2, width - r - 2), rng.uniform(r + 2, height - r - 2)
            if all(math.hypot(cx - px, cy - py) > r + pr + 4 for px, py, pr in placed):
                break
        else:
            continue
        placed.append((cx, cy, r))
        category = rng.choice(CATEGORIES)
        poly = _shape_polygon(category["name"], cx, cy, r, rng)
        colour = tuple(rng.randint(110, 255) for _ in range(3))
        draw.polygon(poly, fill=colour)
        objects.append((category["id"], poly))
    return img.filter(ImageFilter.GaussianBlur(0.6)), objects


def make_sample_dataset(
    root: str | Path, num_train: int = NUM_TRAIN, num_test: int = NUM_TEST, seed: int = SEED
) -> Path:
    """Write ``pascal_train.json``, ``test.json``, ``train_images/`` and ``test_images/`` under ``root``.

    Skips the work when the same files already exist (same seed and sizes), so notebooks can call
    it on every run. Returns ``root``.
    """
    root = Path(root)
    stamp = root / ".sample-version"
    version = f"{seed}-{num_train}-{num_test}-v1"
    files = DataFiles.in_folder(root)
    if stamp.exists() and stamp.read_text() == version and files.test_json.exists():
        return root
    rng = random.Random(seed)
    names = [f"shape_{k:05d}.jpg" for k in range(num_train + num_test)]
    test_names = set(rng.sample(names, num_test))
    split = {"train": {"images": [], "annotations": []}, "test": {"images": [], "annotations": []}}
    ann_id = 1
    for image_id, name in enumerate(sorted(names), start=1):
        part = "test" if name in test_names else "train"
        width, height = rng.choice([128, 136, 144, 160]), rng.choice([112, 120, 128, 131])
        img, objects = _draw_image(rng, width, height)
        folder = files.train_images if part == "train" else files.test_images
        folder.mkdir(parents=True, exist_ok=True)
        img.save(folder / name, quality=92)
        split[part]["images"].append({"id": image_id, "file_name": name, "height": height, "width": width})
        if part == "train":
            for category_id, poly in objects:
                split[part]["annotations"].append(
                    {
                        "id": ann_id,
                        "image_id": image_id,
                        "category_id": category_id,
                        "segmentation": [poly],
                        "bbox": _bbox(poly),
                        "area": round(_polygon_area(poly), 1),
                        "iscrowd": 0,
                    }
                )
                ann_id += 1
    write_json(files.train_json, {**split["train"], "categories": CATEGORIES})
    write_json(files.test_json, {"images": split["test"]["images"], "categories": CATEGORIES})
    stamp.write_text(version)
    return root
