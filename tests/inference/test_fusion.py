"""Fusing runs' cached predictions: a run with itself is that run, order never matters, images and classes never
mix, a hand-made case gives the masks and scores the rule says, the fused file validates, and the cache is reused."""

import json

import numpy as np
import pytest

from tinyvoc.core.errors import TinyVocError
from tinyvoc.core.rle import decode_mask, encode_mask
from tinyvoc.inference import evaluate, fusion
from tinyvoc.inference.cache_file import Predictions, read_cache
from tinyvoc.inference.selection import Selection
from tinyvoc.inference.trained_run import read_split
from tinyvoc.submission.export import export_submission

SHAPE = (40, 50)
IMAGES = [{"id": i, "file_name": f"{i}.jpg", "height": SHAPE[0], "width": SHAPE[1]} for i in (3, 8, 11)]
CATEGORIES = [{"id": c, "name": f"class{c}"} for c in (1, 2, 4)]


def rect(top, left, height, width, shape=SHAPE):
    mask = np.zeros(shape, np.uint8)
    mask[top : top + height, left : left + width] = 1
    return mask


def det(image_id, category_id, score, mask, bbox=None):
    ys, xs = np.nonzero(mask)
    box = bbox or [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]
    return {"image_id": image_id, "category_id": category_id, "score": score, "bbox": box} | {
        "segmentation": encode_mask(mask)
    }


def random_run(seed, n=60, like=None):
    """Many detections on three images and classes: overlapping same-class duplicates, ties, tiny masks.

    With ``like``, another model's view of run ``like``'s objects: each mask moved by up to a pixel,
    rescored, a fifth of them missed, and a few objects of its own.
    """
    rng = np.random.default_rng(seed if like is None else like)
    found = []
    for _ in range(n):
        image, category = int(rng.choice([3, 8, 11])), int(rng.choice([1, 2, 4]))
        box = [int(rng.integers(0, 30)), int(rng.integers(0, 40)), int(rng.integers(1, 12)), int(rng.integers(1, 12))]
        found.append((image, category, box, round(float(rng.uniform(0.05, 1.0)), 1)))  # rounded: some scores tie
    if like is not None:
        rng = np.random.default_rng(seed)
        moved = []
        for image, category, (top, left, h, w), _ in found:
            if rng.random() < 0.8:
                top, left = max(0, top + int(rng.integers(-1, 2))), max(0, left + int(rng.integers(-1, 2)))
                moved.append((image, category, [top, left, h + 2, w + 2], round(float(rng.uniform(0.05, 1.0)), 1)))
        found = moved
        for _ in range(n // 5):
            image, category = int(rng.choice([3, 8, 11])), int(rng.choice([1, 2, 4]))
            box = [
                int(rng.integers(0, 30)),
                int(rng.integers(0, 40)),
                int(rng.integers(1, 12)),
                int(rng.integers(1, 12)),
            ]
            found.append((image, category, box, round(float(rng.uniform(0.05, 1.0)), 1)))
    return [det(image, category, score, rect(*box)) for image, category, box, score in found]


def predictions(rows, key, split="test", floor=0.01, images=None):
    return Predictions(
        split, rows, floor, image_ids=[i["id"] for i in IMAGES], key=key, checkpoint=f"{key}.pth", images=images
    )


def canonical(rows):
    return sorted(
        ((d["image_id"], d["category_id"], d["score"], d["segmentation"]["counts"], tuple(d["bbox"])) for d in rows),
    )


@pytest.fixture()
def val_json(tmp_path):
    """Ground truth for the three images: a few rectangles of each class."""
    rng = np.random.default_rng(7)
    anns = []
    for image in IMAGES:
        for category in (1, 2, 4):
            top, left = int(rng.integers(0, 30)), int(rng.integers(0, 40))
            h, w = int(rng.integers(4, 10)), int(rng.integers(4, 10))
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": image["id"],
                    "category_id": category,
                    "segmentation": [[left, top, left + w, top, left + w, top + h, left, top + h]],
                    "area": w * h,
                    "bbox": [left, top, w, h],
                    "iscrowd": 0,
                }
            )
    path = tmp_path / "val.json"
    path.write_text(json.dumps({"images": IMAGES, "annotations": anns, "categories": CATEGORIES}))
    return path, anns


