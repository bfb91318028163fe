"""Results that show themselves in a cell: the run record, the plan and the dataset record as short tables
(``_repr_html_`` in a notebook, a plain ``__repr__`` in a terminal), not as a dataclass's repr."""

from tinyvoc.core.paths import DataFiles, Outputs
from tinyvoc.dataset.record import DatasetRecord, prepare_dataset
from tinyvoc.training.budget import plan_budget
from tinyvoc.training.profiles import build_config
from tinyvoc.training.train import RunRecord


def _run(**changes) -> RunRecord:
    fields = dict(
        profile="smoke", max_iter=300, iteration=300, finished=True, seconds=111.96, seconds_per_iter=0.3733,
        best_ap50=0.9959350593444437, best_iter=200, checkpoint_final="model_final.pth",
        checkpoint_best="model_best.pth", wall_seconds=130.2, weights="random init (the smoke profile ...)",
    )  # fmt: skip
    fields.update(changes)
    return RunRecord(**fields)


def test_a_run_record_shows_a_short_table_not_a_dataclass():
    text = repr(_run(name="smoke"))
    assert text.splitlines()[0] == "Training run (output/runs/smoke/run.json)"
    assert "RunRecord(" not in text and "0.9959350593444437" not in text
    rows = {line.split("  ", 2)[1].strip(): line.split("  ", 2)[2].strip() for line in text.splitlines()[1:]}
    assert rows["iterations"] == "300 of 300, finished"
    assert rows["best val mask AP50"] == "0.996 at iteration 200"
    assert rows["training time"] == "2 min, 0.373 s/iter"
    assert rows["checkpoints"] == "model_best.pth, model_final.pth"
    html = _run()._repr_html_()
    assert html.startswith("<table>") and "<th" in html and "0.996 at iteration 200" in html


def test_a_stopped_run_without_validation_says_so_and_html_is_escaped():
    text = repr(_run(iteration=120, finished=False, best_ap50=None, best_iter=None, checkpoint_final=None,
                     checkpoint_best=None, profile="/drive/<mine>.yaml"))  # fmt: skip
    assert "120 of 300, stopped early (re-run to resume)" in text and "no validation" in text
    assert "none yet" in text
    assert "&lt;mine&gt;.yaml" in _run(profile="/drive/<mine>.yaml")._repr_html_()


def test_a_plan_shows_its_length_periods_and_budget(tmp_path):
    cfg = build_config("strong", 20, str(tmp_path), has_gpu=True)
    plan = plan_budget(2.4, 3.0, cfg, eval_seconds=300, checkpoint_seconds=20, device="T4", profile="strong")
    text = repr(plan)
    assert text.splitlines()[0] == "Plan (plan.json in the run's folder)" and "Plan(" not in text
    assert f"{plan.max_iter:,}" in text and "T4, 2.4 s/iter" in text and "budget 3 h 00 min" in text
    assert f"every {plan.eval_period:,} ({plan.evaluations} passes)" in text
    assert "<table>" in plan._repr_html_() and "base_config" not in text


def test_the_dataset_record_shows_its_split_and_classes(sample, tmp_path):
    outputs = Outputs.at(tmp_path / "out")
    record = prepare_dataset(DataFiles.in_folder(sample), outputs, "sample", val_fraction=0.2, seed=0)
    text = repr(DatasetRecord.load(outputs))
    assert text.splitlines()[0] == "Dataset (output/dataset.json)" and "DatasetRecord(" not in text
    counts = record.counts
    assert f"{counts['train_images']} images, {counts['train_instances']} instances" in text
    assert f"{counts['val_images']} images, {counts['val_instances']} instances (0.2 held out, seed 0)" in text
    assert f"3: {', '.join(record.class_names)}" in text
    assert "<table>" in record._repr_html_()
    none = prepare_dataset(DataFiles.in_folder(sample), outputs, "sample", val_fraction=0, seed=0)
    assert "none (VAL_FRACTION = 0: training on all images)" in repr(none)
