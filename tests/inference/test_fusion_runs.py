"""RUN as a list: several runs' cached predictions fused, exported, scored and tabled as one run's."""

import json
import shutil

import pytest

from tinyvoc.cli import _parameters as cli_parameters
from tinyvoc.cli import build_parser
from tinyvoc.core.errors import TinyVocError
from tinyvoc.core.paths import Outputs, run_entries
from tinyvoc.inference import cached_predictions, ensemble, evaluate
from tinyvoc.inference.trained_run import TrainedRun
from tinyvoc.submission import export
from tinyvoc.submission.check import validate_submission
from tinyvoc.training import runs


@pytest.fixture(scope="module")
def two_runs(trained_sample, tmp_path_factory):
    """A copy of the trained project with a second run: the same model predicting at most 5 instances per image
    (a real, different member; no training). Returns (outputs, first name, second name)."""
    outputs = Outputs.at(tmp_path_factory.mktemp("fused") / "output")
    shutil.copytree(trained_sample.root, outputs.root)
    first = runs.names(outputs)[0]
    second = f"{first}-top5"
    shutil.copytree(outputs.run(first).dir, outputs.run(second).dir)
    config = outputs.run(second).config
    text = config.read_text()
    assert "DETECTIONS_PER_IMAGE: 100" in text
    config.write_text(text.replace("DETECTIONS_PER_IMAGE: 100", "DETECTIONS_PER_IMAGE: 5"))
    return outputs, first, second


def test_two_runs_fused_give_a_valid_submission_that_records_its_members(two_runs, tmp_path):
    outputs, first, second = two_runs
    run = ensemble.load(outputs, "best", [first, f"{second}:final"])
    assert isinstance(run, ensemble.FusedRun) and [m.name for m in run.members] == [first, second]
    test = ensemble.predict_split(run, "test")
    assert test.fusion and len(test.fusion["members"]) == 2
    singles = [ensemble.predict_split(m, "test") for m in run.members]
    assert len(singles[1].detections) < len(singles[0].detections)  # the members differ
    selection = run.selection(0.05)
    target = tmp_path / "submission.json"
    report = export.export_submission(test, test.images.coco, target, selection, run.made_by())
    assert report.ok and validate_submission(target, run.record.data_files.test_json).ok
    source = json.loads(export.source_record(target).read_text())
    assert [m["run"] for m in source["members"]] == [first, second]
    assert [m["checkpoint"] for m in source["members"]] == ["model_final.pth", "model_final.pth"]
    assert source["fusion"]["iou_threshold"] == 0.5 and source["selection"].startswith("score >= 0.05")
    assert isinstance(json.loads(target.read_text()), list)  # the submission itself stays the plain list

    val = ensemble.predict_split(run, "val")
    verdict = ensemble.validation_scores(run, val, selection)
    assert [m.name for m in verdict.members] == [first, second] and verdict.fused.name == run.name
    for scored, predictions in zip([*verdict.members, verdict.fused], [*run.member_predictions("val"), val]):
        sweep = evaluate.threshold_sweep(evaluate.Matching(predictions), selection)
        assert scored.threshold == evaluate.best_threshold(sweep)  # each at its own best threshold
        at_best = evaluate.evaluate_cached(predictions, selection.at(scored.threshold))["segm"]
        assert (scored.ap50, scored.ap) == pytest.approx((at_best["AP50"], at_best["AP"]), abs=1e-9)
    said = ensemble.compare(verdict)
    assert run.name in said and "95% interval" in said and "clear win" in said
    table = runs.table(outputs, fused=ensemble.table_row(verdict))
    fused_row = repr(table).splitlines()[-1]
    assert "⊕" in fused_row and f"fusion of {first} + {second}" in fused_row
    assert f"{verdict.fused.ap50:.3f}" in fused_row and "⊕" in table._repr_html_()
    assert len(repr(runs.table(outputs)).splitlines()) == len(repr(table).splitlines()) - 1


