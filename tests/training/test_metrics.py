"""The best validation row, one rule for the run record (``run.json``) and the runs table."""

import json

from tinyvoc.training import metrics


def test_a_validation_that_found_nothing_is_no_best_and_a_tie_keeps_the_earlier(tmp_path):
    rows = [
        {"iteration": 9, "segm/AP50": float("nan"), "segm/AP": float("nan")},  # nothing detected: NaN, not a best
        {"iteration": 19, "segm/AP50": 41.0, "segm/AP": 20.0},
        {"iteration": 29, "segm/AP50": 41.0, "segm/AP": 22.0},
        {"iteration": 30, "total_loss": 1.0},
    ]
    assert metrics.best_row(rows)["iteration"] == 19
    assert metrics.best_row(rows[:1]) is None and metrics.best_row([]) is None
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows[:1]) + '{"iteration": 3')  # a line cut mid-write
    assert metrics.best_from_metrics(path) is None
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert metrics.best_from_metrics(path) == (41.0, 19)
