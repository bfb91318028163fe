"""Overlays: each image with its kept detections drawn, as JPEG files beside the masks (``output/overlays/``).

The one :class:`~.render.Renderer` draws them, so an overlay shows exactly what the threshold view and the saved
figures show (colours, labels, the best instance on top), at the image's own size up to :data:`OVERLAY_SIDE`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..dataset.record import ClassMap
from .render import Renderer, save_jpeg

OVERLAY_SIDE = 1280  # larger images are shrunk to this longest side: a phone photo's overlay stays a few 100 kB


class OverlayWriter:
    """Writes one overlay per call; images and masks are forgotten after each, so a folder of thousands streams."""

    def __init__(self, class_map: ClassMap, max_side: int = OVERLAY_SIDE):
        self.renderer = Renderer(class_map, max_side=max_side)

    def write(self, image_path: Path, rows: Sequence[dict], target: Path) -> Path:
        """Draw ``rows`` (best first, each with ``bbox``) on ``image_path`` and save it to ``target`` (JPEG)."""
        try:
            return save_jpeg(self.renderer.draw(Path(image_path), list(rows)), Path(target))
        finally:
            self.renderer.forget_images()
