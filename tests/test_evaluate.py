"""Local validation metrics: AP on known cases, per-class AP50, threshold sweep, error matching."""

import json

import numpy as np
import pytest
from tinyvoc import evaluate
from tinyvoc.rle import encode_mask


@pytest.fixture()
def gt_json(tmp_path):
    """Two images; image 5 has a square (category 3), image 8 a square and a rectangle (category 7)."""
    boxes = {1: (5, 3, 10, 20, 20), 2: (8, 3, 30, 30, 15), 3: (8, 7, 2, 2, 12)}
    anns = [
        {
            "id": i,
            "image_id": im,
            "category_id": c,
            "segmentation": [[x, y, x + s, y, x + s, y + s, x, y + s]],
            "area": s * s,
            "bbox": [x, y, s, s],
            "iscrowd": 0,
        }
        for i, (im, c, x, y, s) in boxes.items()
    ]
    data = {
        "images": [
            {"id": 5, "file_name": "a.jpg", "height": 60, "width": 70},
            {"id": 8, "file_name": "b.jpg", "height": 60, "width": 70},
        ],
        "annotations": anns,
        "categories": [{"id": 3, "name": "square"}, {"id": 7, "name": "rect"}],
    }
    path = tmp_path / "val.json"
    path.write_text(json.dumps(data))
    return path, boxes


def _det(image_id, category_id, x, y, s, score):
    mask = np.zeros((60, 70), np.uint8)
    mask[y : y + s, x : x + s] = 1
    return {
        "image_id": image_id,
        "category_id": category_id,
        "score": score,
        "bbox": [x, y, s, s],
        "segmentation": encode_mask(mask),
    }


def _perfect(boxes, score=0.9):
    return [_det(im, c, x, y, s, score) for im, c, x, y, s in boxes.values()]


def test_perfect_detections_score_one(gt_json):
    path, boxes = gt_json
    result = evaluate.evaluate_detections(_perfect(boxes), path, per_class=True)
    assert result["segm"]["AP50"] == pytest.approx(1.0)
    assert result["segm"]["per_class_AP50"] == {3: pytest.approx(1.0), 7: pytest.approx(1.0)}
    assert evaluate.evaluate_detections([], path)["segm"]["AP"] == 0.0


def test_wrong_class_counts_as_miss_and_false_positive(gt_json):
    path, boxes = gt_json
    dets = _perfect(boxes)
    dets[2]["category_id"] = 3  # the rect labelled as square
    result = evaluate.evaluate_detections(dets, path, per_class=True)
    assert result["segm"]["per_class_AP50"][7] == pytest.approx(0.0)
    errors = evaluate.match_errors({"gt_json": str(path), "detections": dets}, 0.5)
    assert [a["id"] for a in errors[8]["missed"]] == [3]
    assert [d["category_id"] for d in errors[8]["false_positives"]] == [3]
    assert errors[5] == {"missed": [], "false_positives": [], "num_ground_truth": 1}


def test_sweep_and_best_threshold(gt_json):
    path, boxes = gt_json
    dets = _perfect(boxes, score=0.6) + [_det(5, 3, 40, 40, 10, 0.3)]  # one low-score false positive
    dets[1]["score"] = 0.2  # a true positive below the false positive
    cached = {"gt_json": str(path), "detections": dets, "score_floor": 0.01}
    rows = evaluate.threshold_sweep(cached, thresholds=(0.001, 0.1, 0.25, 0.5))
    assert [r["threshold"] for r in rows] == [0.1, 0.25, 0.5]  # below the cache floor is not offered
    assert [r["instances"] for r in rows] == [4, 3, 2]
    assert rows[0]["AP50"] > rows[2]["AP50"]  # dropping the 0.2 true positive loses recall
    assert evaluate.best_threshold(rows) == 0.1
    metrics = evaluate.evaluate_cached(cached, 0.1, save_to=path.parent / "m.json")
    assert json.loads((path.parent / "m.json").read_text())["segm"]["AP50"] == pytest.approx(metrics["segm"]["AP50"])
    with pytest.raises(ValueError, match="no ground truth"):
        evaluate.threshold_sweep({"detections": [], "score_floor": 0.01, "gt_json": None})
