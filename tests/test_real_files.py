"""Registration and export on the course's real files in ../shared/tinyvoc (skipped when absent).

The 10 annotated training images register and their masks match pycocotools; the 100 real test
images go through prediction and export with a briefly trained smoke model, and the file is valid
against the real test.json (RLE sizes equal each image's size there) and loads with COCO.loadRes.
"""

import json

import numpy as np
import pytest
from pycocotools.coco import COCO

from tinyvoc.core.paths import DataFiles, Outputs
from tinyvoc.dataset import check as dataset_check
from tinyvoc.dataset.record import prepare_dataset
from tinyvoc.dataset.registry import TEST, TRAIN, register_all
from tinyvoc.inference import cached_predictions
from tinyvoc.inference.selection import Selection
from tinyvoc.inference.trained_run import TrainedRun
from tinyvoc.submission import export
from tinyvoc.training.train import train


@pytest.fixture(scope="module")
def real(shared_tinyvoc, tmp_path_factory):
    files = DataFiles(
        train_json=shared_tinyvoc / "pascal_train_first10.json",
        train_images=shared_tinyvoc / "train_images",
        test_json=shared_tinyvoc / "test.json",
        test_images=shared_tinyvoc / "test_images",
    )
    outputs = Outputs.at(tmp_path_factory.mktemp("real"))
    record = prepare_dataset(files, outputs, "tinyvoc", val_fraction=0.2, seed=0)
    return files, outputs, record


def test_real_files_pass_the_check(real):
    files, _, _ = real
    report = dataset_check.check_dataset(files.train_json, files.train_images, files.test_json, files.test_images)
    assert report.ok, report.summary()


def test_real_files_register_with_matching_masks(real):
    from detectron2.data import DatasetCatalog, MetadataCatalog
    from detectron2.structures import polygons_to_bitmask

    files, _, record = real
    sizes = register_all(record)
    assert sizes[TEST] == 100
    assert sizes[TRAIN] + sizes["tinyvoc_val"] == 10
    assert len(MetadataCatalog.get(TEST).thing_classes) == 20
    assert MetadataCatalog.get(TRAIN).thing_classes[0] == "aeroplane"
    coco = COCO(str(files.train_json))
    checked = 0
    for item in DatasetCatalog.get(TRAIN):
        anns = sorted(coco.imgToAnns[item["image_id"]], key=lambda a: a["id"])
        assert len(anns) == len(item["annotations"])
        for ann, d2 in zip(anns, item["annotations"]):
            ours = polygons_to_bitmask(d2["segmentation"], item["height"], item["width"])
            assert np.array_equal(ours, coco.annToMask(ann).astype(bool))
            assert MetadataCatalog.get(TRAIN).thing_classes[d2["category_id"]] == coco.cats[ann["category_id"]]["name"]
            checked += 1
    assert checked > 0


def test_export_on_the_real_test_images(real):
    files, outputs, record = real
    train(outputs, "smoke", max_iter=2, overrides=["TEST.EVAL_PERIOD", 0])
    cached = cached_predictions.predict_split(TrainedRun.load(outputs, "final"), "test")
    assert cached.image_ids == [im["id"] for im in json.loads(files.test_json.read_text())["images"]]
    report = export.export_submission(cached, files.test_json, outputs.submission, Selection(cached.score_floor))
    assert report.ok, report.summary()
    rows = json.loads(outputs.submission.read_text())
    sizes = {im["id"]: [im["height"], im["width"]] for im in json.loads(files.test_json.read_text())["images"]}
    assert all(r["segmentation"]["size"] == sizes[r["image_id"]] for r in rows)
    gt = COCO(str(files.test_json))
    if rows:
        assert len(gt.loadRes(rows).anns) == len(rows)
    again = cached_predictions.predict_split(TrainedRun.load(outputs, "final"), "test")  # from the cache, no inference
    assert again.key == cached.key and again.detections == cached.detections
