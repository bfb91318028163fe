"""The interactive threshold view of notebooks 03 and 04: look at a selection before submitting it.

A score-threshold slider on a log scale (most of mask mAP's movement is below 0.1), a class filter
and an image picker over the cached test predictions. Each change redraws the picked images with
the detections the :class:`~tinyvoc.inference.selection.Selection` at that threshold keeps (the rows
the export would write), and shows the validation mask AP50 and AP of that selection (from one
:class:`~tinyvoc.inference.evaluate.Matching`, so no matching per move) and the instances kept per
image and per class. In 04 a button exports at the slider's threshold through the export the
notebook's own cell uses.

Only widgets that ipywidgets 7.7 (Colab) and 8.x (Kaggle, the lock) both have are used. Drawing is
plain numpy and PIL on images shrunk to the tile size, with each image and its masks decoded once
and kept, so a move costs tens of milliseconds at 100 detections per image
(``benchmarks/bench_inspect.py``). Where no widget front end runs (papermill, the CLI), the
notebooks draw the static figures of ``plots`` instead: :func:`front_end_present` decides.
"""

from __future__ import annotations

import io
import math
import os
import sys
from collections.abc import Callable

import numpy as np

from ..dataset.record import ClassMap
from ..inference.cache_file import Predictions
from ..inference.evaluate import Matching
from ..inference.selection import Columns, Selection
from ..runtime import kaggle

