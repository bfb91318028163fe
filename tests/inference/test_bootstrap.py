"""The bootstrap's AP50: COCO's own with every image once, and COCO's on a dataset with the drawn images copied."""

import json

import numpy as np

from tinyvoc.core.rle import encode_mask
from tinyvoc.inference import bootstrap, evaluate
from tinyvoc.inference.cache_file import Predictions
from tinyvoc.inference.selection import Selection
from tinyvoc.inference.trained_run import read_split

SIZE = 48


def _mask(x, y, s):
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[y : y + s, x : x + s] = 1
    return mask


def synthetic(tmp_path, copies=None, seed=0):
    """A validation json and detections: 24 images, squares of 3 classes, found shifted, missed or invented.
    ``copies``: how often each image appears (new ids for the copies), as a bootstrap draw counts it."""
    rng = np.random.default_rng(seed)
    images, annotations, detections = [], [], []
    plan = []
    for _ in range(24):
        objects = [
            (int(rng.integers(1, 4)), int(rng.integers(0, 30)), int(rng.integers(0, 30)), int(rng.integers(6, 16)))
            for _ in range(int(rng.integers(0, 4)))
        ]
        found = []
        for c, x, y, s in objects:
            if rng.random() < 0.8:
                dx, dy = (int(v) for v in rng.integers(-3, 4, 2))
                found.append((c, max(0, x + dx), max(0, y + dy), s, float(rng.random())))
        for _ in range(int(rng.integers(0, 3))):  # invented
            found.append((int(rng.integers(1, 4)), int(rng.integers(0, 30)), int(rng.integers(0, 30)), 8,
                          float(rng.random() * 0.6)))  # fmt: skip
        plan.append((objects, found))
    counts = copies if copies is not None else [1] * len(plan)
    next_id = 1
    for image, ((objects, found), count) in enumerate(zip(plan, counts)):
        for copy in range(int(count)):
            image_id = 1000 * copy + image + 1
            images.append({"id": image_id, "file_name": f"{image_id}.jpg", "height": SIZE, "width": SIZE})
            for c, x, y, s in objects:
                annotations.append({"id": next_id, "image_id": image_id, "category_id": c, "iscrowd": 0,
                                    "segmentation": [[x, y, x + s, y, x + s, y + s, x, y + s]], "area": s * s,
                                    "bbox": [x, y, s, s]})  # fmt: skip
                next_id += 1
            for c, x, y, s, score in found:
                detections.append({"image_id": image_id, "category_id": c, "score": score, "bbox": [x, y, s, s],
                                   "segmentation": encode_mask(_mask(x, y, s))})  # fmt: skip
    path = tmp_path / f"val-{seed}-{'x'.join(map(str, counts))[:40]}.json"
    categories = [{"id": c, "name": f"class{c}"} for c in (1, 2, 3)]
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    split = read_split("val", path, tmp_path, check_files=False)
    return Predictions("val", detections, 0.0, images=split)


def test_every_image_once_is_cocos_own_ap50_at_every_threshold(tmp_path):
    matching = evaluate.Matching(synthetic(tmp_path))
    for threshold in (0.0, 0.2, 0.5, 0.9):
        selection = Selection(threshold)
        ours = bootstrap.ap50(bootstrap.class_detections(matching, selection), np.ones((1, 24)))[0]
        assert abs(ours - matching.scores(selection)["AP50"]) < 1e-12  # the same sums, in another order


def test_a_draw_scores_as_coco_on_the_drawn_images_copied(tmp_path):
    counts = bootstrap.draws(24, resamples=3, seed=5)
    matching = evaluate.Matching(synthetic(tmp_path))
    classes = bootstrap.class_detections(matching, Selection(0.1))
    ours = bootstrap.ap50(classes, counts)
    assert len(set(np.round(ours, 6))) > 1  # the draws differ
    for row, weights in enumerate(counts):
        copied = evaluate.Matching(synthetic(tmp_path, copies=weights.astype(int)))
        assert abs(ours[row] - copied.scores(Selection(0.1))["AP50"]) < 1e-9


def test_the_interval_of_a_model_against_itself_is_zero_and_of_a_worse_one_clears_it(tmp_path):
    good = bootstrap.class_detections(evaluate.Matching(synthetic(tmp_path)), Selection(0.0))
    worse = bootstrap.class_detections(evaluate.Matching(synthetic(tmp_path)), Selection(0.5))  # loses recall
    assert bootstrap.paired_difference(good, good, 24, 200) == (0.0, 0.0, 0.0)
    difference, low, high = bootstrap.paired_difference(good, worse, 24, 200)
    assert difference > 0 and low <= difference <= high
