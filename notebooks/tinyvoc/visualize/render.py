"""One renderer for every picture of masks: the saved figures (``plots``) and the threshold view (``inspector``).

Detections and ground truth are drawn here and nowhere else, so the view shows the same colours,
labels and grayscale look as the figures a headless run saves. It is plain numpy and PIL on images
shrunk to a tile size, and a :class:`Renderer` keeps what is slow to make: each image read and
shrunk once, each mask decoded once (all of an image's new masks in one pycocotools call), each label
rendered once. A threshold move in the view then costs tens of milliseconds at 100 detections per
image (``benchmarks/bench_inspect.py``), and a saved grid no longer waits on detectron2's Visualizer.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..core.rle import to_pycocotools
from ..dataset.record import ClassMap

PALETTE = np.array(
    [
        (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
        (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
        (174, 199, 232), (255, 187, 120), (152, 223, 138), (255, 152, 150), (197, 176, 213),
        (196, 156, 148), (247, 182, 210), (199, 199, 199), (219, 219, 141), (158, 218, 229),
    ],
    dtype=np.float32,
)  # fmt: skip  # matplotlib's tab20 (tab10, then its light shades): the first 20 classes' colours, see palette()
TITLE_BAR = 14  # pixels above a tile for its title line, when it has one
VIEW_SIDE = 300  # the view's tiles: small, so a move redraws in tens of milliseconds
FIGURE_SIDE = 480  # the saved figures' tiles: about twice what a 3.2-inch grid cell shows at 110 dpi


def _lab(rgb) -> np.ndarray:
    """sRGB (0-255) to CIELAB (D65), where Euclidean distance is about how different two colours look."""
    c = np.asarray(rgb, dtype=np.float64) / 255
    c = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    xyz = c @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]).T
    xyz = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


@lru_cache(maxsize=8)
def palette(count: int) -> np.ndarray:
    """``count`` colours, one per class (or per run in a figure), as a ``(count, 3)`` float array of 0-255 RGB.

    The first 20 are :data:`PALETTE` (the course's 20 classes keep their colours; its first 10 are matplotlib's
    default line colours). Past 20 a fixed palette would repeat, two classes in one colour: each further colour is
    the one, of a grid over the RGB cube, farthest in CIELAB from every colour already taken (deterministic), of
    middle lightness so the white label text stays readable. Every colour is then at least as far from the
    others as tab20's two closest (CIELAB distance 16.6) up to about 100 colours.
    """
    if count <= len(PALETTE):
        return PALETTE[: max(count, 1)]
    steps = np.arange(0, 256, 17)
    grid = np.stack(np.meshgrid(steps, steps, steps, indexing="ij"), axis=-1).reshape(-1, 3)
    grid_lab = _lab(grid)
    middle = (grid_lab[:, 0] >= 30) & (grid_lab[:, 0] <= 80)
    grid, grid_lab = grid[middle], grid_lab[middle]
    nearest = np.linalg.norm(grid_lab[:, None] - _lab(PALETTE)[None], axis=-1).min(axis=1)
    chosen = list(PALETTE)
    while len(chosen) < count:
        k = int(np.argmax(nearest))
        chosen.append(grid[k].astype(np.float32))
        nearest = np.minimum(nearest, np.linalg.norm(grid_lab - grid_lab[k], axis=1))
    return np.array(chosen, dtype=np.float32)


class Renderer:
    """Draws instances (detections or ground-truth annotations) on images shrunk to ``max_side`` pixels.

    An instance is a COCO dict: ``category_id``, ``bbox`` ``[x, y, w, h]``, ``segmentation`` (compressed
    RLE, uncompressed RLE or polygons) and, for a detection, ``score``. ``grayscale`` is the original
    notebook's look: the background in gray, the objects in colour. ``upscale``: smaller images are enlarged
    to ``max_side`` too (the saved figures: a 128-pixel image shown at 3 inches would otherwise have labels
    as big as its objects), and labels are written in a font scaled to the tile, so they stay readable once the
    figure shrinks it; the view leaves images as they are and uses PIL's small bitmap font, which keeps a move fast.
    """

    def __init__(self, class_map: ClassMap, max_side: int = VIEW_SIDE, grayscale: bool = False, upscale=False):
        self.class_map, self.max_side, self.grayscale, self.upscale = class_map, max_side, grayscale, upscale
        self._font = None
        if upscale:
            from PIL import ImageFont

            self._font = ImageFont.load_default(size=max(11, max_side // 28))
        self._contiguous = {cid: k for k, cid in enumerate(class_map.ids)}
        self._palette = palette(len(class_map.ids))  # one colour per class, however many
        self._images: dict[Path, tuple[np.ndarray, np.ndarray, float, tuple[int, int]]] = {}
        self._masks: dict[tuple, tuple[int, int, np.ndarray]] = {}
        self._labels: dict = {}
        self._inks: dict = {}

    def forget_images(self) -> None:
        """Drop the images and masks read so far (the labels stay): what writes one overlay per image of a folder
        of thousands calls after each, so memory stays flat."""
        self._images.clear()
        self._masks.clear()

    def colour(self, category_id: int) -> np.ndarray:
        return self._palette[self._contiguous.get(category_id, 0)]

    def _image(self, path: Path):
        """``(colour tile, background tile, scale, (height, width) of the file)``, read once."""
        path = Path(path)
        if path not in self._images:
            from PIL import Image

            with Image.open(path) as im:
                im = im.convert("RGB")
                scale = self.max_side / max(im.size) if self.upscale else min(1.0, self.max_side / max(im.size))
                size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
                tile = np.asarray(im.resize(size, Image.BILINEAR), dtype=np.float32)
                original = (im.height, im.width)
            background = np.repeat(tile @ np.float32([0.299, 0.587, 0.114])[:, None], 3, 2) if self.grayscale else tile
            self._images[path] = (tile, background, scale, original)
        return self._images[path]

    def _crops(self, path: Path, instances: Sequence[dict]) -> list[tuple[int, int, np.ndarray]]:
        """Each instance's mask at the tile's size, cropped to where it is set: ``(top, left, crop)``."""
        keys = [(Path(path), _mask_key(inst["segmentation"])) for inst in instances]
        new = {k: inst["segmentation"] for k, inst in zip(keys, instances) if k not in self._masks}
        if new:
            from pycocotools import mask as mask_util

            tile, _, _, (height, width) = self._image(path)
            full = mask_util.decode([_rle(seg, height, width) for seg in new.values()])
            ys = (np.arange(tile.shape[0]) * full.shape[0] / tile.shape[0]).astype(int)
            xs = (np.arange(tile.shape[1]) * full.shape[1] / tile.shape[1]).astype(int)
            small = full[ys][:, xs].astype(bool)
            for k, key in enumerate(new):
                m = small[:, :, k]
                yy, xx = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
                crop = m[yy[0] : yy[-1] + 1, xx[0] : xx[-1] + 1] if yy.size else np.zeros((0, 0), bool)
                self._masks[key] = (int(yy[0]), int(xx[0]), crop) if yy.size else (0, 0, crop)
        return [self._masks[k] for k in keys]

    def label(self, text: str | tuple[str, ...], colour: tuple[int, int, int]):
        """A class (and score) label, white on the class colour; ``text`` as parts (``("cat", "43%")``) set side by
        side. Each part is rendered once whatever its colour and company (rendering is the slow part: 20 classes
        and 101 percentages are 121 renderings, where whole labels were 1,500 at 10,000 instances), then inked onto
        each colour once; a label made once is pasted whole (one paste an instance, not one a part)."""
        key = (text, colour)
        if key not in self._labels:
            from PIL import Image

            inks = [self._ink(part) for part in ((text,) if isinstance(text, str) else text)]
            label = Image.new("RGB", (sum(ink.width for ink in inks), max(ink.height for ink in inks)), colour)
            left = 0
            for ink in inks:
                label.paste((255, 255, 255), (left, 0, left + ink.width, ink.height), ink)
                left += ink.width
            self._labels[key] = label
        return self._labels[key]

    def _ink(self, text: str):
        """The label's text as a greyscale mask (255 where white), with the label's margins."""
        if text not in self._inks:
            from PIL import Image, ImageDraw

            left, top, right, bottom = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), text, self._font)
            ink = Image.new("L", (right - left + 4, bottom - top + 3), 0)
            ImageDraw.Draw(ink).text((2 - left, 1 - top), text, fill=255, font=self._font)
            self._inks[text] = ink
        return self._inks[text]

    def draw(self, path: Path, instances: Sequence[dict], title: str | None = None):
        """One tile (a PIL image): masks blended in their class colour, boxes and labels, the first instance on
        top (pass detections best first, as the export writes them); ``title`` in a line above the image."""
        from PIL import Image, ImageDraw

        tile, background, scale, _ = self._image(path)
        crops = self._crops(path, instances)
        colours = np.stack([self.colour(inst["category_id"]) for inst in instances]) if instances else PALETTE[:1]
        owner = np.full(tile.shape[:2], -1, dtype=np.int32)
        for k in range(len(instances) - 1, -1, -1):  # the last first, so the first is painted on top
            top, left, crop = crops[k]
            np.copyto(owner[top : top + crop.shape[0], left : left + crop.shape[1]], k, where=crop)
        covered = (owner >= 0)[:, :, None]
        out = np.where(covered, 0.5 * tile + 0.5 * colours[np.maximum(owner, 0)], background)
        bar = TITLE_BAR if title is not None else 0
        canvas = Image.new("RGB", (out.shape[1], out.shape[0] + bar), "white")
        canvas.paste(Image.fromarray(out.astype(np.uint8)), (0, bar))
        pen = ImageDraw.Draw(canvas)
        boxes = [tuple(v * scale for v in inst["bbox"]) for inst in instances]
        for k in range(len(instances) - 1, -1, -1):
            x, y, w, h = boxes[k]
            pen.rectangle([x, y + bar, x + w, y + h + bar], outline=tuple(int(c) for c in colours[k]))
        for label, (left, top) in self._placed(instances, boxes, colours, canvas.size, bar):
            canvas.paste(label, (left, top))
        if title is not None:
            pen.text((2, 1), title, fill="black")
        return canvas

    def _placed(self, instances, boxes, colours, size: tuple[int, int], bar: int) -> list:
        """Each instance's label and where it goes, so that no two labels overlap: at its box's top left, else
        just above the box, else at its bottom left; an instance whose three places are all taken goes without a
        label (its box and mask are drawn). The first instances choose first: detections best first."""
        taken, placed = [], []
        for inst, (x, y, _, h), colour in zip(instances, boxes, colours):
            text = self.class_map.name_of(inst["category_id"])
            if "score" in inst:
                text += f" {inst['score']:.0%}"
            label = self.label(text, tuple(int(c) for c in colour))
            lw, lh = label.size
            for left, top in ((x, y + bar), (x, y + bar - lh), (x, y + h + bar - lh)):
                left, top = int(min(max(left, 0), max(size[0] - lw, 0))), int(min(max(top, bar), size[1] - lh))
                rect = (left, top, left + lw, top + lh)
                if not any(rect[0] < r[2] and r[0] < rect[2] and rect[1] < r[3] and r[1] < rect[3] for r in taken):
                    taken.append(rect)
                    placed.append((label, (left, top)))
                    break
        return placed


def _mask_key(segmentation) -> str:
    """What identifies a mask in the cache: its compressed RLE (immutable, hashed once), else its text."""
    if isinstance(segmentation, dict) and isinstance(segmentation.get("counts"), (str, bytes)):
        return segmentation["counts"]
    return repr(segmentation)


def _rle(segmentation, height: int, width: int) -> dict:
    """pycocotools' RLE of any COCO segmentation: compressed RLE, uncompressed RLE or polygons."""
    from pycocotools import mask as mask_util

    if isinstance(segmentation, dict) and isinstance(segmentation.get("counts"), (str, bytes)):  # compressed
        return to_pycocotools(segmentation)
    if isinstance(segmentation, dict):
        return mask_util.frPyObjects(segmentation, height, width)
    return mask_util.merge(mask_util.frPyObjects(segmentation, height, width))


def grid(tiles: list, ncols: int, empty_width: int = VIEW_SIDE):
    """Tiles (PIL images) in rows of ``ncols``, 4 white pixels apart."""
    from PIL import Image

    if not tiles:
        return Image.new("RGB", (empty_width, 40), "white")
    ncols = max(1, min(ncols, len(tiles)))
    width, height = max(t.width for t in tiles), max(t.height for t in tiles)
    rows = math.ceil(len(tiles) / ncols)
    out = Image.new("RGB", (ncols * (width + 4), rows * (height + 4)), "white")
    for k, tile in enumerate(tiles):
        out.paste(tile, ((k % ncols) * (width + 4), (k // ncols) * (height + 4)))
    return out


def jpeg(image) -> bytes:
    """JPEG: a tenth of PNG's encoding time for these pictures, at a quality where masks and labels stay sharp."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()
