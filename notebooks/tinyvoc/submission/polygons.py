"""A mask as polygons, as labelling tools edit it: one polygon per separate part, traced by OpenCV (the pre-labels'
COCO file, ``prelabels``, and Label Studio's tasks, ``label_studio``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .mask_files import DecodedMasks

MIN_POLYGON_POINTS = 3  # fewer is a line or a point: COCO and the tools need an area
SIMPLIFY_PX = 0.5  # the simplified outline's largest step from the traced one, in pixels
DOUBLED_BELOW_PX = 64 * 64  # masks of fewer pixels are traced at twice the size (see segmentation_of)


@dataclass(frozen=True)
class Outline:
    """A mask traced: each part's outer boundary as a polygon (holes filled), and whether it has a hole.
    ``points``: each polygon as an ``N x 2`` array of pixel coordinates (``x, y``), for whoever needs them scaled
    (Label Studio's percentages) without turning the lists back into arrays."""

    points: list[np.ndarray]
    has_hole: bool

    @property
    def polygons(self) -> list[list[float]]:
        """COCO's polygons: ``[x1, y1, x2, y2, ...]`` per part."""
        return [p.ravel().tolist() for p in self.points]


def segmentation_of(rle: dict, crop: tuple[int, int, np.ndarray] | None = None) -> list[list[float]] | dict:
    """A detection's mask as COCO polygons (every part with an area kept), or as the RLE itself when the mask has a
    hole (a polygon cannot leave it out) or only specks no polygon can hold. ``crop``: as :func:`trace` takes it."""
    outline = trace(rle, crop)
    return rle if outline.has_hole or not outline.points else outline.polygons


def trace(rle: dict, crop: tuple[int, int, np.ndarray] | None = None) -> Outline:
    """The mask's :class:`Outline`. ``crop``: the mask inside its box, ``(top, left, pixels)``, when decoded
    already (``DecodedMasks.crop``). One trace gives both the COCO polygons and, for a mask with a hole, the
    outline a tool whose polygons cannot hold a hole gets (Label Studio).

    OpenCV traces the centres of the boundary pixels, a polygon half a pixel inside the mask: redrawn, it loses
    the mask's rim (a tenth of a 20-pixel object). Traced on the mask at twice the size, the centres sit a quarter
    pixel inside each edge, and pycocotools redraws the polygons to the same pixels (all but corners: 7 of 21,359
    pixels on 21 test shapes). That costs four times the pixels, so only masks smaller than
    :data:`DOUBLED_BELOW_PX` are traced doubled; on larger ones the half-pixel rim is a few percent of the area.
    The outline is then simplified to within half a pixel (``approxPolyDP``): a staircase of hundreds of points
    becomes the few a person corrects by hand in CVAT, and writes 5x faster. Only the mask's box is traced, so a
    small object in a large image costs little.
    """
    import cv2

    if crop is None:
        crop = DecodedMasks.of([{"segmentation": rle}], *rle["size"]).crop(0)
    top, left, pixels = crop
    if not pixels.any():  # an empty mask
        return Outline([], False)
    zoom = 2 if np.count_nonzero(pixels) < DOUBLED_BELOW_PX else 1
    scaled = cv2.resize(pixels.astype(np.uint8), None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)
    traced = cv2.copyMakeBorder(scaled, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    contours, hierarchy = cv2.findContours(traced, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return Outline([], False)
    outer = hierarchy[0][:, 3] < 0  # a contour inside another is a hole's
    offset = np.array([left, top], dtype=float)
    polygons = []
    for contour in (c for c, is_outer in zip(contours, outer) if is_outer):
        points = cv2.approxPolyDP(contour, SIMPLIFY_PX * zoom, True).reshape(-1, 2)
        if len(points) >= MIN_POLYGON_POINTS:
            polygons.append((points - 1 + 0.5) / zoom + offset)
    return Outline(polygons, not outer.all())
