"""The interactive threshold view of notebooks 03 and 04: look at a selection before submitting it.

A score-threshold slider on a log scale (most of mask mAP's movement is below 0.1), a class filter
and an image picker over the cached test predictions. Each change redraws the picked images with
the detections the :class:`~tinyvoc.inference.selection.Selection` at that threshold keeps (the rows
the export would write), and shows the validation mask AP50 and AP of that selection (from one
:class:`~tinyvoc.inference.evaluate.Matching`, so no matching per move) and the instances kept per
image and per class. In 04 a button exports at the slider's threshold through the export the
notebook's own cell uses.

Only widgets that ipywidgets 7.7 (Colab) and 8.x (Kaggle, the lock) both have are used. The picture is
drawn by ``render.Renderer``, the renderer of the saved figures, at a smaller tile size; it keeps each
image, mask and label once made, so a move costs tens of milliseconds at 100 detections per image
(``benchmarks/bench_inspect.py``). Where no widget front end runs (papermill, the CLI), the
notebooks draw the static figures of ``plots`` instead: :func:`front_end_present` decides.
"""

from __future__ import annotations

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
from .render import VIEW_SIDE, Renderer, grid, jpeg

SLIDER_MIN = 0.001  # the slider's lowest threshold, unless the cache's floor is higher
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
        grayscale: bool = False,
    ):
        import ipywidgets as widgets

        self.test, self.class_map, self.base, self.matching, self.export = test, class_map, selection, matching, export
        self.ncols = ncols
        self.columns = Columns.of(test.detections)
        self.image_ids = list(test.image_ids)
        self._rows_of = _rows_by_image(self.columns, self.image_ids)
        self._paths = test.images.paths()
        self.renderer = Renderer(class_map, VIEW_SIDE, grayscale)
        self.kept_per_image: dict[int, int] = {}
        self.kept_per_class: dict[int, int] = {}
        self.scores: dict | None = None
        self.drawn: dict[int, list[dict]] = {}
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
            tiles.append(self.draw(image_id, self.drawn[image_id]))
        self.picture.value = jpeg(grid(tiles, self.ncols))
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

    def draw(self, image_id: int, detections: list[dict]):
        """One tile: the image with ``detections`` (best first) and a line saying how many of its kept ones show."""
        title = f"image {image_id}: {len(detections)} of {self.kept_per_image[image_id]} kept"
        return self.renderer.draw(self._paths[image_id], detections, title)


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