def test_a_run_fused_with_itself_is_that_run(val_json):
    path, anns = val_json
    images = read_split("val", path, path.parent, check_files=False)
    rows = random_run(0, n=80)
    # near copies of the ground truth scored high, so the AP compared below is not zero
    rows += [det(a["image_id"], a["category_id"], 0.95, rect(a["bbox"][1], a["bbox"][0] + 1, 8, 6)) for a in anns]
    # empty masks (a barely trained model makes them): pycocotools gives two empty masks IoU 0, fusion 1
    rows += [det(8, 2, score, np.zeros(SHAPE, np.uint8), bbox=[1.0, 2.0, 3.0, 4.0]) for score in (0.5, 0.2)]
    member = predictions(rows, "r1", split="val", images=images)
    fused = fusion.fuse([member, member])
    assert canonical(fused.detections) == canonical(rows)  # same masks, same scores, same boxes
    selection = Selection(0.0)
    ours, theirs = evaluate.evaluate_cached(fused, selection), evaluate.evaluate_cached(member, selection)
    assert ours["segm"]["AP50"] > 0.1
    assert (ours["segm"], ours["bbox"]) == (theirs["segm"], theirs["bbox"])
    assert evaluate.Matching(fused).scores(selection) == evaluate.Matching(member).scores(selection)


def test_fusion_is_deterministic_and_independent_of_member_order(tmp_path):
    a, b, c = (predictions(random_run(seed, like=1), key) for seed, key in ((1, "k1"), (2, "k2"), (3, "k3")))
    ab, ba = fusion.fuse([a, b]), fusion.fuse([b, a])
    assert ab.detections == ba.detections and ab.key == ba.key and ab.fusion == ba.fusion
    assert fusion.fuse([a, b]).detections == ab.detections
    assert fusion.fuse([c, a, b]).detections == fusion.fuse([b, c, a]).detections
    assert ab.key != fusion.fuse([a, c]).key != fusion.fuse([a, b], iou_threshold=0.7).key
    merged = len(a.detections) + len(b.detections) - len(ab.detections)
    assert merged > 20  # the two runs really share objects, so the grouping was exercised
    with_cache = fusion.fuse([b, a], cache_dir=tmp_path)
    assert with_cache.detections == ab.detections  # also as written to and read from the cache


def test_different_images_or_classes_never_merge():
    mask = rect(5, 5, 10, 10)
    a = predictions([det(3, 1, 0.8, mask), det(8, 2, 0.6, mask)], "a")
    b = predictions([det(3, 2, 0.8, mask), det(11, 1, 0.6, mask)], "b")
    fused = fusion.fuse([a, b])
    assert sorted((d["image_id"], d["category_id"], d["score"]) for d in fused.detections) == [
        (3, 1, 0.4),
        (3, 2, 0.4),
        (8, 2, 0.3),
        (11, 1, 0.3),
    ]


