"""Figures: data with ground truth, predictions, training curves. Shown inline and saved as PNG.

Every figure function returns a matplotlib Figure and saves it under ``output/figures/``, so a
headless (papermill) run keeps the same pictures a person sees in Colab. Class names come from
the dataset record, never from indices.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..core.atomic import atomic_path
from ..dataset.record import ClassMap
from ..inference.cache_file import Predictions
from ..inference.selection import Selection
from ..training.metrics import BEST_METRIC
from .render import FIGURE_SIDE, Renderer, palette

# What a figure meant for looking draws (03's test predictions): the export keeps far lower scores (0.05, 0.01), which
# pile low-score duplicates over the objects; the figure says its threshold, and the export's. 04's preview and the
# threshold view draw exactly what is exported.
DISPLAY_THRESH = 0.5


def _plt():
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: Path) -> Path:
    """Save ``fig`` as PNG atomically."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    return Path(path)


def draw_detections(
    image_path: Path, detections: list[dict], class_map: ClassMap, grayscale: bool = False, renderer=None
) -> np.ndarray:
    """Masks, boxes, class names and scores on the image (``render.Renderer``, as the threshold view draws them).

    ``grayscale`` is the original notebook's look: the background in gray, detected objects in colour.
    Pass one ``renderer`` for a whole figure, so an image drawn twice is read once.
    """
    renderer = renderer or Renderer(class_map, FIGURE_SIDE, grayscale, upscale=True)
    return np.asarray(renderer.draw(image_path, detections))


def draw_ground_truth(image_path: Path, annotations: list[dict], class_map: ClassMap, renderer=None) -> np.ndarray:
    """Ground-truth masks (polygons or RLE) with class names, drawn as detections are."""
    renderer = renderer or Renderer(class_map, FIGURE_SIDE, upscale=True)
    return np.asarray(renderer.draw(image_path, annotations))


