"""Figures have the expected size and real content, are saved as PNG, and name classes from metadata."""

import numpy as np
import pytest
from PIL import Image

from tinyvoc.core.coco_json import load_coco
from tinyvoc.dataset.record import ClassMap
from tinyvoc.inference import cached_predictions, evaluate
from tinyvoc.inference.selection import Selection
from tinyvoc.inference.trained_run import TrainedRun
from tinyvoc.training.metrics import read_metrics
from tinyvoc.visualize import plots, render


def _png(path):
    image = np.asarray(Image.open(path).convert("RGB"))
    assert image.std() > 5, f"{path} looks blank"
    return image


@pytest.fixture(scope="module")
def drawn(trained_sample):
    run = TrainedRun.load(trained_sample, "final")
    return run, run.record, cached_predictions.predict_split(run, "test")


def test_prediction_grid_size_content_and_class_names(drawn, monkeypatch):
    run, record, cached = drawn
    outputs = run.outputs
    texts = []
    original = render.Renderer.label
    monkeypatch.setattr(
        render.Renderer, "label", lambda self, text, colour: texts.append(text) or original(self, text, colour)
    )
    renamed = ClassMap(record.class_map.ids, ("alpha", "beta", "gamma"))
    path = outputs.figures_dir / "grid.png"
    fig = plots.prediction_grid(cached, renamed, path, Selection(cached.score_floor), n=6, ncols=3)
    width, height = fig.get_size_inches() * fig.dpi
    assert (width, height) == pytest.approx((3 * 3.2 * fig.dpi, 2 * 3.2 * fig.dpi))
    image = _png(path)
    assert image.shape[0] > 200 and image.shape[1] > 300
    labels = [t for t in texts if "%" in t]
    assert labels and all(t.split()[0] in {"alpha", "beta", "gamma"} for t in labels)


def test_grayscale_mode_drops_colour_outside_objects(drawn):
    _, record, cached = drawn
    paths = cached.images.paths()
    image_id = cached.image_ids[0]
    colour = plots.draw_detections(paths[image_id], [], record.class_map)
    gray = plots.draw_detections(paths[image_id], [], record.class_map, grayscale=True)
    assert colour.shape == gray.shape
    assert np.ptp(gray.astype(int), axis=2).max() <= 2 < np.ptp(colour.astype(int), axis=2).max()


def test_ground_truth_and_detections_draw_the_same_mask_alike(drawn):
    """One renderer: a ground-truth polygon and a detection whose RLE is that polygon paint the same pixels."""
    from pycocotools import mask as mask_util

    _, record, cached = drawn
    image = cached.images.items[0]
    polygon = [[10.0, 10.0, 60.0, 10.0, 60.0, 50.0, 10.0, 50.0]]
    rle = mask_util.merge(mask_util.frPyObjects(polygon, image.height, image.width))
    segmentation = {"size": rle["size"], "counts": rle["counts"].decode()}
    cid = record.class_map.ids[0]
    truth = plots.draw_ground_truth(image.path, [{"category_id": cid, "bbox": [10, 10, 50, 40],
                                                  "segmentation": polygon}], record.class_map)  # fmt: skip
    found = plots.draw_detections(image.path, [{"category_id": cid, "bbox": [10, 10, 50, 40], "score": 1.0,
                                                "segmentation": segmentation}], record.class_map)  # fmt: skip
    plain = plots.draw_detections(image.path, [], record.class_map)
    below_labels = int(30 * plain.shape[0] / image.height)  # labels differ (a detection's has its score)
    painted = (np.abs(truth.astype(int) - plain.astype(int)).sum(2) > 0)[below_labels:]
    assert painted.any()
    assert np.array_equal(painted, (np.abs(found.astype(int) - plain.astype(int)).sum(2) > 0)[below_labels:])


def test_ground_truth_grid_and_training_curves(drawn):
    run, record, _ = drawn
    outputs = run.outputs
    train = load_coco(record.train_split)
    plots.ground_truth_grid(
        train, record.data_files.train_images, record.class_map, outputs.figures_dir / "gt.png", n=4
    )
    plots.training_curves(read_metrics(run.files.metrics), outputs.figures_dir / "curves.png")
    _png(outputs.figures_dir / "gt.png")
    _png(outputs.figures_dir / "curves.png")


