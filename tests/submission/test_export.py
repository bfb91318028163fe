"""Detections -> submission: dataset ids through the class map, thresholds, validity, loadRes."""

import json

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO

from tinyvoc.core.errors import TinyVocError
from tinyvoc.core.rle import decode_mask, encode_mask
from tinyvoc.dataset.record import ClassMap
from tinyvoc.inference.cache_file import Predictions
from tinyvoc.inference.model_runner import instances_to_detections
from tinyvoc.inference.selection import Selection
from tinyvoc.submission.check import SUBMISSION_KEYS
from tinyvoc.submission.export import export_submission

CLASS_MAP = ClassMap(ids=(2, 5, 9), names=("circle", "square", "triangle"))


@pytest.fixture()
def test_json(tmp_path):
    path = tmp_path / "test.json"
    images = [
        {"id": 17, "file_name": "a.jpg", "height": 37, "width": 53},
        {"id": 40, "file_name": "b.jpg", "height": 20, "width": 30},
    ]
    path.write_text(
        json.dumps(
            {"images": images, "categories": [{"id": i, "name": n} for i, n in zip(CLASS_MAP.ids, CLASS_MAP.names)]}
        )
    )
    return path


def _det(image_id, category_id, score, shape):
    mask = np.zeros(shape, bool)
    mask[2:9, 3:11] = True
    return {
        "image_id": image_id,
        "category_id": category_id,
        "score": score,
        "bbox": [3, 2, 8, 7],
        "segmentation": encode_mask(mask),
    }


def test_instances_map_contiguous_classes_to_dataset_ids():
    from detectron2.structures import Boxes, Instances

    inst = Instances((37, 53))
    inst.pred_boxes = Boxes(torch.tensor([[1.0, 2.0, 11.0, 22.0], [0, 0, 5, 5], [3, 3, 9, 9]]))
    inst.scores = torch.tensor([0.9, 0.5, 0.2])
    inst.pred_classes = torch.tensor([0, 1, 2])
    masks = torch.zeros(3, 37, 53, dtype=torch.bool)
    masks[0, 2:22, 1:11] = True
    inst.pred_masks = masks
    rows = instances_to_detections(inst, 17, CLASS_MAP)
    assert [r["category_id"] for r in rows] == [2, 5, 9]  # not index + 1
    assert rows[0]["bbox"] == [1.0, 2.0, 10.0, 20.0]
    assert rows[0]["segmentation"]["size"] == [37, 53]
    assert np.array_equal(decode_mask(rows[0]["segmentation"]).astype(bool), masks[0].numpy())


def select_detections(dets, threshold, max_per_image=100, class_thresholds=None):
    return Selection.of(threshold, class_thresholds, max_per_image).apply(dets, keys=SUBMISSION_KEYS)


def test_select_applies_threshold_class_thresholds_and_cap():
    dets = [_det(17, 2, s, (37, 53)) for s in (0.9, 0.6, 0.3, 0.1)] + [_det(40, 9, 0.35, (20, 30))]
    assert [d["score"] for d in select_detections(dets, 0.5)] == [0.9, 0.6]
    assert [d["score"] for d in select_detections(dets, 0.2, max_per_image=2)] == [0.9, 0.6, 0.35]
    assert [d["score"] for d in select_detections(dets, 0.5, class_thresholds={9: 0.3})] == [0.9, 0.6, 0.35]
    assert set(select_detections(dets, 0.5)[0]) == {"image_id", "category_id", "segmentation", "score"}
    assert select_detections(dets, 0.99) == []


def test_export_writes_valid_file_loadable_by_coco(test_json, tmp_path):
    cached = Predictions("test", [_det(17, 2, 0.9, (37, 53)), _det(40, 5, 0.4, (20, 30))], 0.01)
    target = tmp_path / "submission.json"
    report = export_submission(cached, test_json, target, Selection(0.3))
    assert report.ok and report.num_instances == 2
    rows = json.loads(target.read_text())
    gt = COCO(str(test_json))
    gt.dataset.setdefault("annotations", [])
    gt.createIndex()
    assert len(gt.loadRes(rows).anns) == 2


def test_export_with_nothing_above_threshold_writes_empty_valid_list(test_json, tmp_path):
    cached = Predictions("test", [_det(17, 2, 0.2, (37, 53))], 0.01)
    report = export_submission(cached, test_json, tmp_path / "s.json", Selection(0.9))
    assert report.ok and json.loads((tmp_path / "s.json").read_text()) == []
    assert sorted(report.images_without_detections) == [17, 40]


def test_export_refuses_invalid_and_keeps_previous_file(test_json, tmp_path):
    target = tmp_path / "submission.json"
    target.write_text("[]")
    bad = _det(17, 2, 0.9, (20, 30))  # mask size differs from image 17's 37x53
    with pytest.raises(TinyVocError, match="refusing to write an invalid submission"):
        export_submission(Predictions("test", [bad], 0.01), test_json, target, Selection(0.5))
    assert target.read_text() == "[]"
    with pytest.raises(TinyVocError, match="below the cache's floor"):
        export_submission(Predictions("test", [], 0.05), test_json, target, Selection(0.01))


def test_export_from_a_read_cache_still_checks_changed_masks(test_json, tmp_path):
    """Masks the cache checked skip the parse; one changed after loading is parsed and refused."""
    from tinyvoc.inference.cache_file import read_cache, write_cache

    dets = [_det(17, 2, 0.9, (37, 53)), _det(40, 5, 0.4, (20, 30))]
    cache = tmp_path / "predictions" / "test-k.jsonl"
    write_cache(cache, Predictions("test", dets, 0.01, key="k"))
    cached = read_cache(cache)
    assert len(cached.checked_rles) == 2
    target = tmp_path / "submission.json"
    assert export_submission(cached, test_json, target, Selection(0.3)).num_instances == 2
    cached.detections[0]["segmentation"]["counts"] = "l57"  # does not add up to 37 x 53
    with pytest.raises(TinyVocError, match="add up to 195 pixels"):
        export_submission(cached, test_json, target, Selection(0.3))
    assert len(json.loads(target.read_text())) == 2  # the good file stays
    assert [p.name for p in tmp_path.glob(".*.tmp")] == []


def test_hand_in_says_what_to_upload_and_on_colab_downloads_it(on_colab, tmp_path):
    """04's last export line: the file alone is uploaded, the record beside it is not; Colab's browser gets it."""
    from google.colab import files

    from tinyvoc.submission.export import hand_in

    target = tmp_path / "output" / "submission.json"
    target.parent.mkdir()
    target.write_text("[]")
    files.downloaded.clear()
    said = hand_in(target)
    assert files.downloaded == [str(target)]
    assert said.startswith(f"To upload: submission.json alone, at {target}; your browser is downloading it")
    assert "submission_source.json beside it records which run made it: keep it, do not upload it" in said


def test_hand_in_off_colab_downloads_nothing(tmp_path, monkeypatch):
    from tinyvoc.submission.export import hand_in

    monkeypatch.delenv("KAGGLE_KERNEL_RUN_TYPE", raising=False)
    assert "it is on this machine" in hand_in(tmp_path / "submission.json")
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Batch")
    assert "download it from the notebook's Output tab" in hand_in(tmp_path / "submission.json")