def image_grid(
    images: list[np.ndarray], titles: list[str], path: Path, ncols: int = 4, tile: float = 3.2, title: str = ""
):
    """Lay images out in a grid (``title`` above it all), save it to ``path`` and return the figure."""
    plt = _plt()
    ncols = max(1, min(ncols, len(images)))
    nrows = max(1, math.ceil(len(images) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(tile * ncols, tile * nrows), squeeze=False)
    if title:
        fig.suptitle(title, fontsize=11)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, image, title in zip(axes.ravel(), images, titles):
        ax.imshow(image)
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    save(fig, path)
    return fig


def prediction_grid(
    predictions: Predictions,
    class_map: ClassMap,
    path: Path,
    selection: Selection,
    n: int = 12,
    grayscale: bool = False,
    ncols: int = 4,
    display: float | None = DISPLAY_THRESH,
):
    """The first ``n`` images of a split's predictions with the detections ``selection`` keeps (what is exported),
    drawn from score ``display`` up (the figure's title says both thresholds); ``display=None``: all of them."""
    by_image, kept = defaultdict(list), defaultdict(int)
    for det in selection.apply(predictions.detections):
        kept[det["image_id"]] += 1
        if display is None or det["score"] >= display:
            by_image[det["image_id"]].append(det)
    images = predictions.images.paths()
    ids = predictions.image_ids[:n]
    renderer = Renderer(class_map, FIGURE_SIDE, grayscale, upscale=True)
    drawn = [draw_detections(images[i], by_image[i], class_map, renderer=renderer) for i in ids]
    if display is None:
        titles = [f"image {i}: {kept[i]} detections" for i in ids]
        title = f"what the export keeps: {selection.describe()}"
    else:
        titles = [f"image {i}: {len(by_image[i])} of {kept[i]} detections" for i in ids]
        title = f"drawn: score >= {display:g}, of what the export keeps ({selection.describe()})"
    return image_grid(drawn, titles, path, ncols=ncols, title=title)


def ground_truth_grid(coco: dict, image_dir: Path, class_map: ClassMap, path: Path, n: int = 8, ncols: int = 4):
    """Training images with their ground-truth masks and class names."""
    anns = defaultdict(list)
    for a in coco.get("annotations", []):
        anns[a["image_id"]].append(a)
    chosen = coco["images"][:n]
    renderer = Renderer(class_map, FIGURE_SIDE, upscale=True)
    drawn = [draw_ground_truth(Path(image_dir) / im["file_name"], anns[im["id"]], class_map, renderer) for im in chosen]
    titles = [f"{im['file_name']} (id {im['id']}): {len(anns[im['id']])} objects" for im in chosen]
    return image_grid(drawn, titles, path, ncols=ncols)


def training_curves(rows: list[dict], path: Path, title: str = ""):
    """Loss curves and validation AP over iterations, from the metrics file rows (``title`` above both)."""
    plt = _plt()
    fig, (ax_loss, ax_ap) = plt.subplots(1, 2, figsize=(12, 4))
    if title:
        fig.suptitle(title)
    loss_keys = sorted({k for r in rows for k in r if k.startswith("loss_") or k == "total_loss"})
    for key in loss_keys:
        pts = [(r["iteration"], r[key]) for r in rows if key in r]
        ax_loss.plot(*zip(*pts), label=key, linewidth=2.5 if key == "total_loss" else 1)
    ax_loss.set(xlabel="iteration", ylabel="loss", title="training losses", yscale="log")
    if loss_keys:
        ax_loss.legend(fontsize=8)
    for key in (BEST_METRIC, "segm/AP", "bbox/AP50"):
        pts = [(r["iteration"], r[key] / 100) for r in rows if key in r and r[key] == r[key]]
        if pts:
            ax_ap.plot(*zip(*pts), marker="o", label=f"val {key}")
    ax_ap.set(xlabel="iteration", ylabel="AP", title="validation AP", ylim=(0, 1))
    if ax_ap.lines:
        ax_ap.legend(fontsize=8)
    fig.tight_layout()
    save(fig, path)
    return fig


def run_curves(run, folder: Path) -> list:
    """The training curves of what 03 shows: ``training_curves.png`` for one run; for a fusion (``members``) one
    figure per member, titled and named after it, since the fusion itself was never trained."""
    from ..training.metrics import read_metrics

    members = getattr(run, "members", None)
    if not members:
        return [training_curves(read_metrics(run.files.metrics), Path(folder) / "training_curves.png")]
    return [
        training_curves(
            read_metrics(m.files.metrics), Path(folder) / f"training_curves_{m.name}.png", f"member {m.name}"
        )
        for m in members
    ]


def runs_ap50(curves: dict[str, list[tuple[int, float]]], path: Path, best: str | None = None):
    """Every run's validation mask AP50 (0..1) over iterations in one figure (``training.runs.ap50_curves``);
    ``best`` (a run's name) drawn bold."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    colours = palette(len(curves)) / 255  # matplotlib's own first 10, then distinct ones (its cycle repeats)
    for k, (name, points) in enumerate(sorted(curves.items(), key=lambda item: -max(ap for _, ap in item[1]))):
        top = max(ap for _, ap in points)
        ax.plot(*zip(*points), marker="o", markersize=3, linewidth=2.5 if name == best else 1.2, color=colours[k],
                label=f"{name} (best {top:.3f})")  # fmt: skip
    ax.set(xlabel="iteration", ylabel="val mask AP50", title="validation mask AP50, every run", ylim=(0, 1))
    if curves:
        ax.legend(fontsize=8, loc="best")
    else:
        ax.text(0.5, 0.5, "no run has validation AP50 yet", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    save(fig, path)
    return fig


def ground_truth_vs_prediction(
    predictions: Predictions, class_map: ClassMap, path: Path, selection: Selection, n: int = 6
):
    """Validation images: ground truth (left) beside the detections ``selection`` keeps (right)."""
    gt = predictions.images.coco
    files = predictions.images.paths()
    anns, dets = defaultdict(list), defaultdict(list)
    for a in gt["annotations"]:
        anns[a["image_id"]].append(a)
    for d in selection.apply(predictions.detections):
        dets[d["image_id"]].append(d)
    drawn, titles, renderer = [], [], Renderer(class_map, FIGURE_SIDE, upscale=True)
    for im in gt["images"][:n]:
        file = files[im["id"]]
        drawn += [
            draw_ground_truth(file, anns[im["id"]], class_map, renderer),
            draw_detections(file, dets[im["id"]], class_map, renderer=renderer),
        ]
        titles += [
            f"ground truth: {len(anns[im['id']])} objects",
            f"prediction: {len(dets[im['id']])} (score >= {selection.threshold:g})",
        ]
    return image_grid(drawn, titles, path, ncols=2)


def per_class_ap(per_class_ap50: dict[int, float], class_map: ClassMap, path: Path):
    """Validation mask AP50 per class as horizontal bars, names from the dataset's categories."""
    plt = _plt()
    ids = [i for i in class_map.ids if i in per_class_ap50]
    values = [0.0 if per_class_ap50[i] != per_class_ap50[i] else per_class_ap50[i] for i in ids]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(ids) + 1.2))
    ax.barh([class_map.name_of(i) for i in ids], values, color="tab:blue")
    for y, (i, v) in enumerate(zip(ids, values)):
        no_gt = per_class_ap50[i] != per_class_ap50[i]
        ax.text(v + 0.01, y, "no val objects" if no_gt else f"{v:.2f}", va="center", fontsize=8)
    ax.set(xlim=(0, 1.1), xlabel="mask AP50 (validation)", title="per-class validation AP50")
    ax.invert_yaxis()
    fig.tight_layout()
    save(fig, path)
    return fig