def test_the_looking_figure_draws_from_its_stated_threshold_with_labels_apart(drawn, monkeypatch):
    """03's test predictions: only scores at the display threshold or above, said in the title beside the export's
    selection; no label over another, however many detections share a place."""
    run, record, cached = drawn
    texts = []
    original = render.Renderer.label
    monkeypatch.setattr(
        render.Renderer, "label", lambda self, text, colour: texts.append(text) or original(self, text, colour)
    )
    selection = Selection(cached.score_floor)
    fig = plots.prediction_grid(cached, record.class_map, run.outputs.figures_dir / "looking.png", selection, n=8)
    assert (
        fig._suptitle.get_text()
        == f"drawn: score >= {plots.DISPLAY_THRESH:g}, of what the export keeps ({selection.describe()})"
    )
    scores = [int(t.rsplit(" ", 1)[1].rstrip("%")) for t in texts]
    assert all(score >= 100 * plots.DISPLAY_THRESH for score in scores)
    everything = plots.prediction_grid(cached, record.class_map, run.outputs.figures_dir / "all.png", selection, n=8,
                                       display=None)  # fmt: skip
    assert everything._suptitle.get_text().startswith("what the export keeps")

    renderer = render.Renderer(record.class_map, 480, upscale=True)
    image = cached.images.paths()[cached.image_ids[0]]
    pile = [{**cached.detections[0], "score": 0.9 - k / 100} for k in range(12)]  # one place, twelve detections
    tile = renderer.draw(image, pile)
    assert max(tile.size) == 480  # the small sample image enlarged, so masks show beside the labels
    placed = [(left, top, left + label.width, top + label.height) for label, (left, top) in
              renderer._placed(pile, [tuple(v * renderer._image(image)[2] for v in d["bbox"]) for d in pile],
                               [renderer.colour(d["category_id"]) for d in pile], tile.size, 0)]  # fmt: skip
    assert 1 <= len(placed) <= 3  # three places a box offers labels; the rest go without
    for k, a in enumerate(placed):
        assert not any(a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3] for b in placed[k + 1 :])


def test_a_fusions_curves_are_each_members_titled_with_its_name(drawn):
    """03's curves cell: one run, its figure; a fusion (never trained itself), one figure per member, each named."""
    from tinyvoc.inference.ensemble import FusedRun

    run, _, _ = drawn
    folder = run.outputs.figures_dir
    (one,) = plots.run_curves(run, folder)
    assert not one._suptitle and _png(folder / "training_curves.png") is not None
    figures = plots.run_curves(FusedRun((run, run)), folder)
    assert [f._suptitle.get_text() for f in figures] == [f"member {run.name}"] * 2
    _png(folder / f"training_curves_{run.name}.png")


def test_validation_figures(drawn):
    run, record, _ = drawn
    outputs = run.outputs
    val = cached_predictions.predict_split(run, "val")
    metrics = evaluate.evaluate_cached(val, Selection(val.score_floor))
    plots.per_class_ap(metrics["segm"]["per_class_AP50"], record.class_map, outputs.figures_dir / "ap.png")
    sweep = evaluate.threshold_sweep(evaluate.Matching(val), Selection(0.05))
    plots.threshold_sweep(sweep, evaluate.best_threshold(sweep), outputs.figures_dir / "sweep.png")
    errors = evaluate.match_errors(val, Selection(0.5))
    plots.error_gallery(errors, val.images.paths(), record.class_map, outputs.figures_dir / "errors.png")
    plots.ground_truth_vs_prediction(val, record.class_map, outputs.figures_dir / "gvp.png", Selection(0.5))
    for name in ("ap.png", "sweep.png", "errors.png", "gvp.png"):
        _png(outputs.figures_dir / name)


def _closest_pair(colours) -> float:
    lab = render._lab(colours)
    distances = np.linalg.norm(lab[:, None] - lab[None], axis=-1)
    return float(distances[~np.eye(len(colours), dtype=bool)].min())


def test_forty_classes_get_forty_distinct_colours_and_the_first_twenty_keep_theirs(tmp_path):
    import matplotlib

    assert np.allclose(render._lab([[255, 255, 255], [0, 0, 0]]), [[100, 0, 0], [0, 0, 0]], atol=0.05)
    tab20 = np.array(matplotlib.colormaps["tab20"].colors) * 255  # (dark, light) pairs: the darks first, then lights
    assert np.allclose(render.PALETTE, np.concatenate([tab20[0::2], tab20[1::2]]), atol=0.5)
    ids = [3 * k + 2 for k in range(40)]  # sparse ids, as your own data may have
    renderer = render.Renderer(ClassMap(tuple(ids), tuple(f"c{k}" for k in ids)))
    colours = np.stack([renderer.colour(i) for i in ids])
    assert len({tuple(c) for c in colours}) == 40  # a fixed 20-list gave class 21 the colour of class 1
    assert _closest_pair(colours) >= _closest_pair(render.PALETTE) > 16  # as far apart as tab20's closest pair
    assert np.array_equal(colours[:20], render.PALETTE)  # the course's 20 classes look as before
    course = render.Renderer(ClassMap(tuple(range(1, 21)), tuple(f"c{k}" for k in range(20))))
    assert np.array_equal(np.stack([course.colour(i) for i in range(1, 21)]), render.PALETTE)
    assert _closest_pair(render.palette(100)) > 16
    # every run of the runs figure its own line colour: matplotlib's first 10, then distinct ones
    curves = {f"run{k}": [(10, k / 20), (20, k / 15)] for k in range(12)}
    fig = plots.runs_ap50(curves, tmp_path / "runs.png")
    lines = [matplotlib.colors.to_rgb(line.get_color()) for line in fig.axes[0].get_lines()]
    cycle = [matplotlib.colors.to_rgb(c) for c in matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]]
    assert len(set(lines)) == 12 and np.allclose(lines[:10], cycle[:10], atol=1e-6)