def test_hand_made_overlaps_give_the_voted_masks_and_mean_scores():
    """Three members; see each case's comment for the arithmetic."""
    a = predictions(
        [
            det(3, 1, 0.9, rect(0, 0, 10, 10)),  # group 1, with b's and c's
            det(3, 2, 0.4, rect(20, 0, 8, 8)),  # group 2, with c's
            det(3, 2, 0.3, rect(20, 1, 8, 8)),  # a's own duplicate of group 2: never in the same group
            det(3, 4, 0.9, rect(0, 26, 10, 10)),  # IoU with c's class-4 mask 60/140 = 0.43: two groups
        ],
        "a",
    )
    b = predictions(
        [
            det(3, 1, 0.6, rect(0, 1, 10, 10)),  # IoU with a's 90/110 = 0.82
            det(8, 4, 0.5, rect(30, 20, 5, 10)),  # only b found it
        ],
        "b",
    )
    c = predictions(
        [
            det(3, 1, 0.6, rect(0, 2, 10, 10)),  # IoU with a's (the group's first) 80/120 = 0.67
            det(3, 2, 0.4, rect(20, 2, 8, 8)),  # IoU with a's first 48/80 = 0.6, equal score
            det(3, 4, 0.3, rect(0, 30, 10, 10)),
        ],
        "c",
    )
    fused = {(d["image_id"], d["category_id"], round(d["score"], 9)): d for d in fusion.fuse([c, a, b]).detections}
    assert sorted(fused) == sorted(
        [
            (3, 1, 0.7),  # (0.9 + 0.6 + 0.6) / 3
            (3, 2, round(0.8 / 3, 9)),  # (0.4 + 0 + 0.4) / 3
            (3, 2, 0.1),  # a's duplicate alone: 0.3 / 3
            (3, 4, 0.3),  # a's alone
            (3, 4, 0.1),  # c's alone
            (8, 4, round(0.5 / 3, 9)),  # b's alone, mask unchanged
        ]
    )
    # group 1, weights 0.9, 0.6, 0.6 (half the total: 1.05): column 0 has a's 0.9 only (off), columns 1-9
    # at least a + b = 1.5 (on), column 10 b + c = 1.2 (on), column 11 c's 0.6 only (off)
    np.testing.assert_array_equal(decode_mask(fused[(3, 1, 0.7)]["segmentation"]), rect(0, 1, 10, 10))
    # two equal votes reach exactly half everywhere either covers: the union
    np.testing.assert_array_equal(decode_mask(fused[(3, 2, round(0.8 / 3, 9))]["segmentation"]), rect(20, 0, 8, 10))
    np.testing.assert_array_equal(decode_mask(fused[(3, 2, 0.1)]["segmentation"]), rect(20, 1, 8, 8))
    np.testing.assert_array_equal(decode_mask(fused[(8, 4, round(0.5 / 3, 9))]["segmentation"]), rect(30, 20, 5, 10))
    # the box: the score-weighted mean of the members' boxes, x from 0, 1, 2 with weights 0.9, 0.6, 0.6
    assert fused[(3, 1, 0.7)]["bbox"] == [round((0.6 * 1 + 0.6 * 2) / 2.1, 2), 0.0, 10.0, 10.0]
    # a stricter threshold keeps a and b apart (IoU 0.82 < 0.9), and c (0.67 with a, 0.82 with b) too
    strict = fusion.fuse([a, b, c], iou_threshold=0.9).detections
    assert sorted(round(d["score"], 9) for d in strict if (d["image_id"], d["category_id"]) == (3, 1)) == [
        0.2,
        0.2,
        0.3,
    ]


def test_two_members_the_better_scored_mask_wins():
    a = predictions([det(3, 1, 0.7, rect(0, 0, 10, 10))], "a")
    b = predictions([det(3, 1, 0.5, rect(0, 2, 10, 10))], "b")
    (only,) = fusion.fuse([a, b]).detections
    assert only["score"] == pytest.approx(0.6)
    np.testing.assert_array_equal(decode_mask(only["segmentation"]), rect(0, 0, 10, 10))