def threshold_sweep(rows: list[dict], best: float, path: Path):
    """Validation mask AP and AP50 against the export score threshold, best one marked."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    xs = [r["threshold"] for r in rows]
    ax.plot(xs, [r["AP50"] for r in rows], marker="o", label="mask AP50")
    ax.plot(xs, [r["AP"] for r in rows], marker="o", label="mask AP")
    ax.axvline(best, color="gray", linestyle="--", label=f"best AP50 at {best}")
    ax.set(
        xscale="log", xlabel="score threshold", ylabel="AP", ylim=(0, 1), title="export threshold sweep (validation)"
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    save(fig, path)
    return fig


def error_gallery(errors: dict[int, dict], image_paths: dict[int, Path], class_map: ClassMap, path: Path, n: int = 4):
    """Left: images with the most missed objects (missed ones drawn). Right: the most confident false positives."""
    worst = sorted((i for i in errors if errors[i]["missed"]), key=lambda i: -len(errors[i]["missed"]))[:n]
    fps = sorted(((d, i) for i, e in errors.items() for d in e["false_positives"]), key=lambda x: -x[0]["score"])[:n]
    renderer = Renderer(class_map, FIGURE_SIDE, upscale=True)
    missed_panels = [
        (
            draw_ground_truth(image_paths[i], errors[i]["missed"], class_map, renderer),
            f"image {i}: missed {len(errors[i]['missed'])} of {errors[i]['num_ground_truth']}",
        )
        for i in worst
    ]
    fp_panels = [
        (
            draw_detections(image_paths[i], [d], class_map, renderer=renderer),
            f"image {i}: false positive {class_map.name_of(d['category_id'])} {d['score']:.0%}",
        )
        for d, i in fps
    ]
    columns = [c for c in (missed_panels, fp_panels) if c]
    if not columns:
        columns = [[(np.full((8, 8, 3), 255, np.uint8), "no missed objects and no false positives")]]
    blank = (np.full((8, 8, 3), 255, np.uint8), "")
    rows = max(len(c) for c in columns)
    panels = [c[r] if r < len(c) else blank for r in range(rows) for c in columns]
    return image_grid([p[0] for p in panels], [p[1] for p in panels], path, ncols=len(columns))


def dataset_statistics(stats: dict, path: Path):
    """Instances per class per split, instances per image, and object size buckets."""
    plt = _plt()
    splits = list(stats)
    classes = list(stats[splits[0]]["instances_per_class"])
    fig, axes = plt.subplots(
        1, 3, figsize=(15, max(3.5, 0.28 * len(classes) + 1)), gridspec_kw={"width_ratios": [2, 1, 1]}
    )
    height = 0.8 / len(splits)
    for k, split in enumerate(splits):
        ys = [i + k * height for i in range(len(classes))]
        axes[0].barh(ys, [stats[split]["instances_per_class"][c] for c in classes], height=height, label=split)
        per_image = stats[split]["instances_per_image"]
        axes[1].bar([int(n) + k * height for n in per_image], list(per_image.values()), width=height, label=split)
        axes[2].bar([i + k * height for i in range(3)], list(stats[split]["sizes"].values()), width=height, label=split)
    counts = sorted({int(n) for split in splits for n in stats[split]["instances_per_image"]})
    axes[1].set_xticks([n + 0.4 - height / 2 for n in counts], [str(n) for n in counts])
    axes[0].set_yticks([i + 0.4 - height / 2 for i in range(len(classes))], classes)
    axes[0].invert_yaxis()
    axes[0].set(xlabel="instances", title="instances per class")
    axes[1].set(xlabel="instances in the image", ylabel="images", title="instances per image")
    axes[2].set_xticks([i + 0.4 - height / 2 for i in range(3)], list(stats[splits[0]]["sizes"]))
    axes[2].set(ylabel="instances", title="object sizes (COCO buckets)")
    for ax in axes:
        ax.legend(fontsize=8)
    fig.tight_layout()
    save(fig, path)
    return fig
