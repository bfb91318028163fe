"""The interactive view, driven through its ipywidgets: what it draws, scores and counts is what the export writes."""

import json
import types
from collections import Counter, defaultdict

import pytest

from tinyvoc.inference import cached_predictions, evaluate
from tinyvoc.inference.trained_run import TrainedRun
from tinyvoc.runtime import kaggle
from tinyvoc.submission import export
from tinyvoc.submission.check import validate_submission
from tinyvoc.visualize import inspector


@pytest.fixture(scope="module")
def parts(trained_sample):
    run = TrainedRun.load(trained_sample, "final")
    test = cached_predictions.predict_split(run, "test")
    val = cached_predictions.predict_split(run, "val")
    return run, test, val, evaluate.Matching(val)


def _written(path):
    by_image = defaultdict(list)
    for row in json.loads(path.read_text()):
        by_image[row["image_id"]].append((row["category_id"], row["score"], row["segmentation"]))
    return by_image


def _drawn(view):
    return {i: [(d["category_id"], d["score"], d["segmentation"]) for d in dets] for i, dets in view.drawn.items()}


def test_slider_shows_what_the_export_writes_and_the_validation_ap_of_it(parts, tmp_path):
    run, test, val, matching = parts
    target = tmp_path / "submission.json"
    view = inspector.ThresholdView(
        test, run.record.class_map, run.selection(), matching, export.exporter(test, target), n_images=100
    )
    assert view.slider.value == pytest.approx(0.05) and view.slider.min == pytest.approx(-3)  # 10**-3 .. 10**0
    assert set(view.drawn) == set(test.image_ids)  # every test image drawn, so every written row is compared
    pictures, totals = {}, {}
    for threshold in (0.001, 0.05, 0.5, 0.9):
        view.slider.value = threshold
        report = view.export_now()
        written = _written(target)
        assert report.ok and view.selection.threshold == pytest.approx(threshold)
        assert _drawn(view) == {i: written.get(i, []) for i in test.image_ids}
        assert view.kept_per_image == {i: len(written.get(i, [])) for i in test.image_ids}
        per_class = Counter(c for rows in written.values() for c, _, _ in rows)
        assert view.kept_per_class == {c: per_class.get(c, 0) for c in run.record.class_map.ids}
        assert report.num_instances == sum(view.kept_per_image.values())
        metrics = evaluate.evaluate_cached(val, view.selection)["segm"]
        assert (view.scores["AP"], view.scores["AP50"]) == pytest.approx((metrics["AP"], metrics["AP50"]), abs=1e-12)
        assert f"AP50 <b>{metrics['AP50']:.3f}</b>, AP <b>{metrics['AP']:.3f}</b>" in view.summary.value
        assert f"{report.num_instances} instances on {len(test.image_ids)} test images" in view.summary.value
        pictures[threshold], totals[threshold] = view.picture.value, report.num_instances
    assert totals[0.001] > totals[0.5] > 0, totals  # the thresholds really change what is kept
    assert pictures[0.001] != pictures[0.5] and pictures[0.001][:2] == b"\xff\xd8"  # a JPEG
    assert validate_submission(target, test.images.coco).ok


def test_class_filter_and_image_picker_narrow_the_picture_not_the_counts(parts):
    run, test, _, matching = parts
    view = inspector.ThresholdView(test, run.record.class_map, run.selection(0.01), matching, n_images=2)
    everything = _drawn(view)
    assert list(view.drawn) == test.image_ids[:2] and not hasattr(view, "button")
    counts = dict(view.kept_per_class)
    circle = run.record.class_map.ids[0]
    view.classes.value = (circle,)
    assert _drawn(view) == {i: [d for d in rows if d[0] == circle] for i, rows in everything.items()}
    assert view.kept_per_class == counts  # the counts and the AP stay the export's
    view.images.value = (test.image_ids[-1],)
    assert list(view.drawn) == [test.image_ids[-1]]


def test_the_button_exports_at_the_slider_and_says_what_it_wrote(parts, tmp_path, capsys):
    run, test, _, _ = parts
    target = tmp_path / "out" / "submission.json"
    view = inspector.ThresholdView(test, run.record.class_map, run.selection(), None, export.exporter(test, target))
    view.slider.value = 0.2
    view.button.click()
    said = capsys.readouterr().out  # in a notebook, the Output widget under the button shows it
    report = validate_submission(target, test.images.coco)
    assert f"score >= 0.2, at most 100 per image -> {target}" in said and "VALID" in said
    assert report.ok and report.num_instances == sum(view.kept_per_image.values())
    assert all(row["score"] >= 0.2 for row in json.loads(target.read_text()))
    assert "validation" not in view.summary.value  # no matching given: no AP line


def test_front_end_present_only_in_a_kernel_a_notebook_front_end_started(monkeypatch):
    import ipywidgets  # noqa: F401  (imported before IPython is faked below: ipywidgets imports IPython)

    assert not inspector.front_end_present()  # pytest: no IPython kernel
    kernel_shell = type("ZMQInteractiveShell", (), {"kernel": object()})
    colab_shell = type("Shell", (), {"kernel": object(), "__module__": "google.colab._shell"})
    for shell, session, expected in (
        (kernel_shell, None, False),  # papermill's kernel: no server session
        (kernel_shell, "notebooks/04_export_submission.ipynb", True),  # JupyterLab, Kaggle
        (colab_shell, None, True),
        (type("TerminalInteractiveShell", (), {}), "x.ipynb", False),  # IPython in a terminal
    ):
        monkeypatch.setitem(__import__("sys").modules, "IPython", types.SimpleNamespace(get_ipython=shell))
        if session:
            monkeypatch.setenv("JPY_SESSION_NAME", session)
        else:
            monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
        assert inspector.front_end_present() is expected, (shell, session)
    # Kaggle's "Save Version" runs the notebook headless, inside its Jupyter server: static figures there
    monkeypatch.setenv("JPY_SESSION_NAME", "notebooks/04_export_submission.ipynb")
    monkeypatch.setitem(__import__("sys").modules, "IPython", types.SimpleNamespace(get_ipython=kernel_shell))
    monkeypatch.setenv(kaggle.RUN_TYPE_ENV, "Interactive")
    assert inspector.front_end_present()
    monkeypatch.setenv(kaggle.RUN_TYPE_ENV, "Batch")
    assert not inspector.front_end_present()