SLIDER_MIN = 0.001  # the slider's lowest threshold, unless the cache's floor is higher
TILE = 300  # pixels on an image's longer side in the view
PALETTE = np.array(
    [
        (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
        (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
        (174, 199, 232), (255, 187, 120), (152, 223, 138), (255, 152, 150), (197, 176, 213),
        (196, 156, 148), (247, 182, 210), (199, 199, 199), (219, 219, 141), (158, 218, 229),
    ],
    dtype=np.float32,
)  # fmt: skip  # matplotlib's tab20, one colour per class


SESSION_ENV = "JPY_SESSION_NAME"  # set by a Jupyter server in the kernels it starts for a notebook


def front_end_present() -> bool:
    """Whether this code runs in a notebook kernel whose front end draws widgets.

    True in Colab's own kernel, and in a kernel a Jupyter server started for a notebook (JupyterLab,
    Notebook 7, Kaggle: the server sets ``JPY_SESSION_NAME``), when ipywidgets is installed. False in
    papermill's kernels (the CLI, CI), in plain Python and in IPython without a kernel.
    """
    shell = sys.modules["IPython"].get_ipython() if "IPython" in sys.modules else None
    if shell is None or not hasattr(shell, "kernel"):
        return False
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    if kaggle.run_type() == "Batch":  # "Save Version" runs the notebook headless: nobody sees a widget there
        return False
    return type(shell).__module__.startswith("google.colab") or SESSION_ENV in os.environ


class ThresholdView:
    """The widgets and the drawing behind them; ``widget`` is what the notebook displays.

    ``export`` (04 only) writes the submission for a selection and returns the check's report; the
    button calls it with the slider's selection. ``drawn``, ``scores`` and ``kept_per_class`` hold what
    the last redraw showed, so tests compare them with what the export writes.
    """

    def __init__(
        self,
        test: Predictions,
        class_map: ClassMap,
        selection: Selection,
        matching: Matching | None = None,
        export: Callable[[Selection], object] | None = None,
        n_images: int = 6,
        ncols: int = 3,
    ):
        import ipywidgets as widgets

        self.test, self.class_map, self.base, self.matching, self.export = test, class_map, selection, matching, export
        self.ncols = ncols
        self.columns = Columns.of(test.detections)
        self.image_ids = list(test.image_ids)
        self._rows_of = _rows_by_image(self.columns, self.image_ids)
        self._paths = test.images.paths()
        self._tiles: dict[int, tuple[np.ndarray, float]] = {}
        self._masks: dict[int, tuple[int, int, np.ndarray]] = {}
        self._labels: dict = {}
        contiguous = {cid: k for k, cid in enumerate(class_map.ids)}
        self._colour_of_row = PALETTE[[contiguous[c] % len(PALETTE) for c in self.columns.category_ids.tolist()]]
        low = max(SLIDER_MIN, test.score_floor)  # below the floor the cache has nothing to show
        self.slider = widgets.FloatLogSlider(
            value=min(max(selection.threshold, low), 1.0), base=10, min=math.log10(low), max=0, step=0.05,
            description="score >=", readout_format=".3f", continuous_update=False,
        )  # fmt: skip
        self.classes = widgets.SelectMultiple(
            options=[(name, cid) for cid, name in zip(class_map.ids, class_map.names)],
            value=tuple(class_map.ids), rows=min(8, len(class_map.ids)), description="classes",
        )  # fmt: skip
        names = {it.image_id: it.path.name for it in test.images.items}
        self.images = widgets.SelectMultiple(
            options=[(f"{i}: {names[i]}", i) for i in self.image_ids],
            value=tuple(self.image_ids[:n_images]), rows=8, description="images",
        )  # fmt: skip
        self.picture = widgets.Image(format="jpeg")
        self.summary = widgets.HTML()
        controls = [self.slider, widgets.HBox([self.classes, self.images])]
        self.log = widgets.Output()
        if export is not None:
            self.button = widgets.Button(
                description="Export at this threshold", button_style="primary", layout=widgets.Layout(width="auto")
            )
            self.button.on_click(lambda _: self.export_now())
            controls.append(widgets.HBox([self.button]))
        self.widget = widgets.VBox([*controls, self.summary, self.picture, self.log])
        for control in (self.slider, self.classes, self.images):
            control.observe(lambda _: self.redraw(), names="value")
        self.redraw()

    @property
    def selection(self) -> Selection:
        """The notebook's selection at the slider's threshold (class thresholds and cap unchanged)."""
        return self.base.at(float(self.slider.value))

    def redraw(self) -> None:
        """Select at the slider's threshold, count, score on validation, and draw the picked images."""
        selection = self.selection
        kept = self.columns.keep(selection)
        shown_classes = set(self.classes.value)
        self.kept_per_image = {i: int(np.count_nonzero(kept[rows])) for i, rows in self._rows_of.items()}
        self.kept_per_class = {
            cid: int(np.count_nonzero(kept & (self.columns.category_ids == cid))) for cid in self.class_map.ids
        }
        self.scores = self.matching.scores(selection) if self.matching is not None else None
        self.drawn = {}
        tiles = []
        for image_id in self.images.value:
            rows = [int(r) for r in self._rows_of[image_id] if kept[r]]  # best first, as the export writes them
            rows = [r for r in rows if self.test.detections[r]["category_id"] in shown_classes]
            self.drawn[image_id] = [self.test.detections[r] for r in rows]
            tiles.append(self._draw(image_id, rows))
        self.picture.value = _jpeg(_grid(tiles, self.ncols))
        self.summary.value = self._summary_html(selection)

    def export_now(self):
        """The button: export at the slider's selection, and say what was written."""
        with self.log:
            self.log.clear_output()
            report = self.export(self.selection)
            print(f"{self.selection.describe()} -> {report.path}")
            print(report.summary())
        return report

    def _summary_html(self, selection: Selection) -> str:
        counts = list(self.kept_per_image.values())
        total = sum(counts)
        empty = sum(1 for n in counts if n == 0)
        lines = [
            f"<b>{selection.describe()}</b>: {total} instances on {len(counts)} test images "
            f"({min(counts, default=0)}-{max(counts, default=0)} per image, {empty} images without any)"
        ]
        if self.scores is not None:
            lines.append(
                f"validation mask AP50 <b>{self.scores['AP50']:.3f}</b>, AP <b>{self.scores['AP']:.3f}</b> "
                f"({self.scores['instances']} validation instances)"
            )
        per_class = self.scores["per_class_AP50"] if self.scores is not None else {}
        cells = "".join(
            f"<tr><td>{name}</td><td>{self.kept_per_class[cid]}</td><td>{_ap_text(per_class.get(cid))}</td></tr>"
            for cid, name in zip(self.class_map.ids, self.class_map.names)
        )
        table = f"<table><tr><th>class</th><th>test instances</th><th>val AP50</th></tr>{cells}</table>"
        return "<br>".join(lines) + table

    def _tile(self, image_id: int) -> tuple[np.ndarray, float]:
        """The image shrunk to the tile size, read once."""
        if image_id not in self._tiles:
            from PIL import Image

            with Image.open(self._paths[image_id]) as im:
                im = im.convert("RGB")
                scale = min(1.0, TILE / max(im.size))
                size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
                self._tiles[image_id] = (np.asarray(im.resize(size, Image.BILINEAR), dtype=np.float32), scale)
        return self._tiles[image_id]

    def _mask(self, image_id: int, row: int) -> tuple[int, int, np.ndarray]:
        """Detection ``row``'s mask at the tile's size, cropped to where it is set: ``(top, left, crop)``.

        All masks of an image are decoded together on its first draw, then kept.
        """
        if row not in self._masks:
            from pycocotools import mask as mask_util

            from ..core.rle import to_pycocotools

            tile, _ = self._tile(image_id)
            rows = [int(r) for r in self._rows_of[image_id]]
            full = mask_util.decode([to_pycocotools(self.test.detections[r]["segmentation"]) for r in rows])
            ys = (np.arange(tile.shape[0]) * full.shape[0] / tile.shape[0]).astype(int)
            xs = (np.arange(tile.shape[1]) * full.shape[1] / tile.shape[1]).astype(int)
            small = full[ys][:, xs].astype(bool)
            for k, r in enumerate(rows):
                m = small[:, :, k]
                yy, xx = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
                if yy.size:
                    self._masks[r] = (int(yy[0]), int(xx[0]), m[yy[0] : yy[-1] + 1, xx[0] : xx[-1] + 1])
                else:
                    self._masks[r] = (0, 0, np.zeros((0, 0), bool))
        return self._masks[row]

    def _label(self, text: str, colour: tuple[int, int, int]):
        """A class-and-score label, white on the class colour; rendered once (rendering text is the slow part)."""
        key = (text, colour)
        if key not in self._labels:
            from PIL import Image, ImageDraw

            left, top, right, bottom = ImageDraw.Draw(Image.new("RGB", (1, 1))).textbbox((0, 0), text)
            label = Image.new("RGB", (right - left + 4, bottom - top + 3), colour)
            ImageDraw.Draw(label).text((2 - left, 1 - top), text, fill=(255, 255, 255))
            self._labels[key] = label
        return self._labels[key]

    def _draw(self, image_id: int, rows: list[int]):
        """One tile: masks blended in their class colour (best on top), boxes, labels, a title line."""
        from PIL import Image, ImageDraw

        tile, scale = self._tile(image_id)
        owner = np.full(tile.shape[:2], -1, dtype=np.int32)
        colours = self._colour_of_row[rows] if rows else np.zeros((1, 3), np.float32)
        for k in range(len(rows) - 1, -1, -1):  # lowest score first, so the best is painted last
            top, left, crop = self._mask(image_id, rows[k])
            np.copyto(owner[top : top + crop.shape[0], left : left + crop.shape[1]], k, where=crop)
        covered = (owner >= 0)[:, :, None]
        out = np.where(covered, 0.5 * tile + 0.5 * colours[np.maximum(owner, 0)], tile)
        canvas = Image.new("RGB", (out.shape[1], out.shape[0] + 14), "white")
        canvas.paste(Image.fromarray(out.astype(np.uint8)), (0, 14))
        draw = ImageDraw.Draw(canvas)
        for k in range(len(rows) - 1, -1, -1):  # the best box and label on top
            det = self.test.detections[rows[k]]
            x, y, w, h = (v * scale for v in det["bbox"])
            colour = tuple(int(c) for c in colours[k])
            draw.rectangle([x, y + 14, x + w, y + h + 14], outline=colour)
            canvas.paste(self._label(f"{self.class_map.name_of(det['category_id'])} {det['score']:.0%}", colour),
                         (int(x), int(y) + 14))  # fmt: skip
        draw.text((2, 1), f"image {image_id}: {len(rows)} of {self.kept_per_image[image_id]} kept", fill="black")
        return canvas


def _rows_by_image(columns: Columns, image_ids: list[int]) -> dict[int, np.ndarray]:
    """Each image's detection rows, best first."""
    order = np.lexsort((-columns.scores, columns.image_ids))
    ids = columns.image_ids[order]
    out = {i: np.zeros(0, dtype=np.int64) for i in image_ids}
    for image_id in np.unique(ids):
        out[int(image_id)] = order[ids == image_id]
    return out


def _ap_text(value: float | None) -> str:
    if value is None:
        return ""
    return "no val objects" if value != value else f"{value:.2f}"


def _grid(tiles: list, ncols: int):
    from PIL import Image

    if not tiles:
        return Image.new("RGB", (TILE, 40), "white")
    ncols = max(1, min(ncols, len(tiles)))
    width, height = max(t.width for t in tiles), max(t.height for t in tiles)
    rows = math.ceil(len(tiles) / ncols)
    grid = Image.new("RGB", (ncols * (width + 4), rows * (height + 4)), "white")
    for k, tile in enumerate(tiles):
        grid.paste(tile, ((k % ncols) * (width + 4), (k // ncols) * (height + 4)))
    return grid


def _jpeg(image) -> bytes:
    """JPEG: a tenth of PNG's encoding time for these pictures, at a quality where masks and labels stay sharp."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()
