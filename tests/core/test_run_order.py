"""One definition of the best and the newest run, read alike by the runs table and the Kaggle bring-in."""

import json
import os

from tinyvoc.core import run_order
from tinyvoc.core.paths import Outputs
from tinyvoc.runtime.kaggle.earlier import EarlierOutput
from tinyvoc.training import runs


def test_the_best_is_the_highest_ap50_a_run_never_validated_last_ties_to_the_newest():
    ranked = sorted(
        [("none", None, 9.0), ("nan", float("nan"), 8.0), ("old", 0.7, 1.0), ("new", 0.7, 2.0), ("low", 0.5, 7.0)],
        key=lambda r: run_order.best_first(r[1], r[2]),
        reverse=True,
    )
    assert [name for name, _, _ in ranked] == ["new", "old", "low", "none", "nan"]


def test_the_runs_table_and_the_kaggle_bring_in_see_the_same_newest(tmp_path):
    outputs = Outputs.at(tmp_path / "output")
    files = outputs.run("a")
    files.dir.mkdir(parents=True)
    files.config.write_text("config\n")
    files.record.write_text(json.dumps({"profile": "smoke", "iteration": 5}))
    files.metrics.write_text('{"iteration": 9, "total_loss": 1.0}\n')
    os.utime(files.config, (100, 100))
    os.utime(files.record, (100, 100))
    os.utime(files.metrics, (500, 500))  # a run killed after its record: its metrics moved on
    (attached,) = EarlierOutput(outputs, "an input").runs
    assert attached.newest == runs.read_run(files).newest == 500
