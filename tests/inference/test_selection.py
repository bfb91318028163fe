"""The one selection rule: threshold, per-class thresholds, cap per image; checked input; the run's default."""

import numpy as np
import pytest

from tinyvoc.core.errors import TinyVocError
from tinyvoc.inference.selection import Selection
from tinyvoc.inference.trained_run import DEFAULT_SCORE_FLOOR, TrainedRun


def _rows(seed=0, images=5, per_image=30):
    rng = np.random.default_rng(seed)
    return [
        {"image_id": int(i), "category_id": int(rng.integers(1, 4)), "score": round(float(rng.random()), 2), "k": n}
        for n, i in enumerate(rng.integers(0, images, size=images * per_image))
    ]


def _by_hand(rows, threshold, class_thresholds, cap):
    """The rule as the issue states it, written out plainly."""
    kept = []
    for image_id in sorted({r["image_id"] for r in rows}):
        mine = [
            r
            for r in rows
            if r["image_id"] == image_id and r["score"] >= class_thresholds.get(r["category_id"], threshold)
        ]
        kept += sorted(mine, key=lambda r: (-r["score"], r["k"]))[:cap]
    return kept


@pytest.mark.parametrize(
    "threshold, class_thresholds, cap", [(0.0, {}, 100), (0.3, {}, 7), (0.5, {2: 0.1}, 4), (0.2, {1: 0.9}, 100)]
)
def test_apply_equals_the_rule_written_out(threshold, class_thresholds, cap):
    rows = _rows()
    chosen = Selection.of(threshold, class_thresholds, cap)
    assert chosen.apply(rows) == _by_hand(rows, threshold, class_thresholds, cap)
    assert chosen.apply(rows, keys=("k",)) == [{"k": r["k"]} for r in _by_hand(rows, threshold, class_thresholds, cap)]


def test_every_selection_keeps_a_best_first_prefix_of_each_image_and_class():
    """What lets one validation matching score every selection (evaluate.Matching)."""
    rows = _rows(seed=4, per_image=60)
    for chosen in (Selection.of(0.1, {}, 20), Selection.of(0.4, {3: 0.05}, 12), Selection.of(0.0, {1: 0.7}, 5)):
        kept = {r["k"] for r in chosen.apply(rows)}
        for image_id in {r["image_id"] for r in rows}:
            for category in (1, 2, 3):
                ranked = sorted(
                    (r for r in rows if r["image_id"] == image_id and r["category_id"] == category),
                    key=lambda r: (-r["score"], r["k"]),
                )
                flags = [r["k"] in kept for r in ranked]
                assert flags == sorted(flags, reverse=True), (chosen, image_id, category)


def test_parameters_are_checked_and_described():
    chosen = Selection.of("0.05", {"15": 0.3}, 50)
    assert chosen == Selection(0.05, ((15, 0.3),), 50) and chosen.lowest == 0.05
    assert chosen.at(0.5).class_thresholds == ((15, 0.3),) and chosen.at(0.5).lowest == 0.3
    assert chosen.describe() == "score >= 0.05, class 15 >= 0.3, at most 50 per image"
    with pytest.raises(TinyVocError, match="SCORE_THRESH = 1.5 is not a score between 0 and 1"):
        Selection.of(1.5)
    with pytest.raises(TinyVocError, match=r"CLASS_THRESHOLDS\[3\] = -0.1"):
        Selection.of(0.1, {3: -0.1})
    with pytest.raises(TinyVocError, match="not a number"):
        Selection.of(0.1, {"person": 0.3})
    with pytest.raises(TinyVocError, match="MAX_PER_IMAGE = 0 keeps nothing"):
        Selection.of(0.1, {}, 0)


def test_the_run_defaults_to_the_profiles_threshold_and_refuses_below_the_floor(trained_sample):
    run = TrainedRun.load(trained_sample, "final")
    assert run.score_threshold == 0.05  # the smoke profile's own
    assert run.selection() == Selection(0.05) and run.selection(None, {}, 100) == Selection(0.05)
    assert run.score_floor == DEFAULT_SCORE_FLOOR == 0.001
    assert run.selection(0.001).threshold == 0.001
    with pytest.raises(TinyVocError, match="below the score floor 0.001"):
        run.selection(0.5, {2: 0.0005})