def test_fused_submission_validates_and_records_its_members(tmp_path):
    a, b = predictions(random_run(4), "k4"), predictions(random_run(5), "k5")
    fused = fusion.fuse([a, b], cache_dir=tmp_path)
    test_json = {"images": IMAGES, "categories": CATEGORIES}
    report = export_submission(fused, test_json, tmp_path / "submission.json", Selection(fused.score_floor))
    assert report.ok and report.num_instances == len(json.loads((tmp_path / "submission.json").read_text()))
    assert report.num_instances == len([d for d in fused.detections if d["score"] >= fused.score_floor]) > 0
    header = json.loads((tmp_path / f"fused-test-{fused.key}.jsonl").read_text().splitlines()[0])
    assert [m["key"] for m in header["fusion"]["members"]] == ["k4", "k5"]
    assert [m["checkpoint"] for m in header["fusion"]["members"]] == ["k4.pth", "k5.pth"]
    assert header["fusion"]["iou_threshold"] == 0.5 and header["checkpoint"] == "k4.pth + k5.pth"


def test_cache_hit_does_not_recompute(tmp_path, monkeypatch, capsys):
    a, b = predictions(random_run(6), "k6"), predictions(random_run(7), "k7")
    first = fusion.fuse([a, b], cache_dir=tmp_path)
    assert "Fused 2 runs' test predictions" in capsys.readouterr().out
    monkeypatch.setattr(fusion, "fuse_detections", lambda *args: pytest.fail("fused again"))
    again = fusion.fuse([b, a], cache_dir=tmp_path)
    assert "Using cached fusion" in capsys.readouterr().out
    assert again == first and again == read_cache(tmp_path / f"fused-test-{first.key}.jsonl")
    assert again.checked_rles == first.checked_rles  # the export will not parse its masks again
    monkeypatch.undo()
    path = tmp_path / f"fused-test-{first.key}.jsonl"
    path.write_bytes(path.read_bytes().replace(b'"score": ', b'"score": 1', 1))  # damaged: fused again
    assert fusion.fuse([a, b], cache_dir=tmp_path).detections == first.detections
    assert "damaged" in capsys.readouterr().out


def test_members_of_different_splits_or_images_are_refused():
    a = predictions(random_run(8), "a")
    with pytest.raises(TinyVocError, match="different splits"):
        fusion.fuse([a, predictions(random_run(9), "b", split="val")])
    other = Predictions("test", random_run(9), 0.01, image_ids=[3, 8], key="b")
    with pytest.raises(TinyVocError, match="different images"):
        fusion.fuse([a, other])
    with pytest.raises(TinyVocError, match="nothing to fuse"):
        fusion.fuse([])
    with pytest.raises(TinyVocError, match="IoU threshold"):
        fusion.fuse([a], iou_threshold=0)


def test_the_vote_on_run_length_codes_equals_the_vote_pixel_by_pixel():
    """The two ways ``_voted_mask`` computes the vote (merging coalitions, decoding) give the same masks,
    and both equal the rule written out on decoded arrays; equal weights make exact ties at one half."""
    rng = np.random.default_rng(11)
    for _ in range(200):
        n = int(rng.integers(2, 6))
        masks = [rect(int(rng.integers(0, 10)), int(rng.integers(0, 10)), 12, 14) for _ in range(n)]
        weights = [float(w) for w in (np.full(n, 0.4) if rng.random() < 0.3 else rng.uniform(0.05, 1.0, n))]
        segmentations = [encode_mask(m) for m in masks]
        expected = (2 * np.tensordot(weights, np.stack(masks), axes=1) >= sum(weights) - 1e-12).astype(np.uint8)
        merged = decode_mask(fusion._voted_mask(segmentations, weights))
        decoded = decode_mask(fusion._vote_by_decoding(segmentations, weights))
        np.testing.assert_array_equal(merged, expected)
        np.testing.assert_array_equal(decoded, expected)


