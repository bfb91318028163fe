"""pycocotools RLE encoding vs the pure-Python itertools.groupby encoder that circulates with this homework.

Masks have the real test images' sizes (from ../shared/tinyvoc/test.json) and object-like content
(filled ellipses). Both encoders are checked to describe the same masks, then timed side by side.

    .venv/bin/python benchmarks/bench_rle.py
"""

from __future__ import annotations

import json
import time
from itertools import groupby

import numpy as np
from _common import real_files
from pycocotools import mask as mask_util

from tinyvoc.core.rle import encode_mask


def groupby_rle(binary_mask: np.ndarray) -> dict:
    """The circulating encoder: uncompressed RLE in pure Python."""
    rle = {"counts": [], "size": list(binary_mask.shape)}
    counts = rle.get("counts")
    for i, (value, elements) in enumerate(groupby(binary_mask.ravel(order="F"))):
        if i == 0 and value == 1:
            counts.append(0)
        counts.append(len(list(elements)))
    return rle


def object_masks(sizes: list[tuple[int, int]], per_image: int = 5, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    masks = []
    for h, w in sizes:
        yy, xx = np.mgrid[:h, :w]
        for _ in range(per_image):
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
            ry, rx = rng.uniform(10, h / 2), rng.uniform(10, w / 2)
            masks.append((((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1).astype(np.uint8))
    return masks


def best_of(fn, masks, repeats=3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for m in masks:
            fn(m)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    test = json.loads(real_files().test_json.read_text())
    sizes = [(im["height"], im["width"]) for im in test["images"]]
    masks = object_masks(sizes)
    for m in masks[:50]:  # same masks described by both
        slow = groupby_rle(m)
        compressed = mask_util.frPyObjects(slow, *slow["size"])
        assert np.array_equal(mask_util.decode(compressed), m)
        assert np.array_equal(
            mask_util.decode({"size": encode_mask(m)["size"], "counts": encode_mask(m)["counts"].encode()}), m
        )
    fast = best_of(encode_mask, masks)
    slow = best_of(groupby_rle, masks, repeats=1)
    print(f"{len(masks)} masks of the 100 test images' sizes ({len(sizes)} sizes, 5 objects each)")
    print(f"pycocotools encode (core.rle):    {fast * 1e3:8.1f} ms total, {fast / len(masks) * 1e6:7.1f} us/mask")
    print(f"itertools.groupby encoder:        {slow * 1e3:8.1f} ms total, {slow / len(masks) * 1e6:7.1f} us/mask")
    print(f"ratio (groupby / pycocotools): {slow / fast:.0f}x")


if __name__ == "__main__":
    main()
