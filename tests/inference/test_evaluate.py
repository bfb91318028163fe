"""Local validation metrics: AP on known cases, per-class AP50, threshold sweep, error matching."""

import json

import numpy as np
import pytest

from tinyvoc.core.errors import TinyVocError
from tinyvoc.core.rle import encode_mask
from tinyvoc.inference import evaluate
from tinyvoc.inference.cache_file import Predictions
from tinyvoc.inference.selection import Selection
from tinyvoc.inference.trained_run import read_split


def val_predictions(path, detections, score_floor=0.01) -> Predictions:
    """Predictions on the validation split whose json is ``path`` (no image files needed)."""
    return Predictions("val", detections, score_floor, images=read_split("val", path, path.parent, check_files=False))


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
    errors = evaluate.match_errors(val_predictions(path, dets), Selection(0.5))
    assert [a["id"] for a in errors[8]["missed"]] == [3]
    assert [d["category_id"] for d in errors[8]["false_positives"]] == [3]
    assert errors[5] == {"missed": [], "false_positives": [], "num_ground_truth": 1}


def test_sweep_and_best_threshold(gt_json):
    path, boxes = gt_json
    dets = _perfect(boxes, score=0.6) + [_det(5, 3, 40, 40, 10, 0.3)]  # one low-score false positive
    dets[1]["score"] = 0.2  # a true positive below the false positive
    cached = val_predictions(path, dets, 0.01)
    rows = evaluate.threshold_sweep(evaluate.Matching(cached), Selection(0.5), thresholds=(0.001, 0.1, 0.25, 0.5))
    assert [r["threshold"] for r in rows] == [0.1, 0.25, 0.5]  # below the cache floor is not offered
    assert [r["instances"] for r in rows] == [4, 3, 2]
    assert rows[0]["AP50"] > rows[2]["AP50"]  # dropping the 0.2 true positive loses recall
    assert evaluate.best_threshold(rows) == 0.1
    metrics = evaluate.evaluate_cached(cached, Selection(0.1), save_to=path.parent / "m.json")
    assert json.loads((path.parent / "m.json").read_text())["segm"]["AP50"] == pytest.approx(metrics["segm"]["AP50"])
    with pytest.raises(TinyVocError, match="no ground truth"):
        evaluate.Matching(Predictions("test", [], 0.01))


def test_sweep_from_one_matching_equals_evaluating_each_threshold(tmp_path):
    """Many overlapping detections, duplicates, wrong classes, ties and more than the per-image cap."""
    rng = np.random.default_rng(3)
    images = [{"id": 100 + k, "file_name": f"{k}.jpg", "height": 60, "width": 70} for k in range(6)]
    anns, dets = [], []
    for image in images:
        for _ in range(int(rng.integers(1, 5))):
            c, x, y, s = (
                int(rng.integers(1, 4)),
                int(rng.integers(0, 30)),
                int(rng.integers(0, 20)),
                int(rng.integers(5, 18)),
            )
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": image["id"],
                    "category_id": c,
                    "segmentation": [[x, y, x + s, y, x + s, y + s, x, y + s]],
                    "area": s * s,
                    "bbox": [x, y, s, s],
                    "iscrowd": 0,
                }
            )
            for _ in range(int(rng.integers(1, 4))):  # near copies, one of them a duplicate or wrong class
                dx, dy = (int(v) for v in rng.integers(-3, 4, size=2))
                cls = c if rng.random() < 0.8 else int(rng.integers(1, 4))
                dets.append(_det(image["id"], cls, max(0, x + dx), max(0, y + dy), s, round(float(rng.random()), 2)))
        for _ in range(int(rng.integers(5, 15))):  # false positives, scores rounded so some tie
            x, y, s = int(rng.integers(0, 40)), int(rng.integers(0, 30)), int(rng.integers(3, 10))
            dets.append(_det(image["id"], int(rng.integers(1, 4)), x, y, s, round(float(rng.random()), 1)))
    path = tmp_path / "val.json"
    categories = [{"id": i, "name": str(i)} for i in (1, 2, 3)]
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": categories}))
    cached = val_predictions(path, dets, 0.0)
    thresholds = (0.0, 0.1, 0.25, 0.3, 0.5, 0.7, 0.9, 0.99, 1.5)  # none kept at 1.5
    matching = evaluate.Matching(cached)
    for cap, class_thresholds in ((100, {}), (8, {}), (8, {2: 0.6}), (100, {1: 0.05, 3: 0.8})):
        base = Selection.of(0.5, class_thresholds, cap)
        rows = evaluate.threshold_sweep(matching, base, thresholds)
        for row in rows:
            kept = base.at(row["threshold"]).apply(cached.detections)
            alone = evaluate.evaluate_detections(kept, path, iou_types=("segm",), per_class=True)["segm"]
            scored = matching.scores(base.at(row["threshold"]))
            assert row["instances"] == scored["instances"] == len(kept)
            assert (row["AP"], row["AP50"]) == pytest.approx((alone["AP"], alone["AP50"]), abs=1e-12)
            if kept:
                assert scored["per_class_AP50"] == pytest.approx(alone["per_class_AP50"], abs=1e-12, nan_ok=True)
        assert len({round(r["AP"], 6) for r in rows}) > 2  # the thresholds really change the result
    assert rows[-1]["instances"] > 0  # at 1.5 the classes with their own thresholds still keep detections
    nothing = evaluate.threshold_sweep(matching, Selection(0.5), (1.5,))
    assert nothing == [{"threshold": 1.5, "AP": 0.0, "AP50": 0.0, "instances": 0}]


def test_ties_go_to_the_lowest_threshold_and_the_advice_says_so():
    flat = [{"threshold": t, "AP": 0.4, "AP50": 0.6, "instances": n} for t, n in ((0.01, 900), (0.1, 500), (0.7, 90))]
    assert evaluate.best_threshold(flat) == 0.01
    advice = evaluate.threshold_advice(flat)
    assert advice.startswith("best threshold on validation (AP50): 0.01 (AP50 0.600)")
    assert "every threshold from 0.01 to 0.7 gives the same AP50" in advice
    partial = [dict(flat[0], AP50=0.5), flat[1], flat[2]]
    assert evaluate.best_threshold(partial) == 0.1
    assert "0.7 tie with it" in evaluate.threshold_advice(partial)
    clear = [flat[0], dict(flat[1], AP50=0.7), flat[2]]
    assert evaluate.threshold_advice(clear) == "best threshold on validation (AP50): 0.1 (AP50 0.700)"