def test_per_run_weights_weigh_the_score_and_the_vote_and_make_their_own_cache(tmp_path):
    """WBF's weights: score = sum(w * s) / sum(w), a member that missed counting 0; the vote weighs w * s."""
    a = Predictions("val", [det(3, 1, 0.6, rect(0, 0, 10, 10))], 0.0, [3, 8, 11], key="a")
    b = Predictions("val", [det(3, 1, 0.8, rect(0, 0, 10, 14)), det(8, 2, 0.9, rect(5, 5, 4, 4))], 0.0, [3, 8, 11],
                    key="b")  # fmt: skip
    equal = fusion.fuse([a, b], cache_dir=tmp_path)
    weighted = fusion.fuse([a, b], weights=[3, 1], cache_dir=tmp_path)  # a counts three times b
    assert [d["score"] for d in equal.detections] == [pytest.approx(0.7), pytest.approx(0.45)]
    assert [d["score"] for d in weighted.detections] == [pytest.approx((3 * 0.6 + 0.8) / 4), pytest.approx(0.9 / 4)]
    assert decode_mask(equal.detections[0]["segmentation"]).sum() == 140  # b's 0.8 outvotes a's 0.6
    assert decode_mask(weighted.detections[0]["segmentation"]).sum() == 100  # 3 x 0.6 outvotes 0.8
    assert len(list(tmp_path.glob("fused-val-*.jsonl"))) == 2 and weighted.fusion["weights"] == [1.0, 1 / 3]
    assert fusion.fuse([b, a], weights=[1, 3]).detections == weighted.detections  # weights follow their run
    assert fusion.fuse([a, b], weights=[2, 2], cache_dir=tmp_path).key == equal.key  # equal weights: no weights
    with pytest.raises(TinyVocError, match="one weight .* for each of the 2 runs"):
        fusion.fuse([a, b], weights=[1])


def _two_halves(tmp_path, images=40):
    """Validation images with two objects each; run a finds the left one of each at 0.6, run b the right one."""
    entries, anns, a, b = [], [], [], []
    for i in range(1, images + 1):
        entries.append({"id": i, "file_name": f"{i}.jpg", "height": SHAPE[0], "width": SHAPE[1]})
        for k, (top, left) in enumerate([(5, 2), (5, 30)]):
            square = [left, top, left + 10, top, left + 10, top + 10, left, top + 10]
            anns.append({"id": 2 * i + k, "image_id": i, "category_id": 1, "iscrowd": 0, "area": 100,
                         "bbox": [left, top, 10, 10], "segmentation": [square]})  # fmt: skip
        a.append(det(i, 1, 0.6, rect(5, 2, 10, 10)))
        b.append(det(i, 1, 0.6, rect(5, 30, 10, 10)))
    path = tmp_path / "val.json"
    path.write_text(json.dumps({"images": entries, "annotations": anns, "categories": CATEGORIES}))
    split = read_split("val", path, tmp_path, check_files=False)
    ids = [e["id"] for e in entries]
    return [Predictions("val", rows, 0.001, ids, key=k, images=split) for k, rows in (("a", a), ("b", b))]


def test_the_verdict_scores_each_at_its_own_best_threshold_and_a_lone_find_is_not_lost(tmp_path):
    """At the members' 0.4 a detection only one of two runs found (0.6: fused 0.3) was gone before AP was measured:
    the fusion of two runs that found different halves scored 0 and lost. At its own threshold it finds both."""
    from tinyvoc.inference import ensemble

    a, b = _two_halves(tmp_path)
    fused = fusion.fuse([a, b])
    assert {d["score"] for d in fused.detections} == {0.3}
    verdict = ensemble.judge([("a", a), ("b", b)], ("fused", fused), Selection(0.4))
    assert [m.ap50 for m in verdict.members] == [pytest.approx(0.5, abs=0.01)] * 2
    assert verdict.fused.threshold <= 0.3 and verdict.fused.ap50 == pytest.approx(1.0)
    assert verdict.fused.floor_ap50 == pytest.approx(1.0) and verdict.members[0].floor_ap50 == verdict.members[0].ap50
    point, low, high = verdict.difference
    assert point == pytest.approx(0.5, abs=0.01) and 0 < low <= point <= high and verdict.fusion_wins
    assert "a clear win; submit the fusion" in ensemble.compare(verdict)
    assert ensemble.table_row(verdict) == (["a", "b"], verdict.fused.ap50, verdict.fused.ap)


