"""Predictions in the forms other tools read (issue 36): COCO results, a labelled test set's scores, pre-labels,
mask files, overlays and the zip, for an export of your own with category ids 3, 7, 12.

The detections are the export's own ground truth (plus a mask with a hole and one in two parts), made into a test
split's cache the way the model's are: every output here is checked against what went in, with no model.
"""

import contextlib
import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_util
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from tinyvoc import cli
from tinyvoc.core.rle import decode_mask, encode_mask
from tinyvoc.dataset.record import ClassMap
from tinyvoc.deliverables import write_prediction_outputs
from tinyvoc.inference import split_scores
from tinyvoc.inference.cache_file import Predictions
from tinyvoc.inference.selection import Selection
from tinyvoc.inference.trained_run import read_split
from tinyvoc.submission.check import SUBMISSION_KEYS, validate_submission
from tinyvoc.submission.export import export_submission
from tinyvoc.submission.mask_files import output_stems
from tinyvoc.submission.polygons import segmentation_of

from ..conftest import OWN_CATEGORIES, write_own_export

CLASSES = ClassMap.from_categories(OWN_CATEGORIES)  # ids 3, 7, 12


def ring(height, width):
    """A square with a square hole: no polygon can hold it."""
    mask = np.zeros((height, width), np.uint8)
    mask[40:70, 5:35] = 1
    mask[50:60, 15:25] = 0
    return mask


def two_parts(height, width):
    mask = np.zeros((height, width), np.uint8)
    mask[2:8, 2:10] = 1
    mask[60:70, 80:90] = 1
    return mask


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """(folder, test split read from labels.json, Predictions of it): every ground-truth mask a detection, scores
    descending within each image, plus a ringed and a two-part detection on image 1."""
    folder = write_own_export(tmp_path_factory.mktemp("own") / "export", n=6)
    split = read_split("test", folder / "labels.json", folder)
    coco = split.coco
    detections = []
    for k, ann in enumerate(coco["annotations"]):
        image = next(i for i in coco["images"] if i["id"] == ann["image_id"])
        rle = mask_util.merge(mask_util.frPyObjects(ann["segmentation"], image["height"], image["width"]))
        mask = mask_util.decode(rle)
        if k % 4 == 3:  # a few detections of the wrong class: AP below 1, per class different
            category = next(c for c in CLASSES.ids if c != ann["category_id"])
        else:
            category = ann["category_id"]
        detections.append({"image_id": ann["image_id"], "category_id": category, "score": 0.9 - 0.01 * k,
                           "bbox": list(ann["bbox"]), "segmentation": encode_mask(mask)})  # fmt: skip
    height, width = coco["images"][0]["height"], coco["images"][0]["width"]
    for score, mask in ((0.5, ring(height, width)), (0.4, two_parts(height, width))):
        detections.append({"image_id": 1, "category_id": 7, "score": score, "bbox": [0, 0, 1, 1],
                           "segmentation": encode_mask(mask)})  # fmt: skip
    predictions = Predictions("test", detections, 0.0, [i["id"] for i in coco["images"]], images=split)
    return folder, split, predictions


def project_of(tmp_path, source):
    """An output folder whose dataset record says ``source`` (all the export reads of it)."""
    out = tmp_path / "output"
    out.mkdir()
    (out / "dataset.json").write_text(json.dumps({"source": source}))
    return out


# --- 1. COCO results for your own data; the course's format unchanged ----------------------------------------


