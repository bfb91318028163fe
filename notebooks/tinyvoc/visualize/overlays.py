"""Overlays: each image with its kept detections drawn, as JPEG files beside the masks (``output/overlays/``).

They look as the threshold view and the saved figures do (the :class:`~.render.Renderer`'s colours, labels,
boxes, the best instance on top), but are drawn from the image's instance-id map (``mask_files.instance_ids``),
which the mask files need anyway: the Renderer decodes and crops every mask again for its small tiles, which at
full size and 100 instances an image costs a fifth of a second, against a few milliseconds for one blend here.
A label is its class's and its score's, rendered apart and set side by side: 20 classes and 101 percentages are
121 renderings, where whole labels ("cat 43%") were 1,500 at 10,000 instances (rendering text is the slow part).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..core.atomic import write_bytes
from ..dataset.record import ClassMap
from .render import Renderer, jpeg

OVERLAY_SIDE = 1280  # larger images are shrunk to this longest side: a phone photo's overlay stays a few 100 kB


class OverlayWriter:
    """Writes one overlay per call; nothing of an image is kept after it, so a folder of thousands streams."""

    def __init__(self, class_map: ClassMap, max_side: int = OVERLAY_SIDE):
        self.renderer = Renderer(class_map, max_side=max_side)  # its colours and its cache of rendered labels
        self.max_side = max_side

    def write(self, image_path: Path, rows: Sequence[dict], target: Path, ids: np.ndarray | None = None) -> Path:
        """Draw ``rows`` (best first, each with ``bbox``) on ``image_path`` and save it to ``target`` (JPEG).
        ``ids``: the image's instance-id map (1 = ``rows[0]``); without it the Renderer draws the masks."""
        if ids is None:
            try:
                return write_bytes(Path(target), jpeg(self.renderer.draw(Path(image_path), list(rows))))
            finally:
                self.renderer.forget_images()
        return write_bytes(Path(target), jpeg(self.draw_ids(Path(image_path), rows, ids)), sync=False)  # see atomic

    def draw_ids(self, image_path: Path, rows: Sequence[dict], ids: np.ndarray):
        from PIL import Image, ImageDraw

        with Image.open(image_path) as opened:
            picture = opened.convert("RGB")
        scale = min(1.0, self.max_side / max(picture.size))
        if scale < 1:
            size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
            picture = picture.resize(size, Image.BILINEAR)
            ys = (np.arange(size[1]) / scale).astype(int).clip(0, ids.shape[0] - 1)
            xs = (np.arange(size[0]) / scale).astype(int).clip(0, ids.shape[1] - 1)
            ids = ids[ys][:, xs]
        pixels = np.array(picture)
        colours = np.stack([np.zeros(3, np.float32), *(self.renderer.colour(r["category_id"]) for r in rows)])
        painted = np.take(colours.astype(np.uint8), ids, axis=0)
        mean = (pixels >> 1) + (painted >> 1) + (pixels & painted & 1)  # (a + b) // 2 without a wider type
        np.copyto(pixels, mean, where=(ids > 0)[:, :, None])
        out = Image.fromarray(pixels)
        pen = ImageDraw.Draw(out)
        colour_of = {}  # per class, looked up once an image
        for k in range(len(rows) - 1, -1, -1):  # the last first, so the best one's box and label are on top
            row = rows[k]
            if row["category_id"] not in colour_of:
                colour_of[row["category_id"]] = tuple(int(c) for c in colours[k + 1])
            colour = colour_of[row["category_id"]]
            x, y, w, h = row["bbox"]
            x, y, w, h = x * scale, y * scale, w * scale, h * scale
            pen.rectangle([x, y, x + w, y + h], outline=colour)
            name = self.renderer.class_map.name_of(row["category_id"])
            out.paste(self.renderer.label((name, f"{row['score']:.0%}"), colour), (int(x), int(y)))
        return out