def test_a_difference_the_validation_images_do_not_support_is_not_a_win(tmp_path):
    from tinyvoc.inference import ensemble

    a, b = _two_halves(tmp_path)
    lucky = [dict(d) for d in a.detections]
    lucky.append(det(1, 1, 0.99, rect(5, 30, 10, 10)))  # one more object found, on one image of 40
    fused = Predictions("val", lucky, 0.001, a.image_ids, key="a+", images=a.images)
    verdict = ensemble.judge([("a", a), ("b", b)], ("fused", fused), Selection(0.4))
    point, low, high = verdict.difference
    assert point > 0 and low <= 0 < high and not verdict.fusion_wins
    said = ensemble.compare(verdict)
    assert f"{point:+.3f} AP50, 95% interval {low:+.3f}..{high:+.3f} over 40 validation images" in said
    assert 'not a clear win; submit a alone (RUN = "a")' in said


def _soft(image_id, score, box, level, shape=SHAPE):
    """A detection whose mask head said ``level`` all over ``box`` (x, y, w, h): its mask is the box where level
    >= 0.5, as detectron2 pastes and cuts it."""
    from tinyvoc.inference.cache_file import encode_mask_probs

    x, y, w, h = box
    mask = rect(y, x, h, w, shape) if level >= 0.5 else np.zeros(shape, np.uint8)
    row = det(image_id, 1, score, mask if mask.any() else rect(y, x, 1, 1, shape), bbox=list(map(float, box)))
    return row | {"mask_probs": encode_mask_probs(np.full((28, 28), level))}


def test_mask_voting_averages_the_members_probabilities_by_score_and_boxes_the_fused_mask(capsys):
    """a: 0.55 all over its box, score 0.6; b: 1.0 over a box 4 pixels to the right, score 0.5. Averaged by score,
    only their overlap reaches 0.5 (0.6 x 0.55 + 0.5 x 1 = 0.83 of 1.1; a alone 0.30, b alone 0.45), so the fused
    mask is the overlap, and its box the overlap's. The binary vote (a cache without them) gives a's mask."""
    a = Predictions("val", [_soft(3, 0.6, (0, 0, 20, 20), 0.55)], 0.0, [3, 8, 11], key="a")
    b = Predictions("val", [_soft(3, 0.5, (4, 0, 20, 20), 1.0)], 0.0, [3, 8, 11], key="b")
    (fused,) = fusion.fuse([a, b]).detections
    assert (decode_mask(fused["segmentation"]) == rect(0, 4, 20, 16)).all()
    assert fused["bbox"] == [4.0, 0.0, 16.0, 20.0]
    assert fused["score"] == pytest.approx(0.55)
    assert "keep no mask probabilities" not in capsys.readouterr().out

    plain = [Predictions("val", [{k: v for k, v in m.detections[0].items() if k != "mask_probs"}], 0.0, [3, 8, 11],
                         key=m.key) for m in (a, b)]  # fmt: skip
    (voted,) = fusion.fuse(plain).detections
    assert (decode_mask(voted["segmentation"]) == decode_mask(a.detections[0]["segmentation"])).all()
    said = capsys.readouterr().out
    assert "2 of 2 members' caches keep no mask probabilities" in said and "binary vote" in said
    alone = fusion.fuse([a, a.__class__(**{**a.__dict__, "key": "a2"})]).detections
    assert alone == plain[0].detections  # a run fused with itself: its own mask, box and score


def test_mask_probabilities_round_trip_at_8_bits():
    from tinyvoc.inference.cache_file import decode_mask_probs, encode_mask_probs

    probs = np.random.default_rng(0).random((28, 28)).astype(np.float32)
    assert np.abs(decode_mask_probs(encode_mask_probs(probs)) - probs).max() <= 0.5 / 255 + 1e-7


