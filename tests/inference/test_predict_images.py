"""``tinyvoc predict``: the trained model on a folder of new images, no json; cached image by image.

A folder as people have them: a stem clash (``a.jpg`` beside ``a.png``), a subfolder, a file that is no image
and an empty one. The run is the shared briefly trained sample (``trained_sample``); the model's calls are
counted, so a resumed folder is seen to predict only what the interrupted one had not.
"""

import contextlib
import io
import json
import shutil

import pytest
from PIL import Image
from pycocotools.coco import COCO

from tinyvoc.deliverables import predict_new_images
from tinyvoc.inference import model_runner
from tinyvoc.inference.trained_run import TrainedRun


@pytest.fixture
def folder(trained_sample, tmp_path):
    from tinyvoc.dataset.record import DatasetRecord

    test_images = DatasetRecord.load(trained_sample).data_files.test_images
    first, second, third = sorted(test_images.glob("*.jpg"))[:3]
    new = tmp_path / "new"
    (new / "sub").mkdir(parents=True)
    shutil.copy(first, new / "a.jpg")
    Image.open(second).save(new / "a.png")  # the same stem, another picture
    shutil.copy(third, new / "sub" / "b.jpg")
    (new / "broken.jpg").write_text("<html>not an image</html>")
    (new / "empty.png").write_bytes(b"")
    return new


@pytest.fixture
def model_calls(monkeypatch):
    """Every image the model is called on, in order; ``stop_after``: raise as an interruption would."""
    calls, limit = [], {}
    real = model_runner.BatchPredictor.__call__

    def counted(self, images, sizes):
        if "stop_after" in limit and len(calls) >= limit["stop_after"]:
            raise KeyboardInterrupt
        calls.extend(sizes)
        return real(self, images, sizes)

    monkeypatch.setattr(model_runner.BatchPredictor, "__call__", counted)
    return calls, limit


def test_a_folder_with_a_stem_clash_and_unreadable_files(trained_sample, folder, tmp_path, model_calls, capsys):
    run = TrainedRun.load(trained_sample)
    out = tmp_path / "out"
    written = predict_new_images(run, [folder], out, run.selection(0.001), batch_size=1)
    said = capsys.readouterr().out
    assert "2 file(s) could not be read and were skipped" in said and "broken.jpg" in said and "empty.png" in said
    assert "5/5 images" in said  # the progress line counts every file, the unreadable ones too
    images = json.loads((out / "images.json").read_text())["images"]
    assert [im["file_name"] for im in images] == ["a.jpg", "a.png", "sub/b.jpg"]
    assert {(p.name) for p in written.masks.glob("*.png")} == {"a_jpg.png", "a_png.png", "b.png"}
    assert {p.name for p in written.overlays.glob("*.jpg")} == {"a_jpg.jpg", "a_png.jpg", "b.jpg"}
    results = json.loads((out / "results.json").read_text())
    assert results and {r["category_id"] for r in results} <= set(run.record.category_ids)
    with contextlib.redirect_stdout(io.StringIO()):
        loaded = COCO(str(out / "images.json")).loadRes(str(out / "results.json"))  # COCO results against images
    assert len(loaded.getAnnIds()) == len(results) == written.instances
    prelabels = json.loads(written.prelabels.read_text())
    assert len(prelabels["images"]) == 3 and len(prelabels["annotations"]) <= len(results)
    assert "predict/a_png.json" in " ".join(__import__("zipfile").ZipFile(out / "predictions.zip").namelist())


def test_an_interrupted_predict_resumes_where_it_stopped(trained_sample, folder, tmp_path, model_calls):
    run = TrainedRun.load(trained_sample)
    calls, limit = model_calls
    out = tmp_path / "out"
    limit["stop_after"] = 2
    with pytest.raises(KeyboardInterrupt):
        predict_new_images(run, [folder], out, batch_size=1)
    assert len(calls) == 2 and not (out / "results.json").exists()  # nothing half-written
    del limit["stop_after"]
    first = predict_new_images(run, [folder], out, batch_size=1)
    assert len(calls) == 3  # only the image the interruption left
    again = predict_new_images(run, [folder], out, batch_size=1)
    assert len(calls) == 3 and again.instances == first.instances  # all from the cache


def test_evaluate_scores_a_split_from_its_cache_as_cocoeval_does(trained_sample, tmp_path, capsys):
    """``tinyvoc evaluate --split val``: the project's cached predictions (made where missing), scored; the saved
    numbers are pycocotools' COCOeval's on the same cache at the same selection."""
    from pycocotools.cocoeval import COCOeval

    from tinyvoc import cli
    from tinyvoc.inference import cached_predictions
    from tinyvoc.inference.selection import Selection

    project = tmp_path / "project"
    project.mkdir()
    (project / "output").symlink_to(trained_sample.root)  # the shared trained project, read where it is
    argv = ["evaluate", "--split", "val", "--score-thresh", "0.01", "--project-dir", str(project)]
    assert cli.main(argv) == 0
    said = capsys.readouterr().out
    assert "validation mask AP50" in said and "validation box  AP50" in said and "class (id)" in said
    saved = json.loads((trained_sample.root / "val_metrics.json").read_text())
    val = cached_predictions.predict_split(TrainedRun.load(trained_sample), "val")
    kept = Selection.of(0.01).apply(val.detections)
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(val.images.json_path))
        ev = COCOeval(gt, gt.loadRes([{k: v for k, v in r.items() if k != "bbox"} for r in kept]), "segm")
        ev.evaluate(), ev.accumulate(), ev.summarize()
    assert (saved["segm"]["AP"], saved["segm"]["AP50"]) == (pytest.approx(ev.stats[0]), pytest.approx(ev.stats[1]))
    assert cli.main(["evaluate", "--split", "test", "--project-dir", str(project)]) == 1  # the sample's: unlabelled
    assert "has no annotations" in capsys.readouterr().err