def test_own_data_submission_is_coco_results_that_load_res_reads(labelled, tmp_path):
    folder, split, predictions = labelled
    target = project_of(tmp_path, "own") / "submission.json"
    report = export_submission(predictions, split.coco, target, Selection.of(0.0), {"run": "r"})
    assert report.ok, report.summary()
    rows = json.loads(target.read_text())
    assert len(rows) == len(predictions.detections)
    assert all(list(r) == ["image_id", "category_id", "segmentation", "bbox", "score"] for r in rows)
    assert {r["category_id"] for r in rows} == {3, 7, 12}
    for row in rows:  # the box is the mask's
        assert row["bbox"] == pytest.approx(list(mask_util.toBbox(row["segmentation"])))
    with contextlib.redirect_stdout(io.StringIO()):
        results = COCO(str(folder / "labels.json")).loadRes(str(target))
    assert len(results.getAnnIds()) == len(rows) and set(results.getCatIds()) == {3, 7, 12}
    assert json.loads(target.with_name("submission_source.json").read_text())["format"] == "coco"
    assert validate_submission(target, split.coco, format="coco").ok
    refused = validate_submission(target, split.coco)  # the course's grader takes no bbox
    assert not refused.ok and "unexpected key(s) 'bbox'" in refused.errors[0]


def test_the_course_data_keeps_the_graders_four_keys(labelled, tmp_path):
    _, split, predictions = labelled
    target = project_of(tmp_path, "sample") / "submission.json"
    assert export_submission(predictions, split.coco, target, Selection.of(0.0)).ok
    assert all(tuple(r) == SUBMISSION_KEYS for r in json.loads(target.read_text()))


def test_a_coco_results_box_is_checked(labelled):
    _, split, predictions = labelled
    row = {k: predictions.detections[0][k] for k in ("image_id", "category_id", "segmentation", "score")}
    report = validate_submission([{**row, "bbox": [1, 2, -3, 4]}, {**row}, {**row, "bbox": "x"}], split.coco,
                                 format="coco")  # fmt: skip
    assert report.num_errors == 3 and report.num_instances == 0
    assert "width and height must not be negative" in report.errors[0]
    assert "missing key(s) 'bbox'" in report.errors[1] and "bbox must be [x, y, width, height]" in report.errors[2]


def test_validate_takes_the_format_from_the_projects_dataset(labelled, tmp_path, capsys):
    folder, split, predictions = labelled
    out = project_of(tmp_path, "own")
    export_submission(predictions, split.coco, out / "submission.json", Selection.of(0.0))
    common = [str(out / "submission.json"), "--test-json", str(folder / "labels.json"), "--project-dir", str(tmp_path)]
    assert cli.main(["validate", *common]) == 0  # the record: your own data, so COCO results
    assert cli.main(["validate", *common, "--format", "course"]) == 1
    assert "unexpected key(s) 'bbox'" in capsys.readouterr().err


# --- 2. a labelled test set is scored ----------------------------------------------------------------------


def test_a_labelled_test_set_is_scored_as_cocoeval_scores_it(labelled):
    folder, _, predictions = labelled
    selection = Selection.of(0.45)
    metrics = split_scores.score_split(predictions, selection)
    kept = selection.apply(predictions.detections)
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(folder / "labels.json"))
        for kind in ("segm", "bbox"):
            ev = COCOeval(gt, gt.loadRes([{k: v for k, v in r.items() if kind == "bbox" or k != "bbox"} for r in kept]),
                          kind)  # fmt: skip
            ev.evaluate(), ev.accumulate(), ev.summarize()
            assert metrics[kind]["AP"] == pytest.approx(ev.stats[0]) and metrics[kind]["AP50"] == pytest.approx(
                ev.stats[1]
            )
    assert 0 < metrics["segm"]["AP50"] < 1  # the wrong-class detections cost something
    table = split_scores.report(metrics, CLASSES)
    assert "test mask AP50" in table and "test box  AP50" in table
    assert all(f"{n} ({i})" in table for i, n in zip(CLASSES.ids, CLASSES.names))


def test_an_unlabelled_test_json_says_what_to_score_instead(labelled):
    _, split, predictions = labelled
    bare = {k: v for k, v in split.coco.items() if k != "annotations"}
    unlabelled = Predictions("test", predictions.detections, 0.0, images=type(split)("test", split.json_path, bare,
                                                                                      split.items))  # fmt: skip
    with pytest.raises(Exception, match="no annotations.*--split val"):
        split_scores.score_split(unlabelled, Selection.of(0.1))


# --- 3 and 4. pre-labels, mask files, overlays, the zip ------------------------------------------------------