def _smooth_probs(seed, side=28):
    """A mask head's kind of output: a smooth random map in 0..1 (no value near 0.5 by chance on a grid)."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((5, 5))
    at = np.linspace(0, 4, side)
    low = np.minimum(at.astype(int), 3)
    frac = at - low
    rows = coarse[low] * (1 - frac)[:, None] + coarse[low + 1] * frac[:, None]
    return (rows[:, low] * (1 - frac) + rows[:, low + 1] * frac).astype(np.float32)


def test_pasting_matches_detectron2s_paste_masks_in_image():
    """Fusion pastes each member's 28 x 28 map as detectron2 pastes it (on the CPU: over the box and a pixel beyond,
    bilinear, pixel centres, 0 outside the map): fractional, tiny, wide, border-touching and partly outside boxes
    give detectron2's values, and cut at 0.5 its masks."""
    import torch
    from detectron2.layers.mask_ops import _do_paste_mask, paste_masks_in_image

    from tinyvoc.inference.cache_file import decode_mask_probs, encode_mask_probs

    height, width = 37, 53
    boxes = [(3.25, 4.5, 20.7, 11.3), (0.0, 0.0, 53.0, 37.0), (40.6, 30.1, 0.4, 0.7), (-3.0, 20.2, 12.5, 25.0),
             (10.01, 0.0, 2.98, 36.99), (1.5, 2.5, 49.0, 1.2)]  # fmt: skip
    for k, box in enumerate(boxes):
        probs = decode_mask_probs(encode_mask_probs(_smooth_probs(k)))  # as the cache gives them back: 8-bit
        top, left, ours = fusion._paste(probs, box, height, width)
        x, y, w, h = box
        corners = torch.tensor([[x, y, x + w, y + h]], dtype=torch.float32)
        theirs, (rows, columns) = _do_paste_mask(torch.from_numpy(probs)[None, None], corners, height, width)
        theirs = theirs[0].numpy()
        assert (top, left, top + ours.shape[0], left + ours.shape[1]) == (rows.start, columns.start, rows.stop,
                                                                          columns.stop), box  # fmt: skip
        assert np.abs(ours - theirs).max() < 1e-4, box
        mask = paste_masks_in_image(torch.from_numpy(probs)[None], corners, (height, width), threshold=0.5)[0].numpy()
        pasted, near = np.zeros((height, width), bool), np.zeros((height, width), bool)
        pasted[top : top + ours.shape[0], left : left + ours.shape[1]] = ours >= 0.5
        near[top : top + ours.shape[0], left : left + ours.shape[1]] = np.abs(ours - 0.5) < 1e-4  # float32's say
        assert ((pasted == mask) | near).all() and near.sum() <= 1, box
        assert mask.any() or k == 2

    # several members at once, summed over the union of their regions: each is still 0 outside its own region (a
    # tall, wide box's map would reach beyond it bilinearly, but detectron2 pastes only the box and a pixel beyond)
    height, width = 160, 200
    boxes, weights = [(20.3, 30.05, 100.2, 90.9), (10.0, 5.5, 150.0, 140.0)], [0.7, 0.3]
    levels = [np.rint(_smooth_probs(k) * 255).astype(np.uint8) for k in (10, 11)]
    total, left, top = fusion._pasted_sum(levels, boxes, [w / 255 for w in weights], height, width, fusion._Scratch())
    ours = np.zeros((height, width), np.float32)
    ours[top : top + total.shape[1], left : left + total.shape[0]] = total.T
    theirs = np.zeros((height, width), np.float32)
    for (x, y, w, h), weight, level in zip(boxes, weights, levels):
        corners = torch.tensor([[x, y, x + w, y + h]], dtype=torch.float32)
        pasted, (rows, columns) = _do_paste_mask(torch.from_numpy(level / 255.0).float()[None, None], corners, height,
                                                 width)  # fmt: skip
        theirs[rows, columns] += weight * pasted[0].numpy()
    assert np.abs(ours - theirs).max() < 1e-4