def no_model(monkeypatch):
    """Any prediction by a model fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("a model ran")

    monkeypatch.setattr(cached_predictions, "_run_model", refuse)


def test_a_current_fusion_is_read_first_and_runs_no_model_nor_reads_a_member(two_runs, capsys, monkeypatch):
    outputs, first, second = two_runs
    made = ensemble.predict_split(ensemble.load(outputs, "final", [first, second]), "test")  # makes what is missing
    capsys.readouterr()
    no_model(monkeypatch)
    members = {p: p.read_bytes() for name in (first, second) for p in outputs.predictions_for(name).glob("test-*")}
    for path in members:
        path.unlink()  # the fused cache alone answers: no member's cache is read, no model predicts one
    run = ensemble.load(outputs, "final", [first, second])  # a re-run of 03 or 04
    again = ensemble.predict_split(run, "test")
    said = capsys.readouterr().out
    for path, data in members.items():
        path.write_bytes(data)
    assert "Using cached fusion" in said and "Using cached predictions" not in said
    assert again.fusion is not None and again.detections == made.detections
    assert len(list(run.predictions_dir.glob("fused-test-*.jsonl"))) == 1


def test_a_runs_best_and_final_fused_keep_one_cache_each_and_predict_once(two_runs, capsys, monkeypatch):
    outputs, first, _ = two_runs
    files = outputs.run(first)
    shutil.copy(files.final, files.best)  # as if validation had kept one: the best + final fusion
    try:
        run = ensemble.load(outputs, "final", [f"{first}:best", f"{first}:final"])
        ensemble.predict_split(run, "val")
        caches = sorted(p.name for p in outputs.predictions_for(first).glob("val-*"))
        assert [c.rsplit("-", 1)[0] for c in caches] == ["val-model_best", "val-model_final"], caches
        no_model(monkeypatch)
        for which in ("best", "final", "best"):  # switching checkpoints evicts neither
            cached_predictions.predict_split(TrainedRun.load(outputs, which, run=first), "val")
        assert sorted(p.name for p in outputs.predictions_for(first).glob("val-*")) == caches
    finally:
        files.best.unlink()


def test_a_one_entry_list_is_that_run_unfused(two_runs):
    outputs, first, _ = two_runs
    alone = ensemble.load(outputs, "final", [first])
    single = TrainedRun.load(outputs, "final", run=first)
    assert isinstance(alone, TrainedRun) and alone.name == single.name and alone.checkpoint == single.checkpoint
    assert ensemble.predict_split(alone, "test") == ensemble.predict_split(single, "test")
    assert alone.made_by() == single.made_by()


def test_run_entries_and_bad_lists():
    assert run_entries("best", "final") == [("best", "final")]  # a string: exactly as before lists
    assert run_entries("strong:final", "best") == [("strong", "final")]  # alone as in a list
    with pytest.raises(TinyVocError, match="reserved"):
        runs.check_name("fused")  # predictions/fused/ holds the fusions' caches: no run may share (or remove) it
    assert run_entries(["a", "b:final"], "best") == [("a", "best"), ("b", "final")]
    with pytest.raises(TinyVocError, match="empty list"):
        run_entries([])
    with pytest.raises(TinyVocError, match="best or final"):
        run_entries(["a:latest"])


def test_run_flag_repeats_into_a_list_and_once_stays_a_string():
    parser = build_parser()
    assert cli_parameters(parser.parse_args(["export", "--run", "a"]))["RUN"] == "a"
    assert cli_parameters(parser.parse_args(["export", "--run", "a", "--run", "b:final"]))["RUN"] == ["a", "b:final"]


def test_notebook_04_fuses_a_list_of_runs(two_runs, monkeypatch):
    """04 executed (papermill, as `tinyvoc export --run A --run B`) with RUN a list: fused submission, members
    recorded, the comparison printed and the runs table's fused row shown."""
    import nbformat

    from tinyvoc.runner import run_notebook
    from tinyvoc.visualize.inspector import SESSION_ENV

    outputs, first, second = two_runs
    monkeypatch.delenv(SESSION_ENV, raising=False)
    params = {"PROJECT_DIR": str(outputs.root.parent), "RUN": [first, second], "CHECKPOINT": "final"}
    executed = run_notebook("04_export_submission.ipynb", params, outputs)
    source = json.loads(outputs.submission_source.read_text())
    assert [m["run"] for m in source["members"]] == [first, second]
    assert validate_submission(
        outputs.submission, ensemble.load(outputs, "final", first).record.data_files.test_json
    ).ok
    text = "\n".join(
        "".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
        for c in nbformat.read(executed, as_version=4).cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
    )
    assert "Fusing 2 runs" in text and "clear win" in text and "fusion of" in text


def test_training_takes_one_run_not_a_list(tmp_path):
    with pytest.raises(TinyVocError, match="02 trains one run"):
        runs.choose(Outputs.at(tmp_path), ["a", "b"], runs.Recipe("smoke", (), 0), "signature", None)