def test_a_mask_becomes_polygons_every_part_kept_and_a_ring_stays_rle():
    parts = segmentation_of(encode_mask(two_parts(72, 96)))
    assert isinstance(parts, list) and len(parts) == 2
    redrawn = mask_util.decode(mask_util.merge(mask_util.frPyObjects(parts, 72, 96)))
    assert (redrawn == two_parts(72, 96)).all()  # +0.5: the polygons cover the pixels exactly
    rle = encode_mask(ring(72, 96))
    assert segmentation_of(rle) == rle


def test_outputs_round_trip_the_datasets_ids(labelled, tmp_path):
    folder, split, predictions = labelled
    selection = Selection.of(0.3)
    (tmp_path / "submission.json").write_text("[]")
    written = write_prediction_outputs(predictions, CLASSES, selection, tmp_path, archive=tmp_path / "p.zip",
                                       results=[tmp_path / "submission.json"], progress=None)  # fmt: skip
    kept = selection.apply(predictions.detections)
    assert written.instances == len(kept) and written.images == 6
    prelabels = json.loads(written.prelabels.read_text())
    assert [c["id"] for c in prelabels["categories"]] == [3, 7, 12]
    assert len(prelabels["annotations"]) == len(kept) and len(prelabels["images"]) == 6
    by_score = {a["score"]: a for a in prelabels["annotations"]}
    assert isinstance(by_score[0.5]["segmentation"], dict) and by_score[0.5]["attributes"]["score"] == 0.5  # ring
    assert len(by_score[0.4]["segmentation"]) == 2  # two parts, two polygons
    assert {a["category_id"] for a in prelabels["annotations"]} == {3, 7, 12}

    ids = np.asarray(Image.open(written.masks / "p0.png"))
    assert ids.dtype == np.uint16
    described = json.loads((written.masks / "p0.json").read_text())
    image_rows = [r for r in kept if r["image_id"] == 1]
    assert len(described["instances"]) == len(image_rows)
    for k, row in enumerate(image_rows, start=1):
        entry = described["instances"][str(k)]
        assert (entry["category_id"], entry["score"]) == (row["category_id"], round(row["score"], 5))
        assert entry["class"] == CLASSES.name_of(row["category_id"])
        painted = ids == k
        assert painted.any() and (decode_mask(row["segmentation"]).astype(bool) | ~painted).all()
    assert set(np.unique(ids)) <= set(range(len(image_rows) + 1))
    overlay = Image.open(written.overlays / "p0.jpg")
    assert overlay.format == "JPEG" and overlay.size == (96, 72)
    names = set(zipfile.ZipFile(tmp_path / "p.zip").namelist())
    assert {"submission.json", "prelabels/test.json", "masks/test/p5.png", "masks/test/p5.json",
            "overlays/test/p5.jpg"} <= names  # fmt: skip


def test_clashing_stems_keep_both():
    stems = output_stems(["a.jpg", "a.png", "b.jpg", "x/c.jpg", "y/c.jpg", "A.JPG"])
    assert stems == ["a_jpg", "a_png", "b", "x__c_jpg", "y__c_jpg", "A_JPG_"]  # A.JPG is a.jpg on macOS: numbered


def test_the_areas_of_more_than_255_masks():
    """pycocotools' ``area`` overflows a uint8 count at 256 masks; a strong model's split has thousands."""
    from tinyvoc.submission.prelabels import mask_areas

    masks = [encode_mask(np.pad(np.ones((1, 1 + k % 7)), ((0, 3), (0, 9 - k % 7)))) for k in range(300)]
    assert mask_areas(masks) == [1 + k % 7 for k in range(300)]