def test_mask_voting_of_one_map_twice_is_that_map_pasted_and_coded_as_pycocotools_codes_it():
    """Two members with the same probabilities over the same box (their stored masks differ, so they are voted): the
    fused mask is the map pasted and cut at 0.5, whatever the scores. The box spans the image's height and ends at
    its last pixel, and the top and bottom rows are on: the runs that wrap from one column to the next and the one
    ending with the image are coded exactly as pycocotools' encoder codes the mask."""
    from tinyvoc.inference.cache_file import decode_mask_probs, encode_mask_probs

    probs = _smooth_probs(7)
    probs[[0, -1], :] = 0.9
    box = [30.2, 0.0, 19.8, float(SHAPE[0])]
    a = _soft(3, 0.9, (30, 0, 20, SHAPE[0]), 1.0) | {"bbox": box, "mask_probs": encode_mask_probs(probs)}
    b = _soft(3, 0.4, (31, 1, 19, SHAPE[0] - 1), 1.0) | {"bbox": box, "mask_probs": encode_mask_probs(probs)}
    (fused,) = fusion.fuse([Predictions("val", [a], 0.0, [3, 8, 11], key="a"),
                            Predictions("val", [b], 0.0, [3, 8, 11], key="b")]).detections  # fmt: skip
    top, left, patch = fusion._paste(decode_mask_probs(a["mask_probs"]), box, *SHAPE)
    expected = np.zeros(SHAPE, np.uint8)
    expected[top : top + patch.shape[0], left : left + patch.shape[1]] = patch >= 0.5
    assert expected[0].any() and expected[-1].any() and expected[-1, -1]
    assert (decode_mask(fused["segmentation"]) == expected).all()
    assert fused["segmentation"]["counts"] == encode_mask(expected)["counts"]
    ys, xs = np.nonzero(expected)
    assert fused["bbox"] == [float(xs.min()), 0.0, float(xs.max() - xs.min() + 1), float(SHAPE[0])]
    assert fused["score"] == pytest.approx(0.65)


def test_a_cache_written_before_the_probabilities_line_fuses_by_mask_voting_as_a_new_one(tmp_path, capsys):
    """A cache that kept each detection's probabilities in its row (zlib, base64) reads as it is, and fuses by mask
    voting to exactly what the same predictions in today's cache fuse to."""
    import base64
    import hashlib
    import zlib

    from tinyvoc.inference.cache_file import mask_probs_levels, write_cache

    a = Predictions("val", [_soft(3, 0.6, (0, 0, 20, 20), 0.55)], 0.0, [3, 8, 11], key="a")
    b = Predictions("val", [_soft(3, 0.5, (4, 0, 20, 20), 1.0)], 0.0, [3, 8, 11], key="b")
    today = [write_cache(tmp_path / f"val-{m.key}.jsonl", m) for m in (a, b)]
    before = []
    for m in (a, b):
        rows = [d | {"mask_probs": base64.b64encode(zlib.compress(mask_probs_levels(d["mask_probs"]).tobytes(), 9))
                     .decode("ascii")} for d in m.detections]  # fmt: skip
        body = json.dumps(rows).encode()
        header = {"format": 2, **m.header(), "num_detections": len(rows)}
        header["detections_sha256"] = hashlib.sha256(body).hexdigest()
        path = tmp_path / f"old-{m.key}.jsonl"
        path.write_bytes(json.dumps(header).encode() + b"\n" + body)
        before.append(read_cache(path))
    assert all(p is not None and "mask_probs" in p.detections[0] for p in before)
    capsys.readouterr()
    assert fusion.fuse(before).detections == fusion.fuse(today).detections
    assert "keep no mask probabilities" not in capsys.readouterr().out