def test_prelabels_reimported_as_a_dataset_pass_the_check_and_train(labelled, tmp_path):
    """The next round: the pre-labels (polygons, a ring as RLE, scores) beside the images are a dataset of their
    own (``DATASET`` = that folder), which our check passes and detectron2 trains on."""
    import shutil

    from tinyvoc.core.paths import Outputs
    from tinyvoc.dataset.check import check_files
    from tinyvoc.dataset.own_data import prepare
    from tinyvoc.dataset.record import prepare_dataset
    from tinyvoc.training.train import train

    folder, _, predictions = labelled
    written = write_prediction_outputs(predictions, CLASSES, Selection.of(0.3), tmp_path / "out", progress=None)
    export = tmp_path / "round2"
    export.mkdir()
    shutil.copy(written.prelabels, export / "prelabels.json")
    for image in folder.glob("*.jpg"):
        shutil.copy(image, export / image.name)
    outputs = Outputs.at(tmp_path / "project" / "output")
    prepared = prepare(export, outputs.data_dir)
    report = check_files(prepared.files, found=prepared.problems)
    assert report.ok and not report.problems, report.summary()
    record = prepare_dataset(prepared.files, outputs, "own", val_fraction=0.2, own={"name": "round2"})
    assert record.category_ids == [3, 7, 12] and record.mask_format == "bitmask"  # the ring came as RLE
    run = train(outputs, "smoke", max_iter=3, overrides=["TEST.EVAL_PERIOD", 0])
    assert run.finished and run.iteration == 3


def test_a_labelled_test_json_without_areas_scores_the_same(labelled):
    """Some exports leave ``area`` out; COCOeval needs it for its area ranges: it is computed from the mask."""
    _, split, predictions = labelled
    bare = {
        **split.coco,
        "annotations": [{k: v for k, v in a.items() if k != "area"} for a in split.coco["annotations"]],
    }
    without = Predictions("test", predictions.detections, 0.0, images=type(split)("test", split.json_path, bare,
                                                                                  split.items))  # fmt: skip
    selection = Selection.of(0.45)
    assert split_scores.score_split(without, selection) == split_scores.score_split(predictions, selection)


def test_an_overlay_blends_each_pixel_half_its_owners_colour_and_labels_are_white_on_it(tmp_path):
    from tinyvoc.visualize.overlays import OverlayWriter

    rng = np.random.default_rng(5)
    photo = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    Image.fromarray(photo).save(tmp_path / "a.png")
    ids = np.zeros((40, 60), np.uint16)
    ids[20:40, 30:60], ids[25:40, 40:60] = 2, 1  # the best (1) on top of the other
    rows = [{"category_id": 3, "score": 0.9, "bbox": [40, 25, 20, 15]}, {"category_id": 12, "score": 0.5,
            "bbox": [30, 20, 30, 20]}]  # fmt: skip
    writer = OverlayWriter(CLASSES)
    drawn = np.asarray(writer.draw_ids(tmp_path / "a.png", rows, ids)).astype(int)
    for instance, category in ((1, 3), (2, 12)):
        inside = (ids == instance) & ~_boxes_and_labels(40, 60, rows)
        expected = (photo[inside].astype(int) + writer.renderer.colour(category).astype(int)) // 2
        assert np.array_equal(drawn[inside], expected)
    untouched = (ids == 0) & ~_boxes_and_labels(40, 60, rows)
    assert np.array_equal(drawn[untouched], photo[untouched])
    red, blue = (200, 0, 0), (0, 0, 200)
    one, other = np.asarray(writer.renderer.label("cat 50%", red)), np.asarray(writer.renderer.label("cat 50%", blue))
    assert one.shape == other.shape and tuple(one[0, 0]) == red and tuple(other[0, 0]) == blue
    ink = one[:, :, 1]  # green, 0 in both colours: how white each pixel is made, the text's shape
    assert ink.max() > 128 and np.array_equal(other[:, :, 1], ink)  # the same text, inked onto either colour


def _boxes_and_labels(height, width, rows):
    """Where boxes' outlines and labels may be drawn: each box's edges and a band under its top-left corner."""
    near = np.zeros((height, width), bool)
    for row in rows:
        x, y, w, h = (int(v) for v in row["bbox"])
        near[max(0, y - 1) : y + 16, max(0, x - 1) :] = True
        near[y : y + h + 1, [min(x, width - 1), min(x + w, width - 1)]] = True
        near[[min(y + h, height - 1)], x : x + w + 1] = True
    return near


def test_label_studio_tasks_hold_every_part_and_fill_a_hole(labelled, tmp_path):
    """Label Studio's own converter keeps only a first polygon and stops at an RLE mask: the tasks written instead
    hold each part as a region, and a mask with a hole as its outline."""
    from tinyvoc.submission.label_studio import config_path, tasks_path

    folder, split, predictions = labelled
    written = write_prediction_outputs(predictions, CLASSES, Selection.of(0.3), tmp_path, archive=tmp_path / "p.zip",
                                       progress=None)  # fmt: skip
    tasks = json.loads(tasks_path(written.prelabels).read_text())
    coco = json.loads(written.prelabels.read_text())
    assert [t["data"]["image"] for t in tasks] == ["/data/local-files/?d=" + im["file_name"] for im in coco["images"]]
    config = config_path(written.prelabels).read_text()
    assert all(f'<Label value="{name}"/>' in config for name in CLASSES.names)

    def drawn(regions, height, width):
        polygons = [[v * (width if k % 2 == 0 else height) / 100 for point in r["value"]["points"]
                     for k, v in enumerate(point)] for r in regions]  # fmt: skip
        return mask_util.decode(mask_util.merge(mask_util.frPyObjects(polygons, height, width)))

    for task, image in zip(tasks, coco["images"]):
        regions = task["predictions"][0]["result"]
        annotations = [a for a in coco["annotations"] if a["image_id"] == image["id"]]
        for number, annotation in enumerate(annotations, start=1):
            own = [r for r in regions if r["id"].split("-")[0] == str(number)]
            assert {r["score"] for r in own} == {annotation["score"]}
            assert {r["value"]["polygonlabels"][0] for r in own} == {CLASSES.name_of(annotation["category_id"])}
            height, width = image["height"], image["width"]
            if isinstance(annotation["segmentation"], dict):  # the ring: its outline, the hole filled
                filled = ring(height, width)
                filled[50:60, 15:25] = 1
                assert len(own) == 1 and np.array_equal(drawn(own, height, width), filled)
            else:
                assert len(own) == len(annotation["segmentation"])  # every part
                expected = mask_util.frPyObjects(annotation["segmentation"], height, width)
                assert np.array_equal(drawn(own, height, width), mask_util.decode(mask_util.merge(expected)))
    assert sum(len(t["predictions"][0]["result"]) for t in tasks) == len(coco["annotations"]) + 1  # two parts: +1
    names = set(zipfile.ZipFile(tmp_path / "p.zip").namelist())
    assert {"prelabels/test.label-studio.json", "prelabels/label-studio.xml"} <= names


def test_the_views_export_button_writes_both_pre_label_files_at_its_threshold(labelled, tmp_path):
    from tinyvoc.submission.export import exporter
    from tinyvoc.submission.label_studio import tasks_path

    folder, split, predictions = labelled
    for threshold in (0.3, 0.85):
        (tmp_path / str(threshold)).mkdir()
        output = project_of(tmp_path / str(threshold), "own")
        exporter(predictions, output / "submission.json")(Selection.of(threshold))
        prelabels = output / "prelabels" / "test.json"
        kept = json.loads(prelabels.read_text())["annotations"]
        assert len(kept) == len(Selection.of(threshold).apply(predictions.detections)) and kept
        tasks = json.loads(tasks_path(prelabels).read_text())
        assert {r["score"] for t in tasks for r in t["predictions"][0]["result"]} == {a["score"] for a in kept}


def test_a_label_studio_tasks_image_url_keeps_an_odd_file_name_whole():
    """Label Studio reads the file's path from the URL's ``d=``: a space, '&' or '#' in a name must survive it."""
    from urllib.parse import parse_qs, urlsplit

    from tinyvoc.submission.label_studio import label_studio_task

    image = {"width": 10, "height": 10, "file_name": "trip 2\\a&b #1.jpg"}  # a Windows export's backslash too
    url = json.loads(label_studio_task(image, [], CLASSES, "v"))["data"]["image"]
    assert parse_qs(urlsplit(url).query)["d"] == ["trip 2/a&b #1.jpg"]
