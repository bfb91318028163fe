"""Every recipe its own run (``output/runs/<name>/``): naming, coexisting and resuming runs, the runs table,
choosing the best, the space check's list of runs that could go, an older project's ``output/train/``, the CLI."""

import contextlib
import io
import json
import os
import re
import shutil
import time

import pytest
import torch

from tinyvoc import cli
from tinyvoc.core import space, units
from tinyvoc.core.errors import TinyVocError
from tinyvoc.core.paths import Outputs
from tinyvoc.inference.trained_run import TrainedRun
from tinyvoc.training import metrics, runs
from tinyvoc.training import train as training

FIRST = "smoke+EVAL_PERIOD=0+MAX_ITER=40"  # the run conftest's trained_sample trains (no validation)
LR = ["TEST.EVAL_PERIOD", 5, "SOLVER.CHECKPOINT_PERIOD", 2, "SOLVER.BASE_LR", "0.01"]  # one validation, at the end
KILLED = ["TEST.EVAL_PERIOD", 0, "SOLVER.CHECKPOINT_PERIOD", 2, "SOLVER.BASE_LR", "0.005"]


def snapshot(files) -> dict:
    return {p.name: p.read_bytes() for p in sorted(files.dir.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def two_runs(trained_sample, tmp_path_factory):
    """A copy of the trained sample project (run ``FIRST``) in which a second recipe (another LR) trained 5
    iterations; with the first run's files as they were before."""
    outputs = Outputs.at(tmp_path_factory.mktemp("runs") / "output", trained_sample.data_dir)
    shutil.copytree(trained_sample.root, outputs.root)
    assert runs.names(outputs) == [FIRST]
    before = snapshot(outputs.run(FIRST))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        second = training.train(outputs, "smoke", max_iter=5, overrides=LR)
    print(printed.getvalue())
    return outputs, before, second, printed.getvalue()


def test_two_recipes_train_two_runs_and_the_first_is_left_byte_for_byte(two_runs):
    outputs, before, second, _ = two_runs
    assert second.name == "smoke+EVAL_PERIOD=5+CHECKPOINT_PERIOD=2+BASE_LR=0.01+MAX_ITER=5" and second.finished
    assert runs.names(outputs) == sorted([FIRST, second.name])
    assert snapshot(outputs.run(FIRST)) == before
    assert json.loads(outputs.run(second.name).record.read_text())["name"] == second.name
    assert list(outputs.run(second.name).dir.glob("events.out.tfevents.*"))  # TensorBoard: one folder, one line a run


def test_a_finished_run_holds_no_periodic_checkpoint(two_runs):
    outputs, _, second, printed = two_runs
    files = outputs.run(second.name)
    assert files.periodic() == []  # it saved two (CHECKPOINT_PERIOD 2 of 5); nothing resumes a finished run
    kept = ["model_best.pth", "model_final.pth"] if second.checkpoint_best else ["model_final.pth"]  # best: if AP50
    assert sorted(p.name for p in files.dir.glob("*.pth")) == kept
    assert "Finished: removed 2 periodic checkpoint(s)" in printed


def test_the_table_shows_each_runs_own_numbers_sorted_by_ap50_the_best_marked(two_runs):
    outputs, _, second, _ = two_runs
    table = runs.table(outputs)
    ap50 = {i.name: i.best_ap50 for i in table.runs}
    assert ap50[FIRST] is not None  # 40 iterations, validated at the end: AP50 0.297 here; 5 iterations: none or less
    assert ap50[second.name] is None or ap50[second.name] < ap50[FIRST]
    assert [r.name for r in table.runs] == [FIRST, second.name]  # sorted by AP50
    for info in table.runs:
        files = outputs.run(info.name)
        rows = metrics.read_metrics(files.metrics)
        record = json.loads(files.record.read_text())
        evals = [r for r in rows if "segm/AP50" in r]
        evals = [r for r in evals if r["segm/AP50"] == r["segm/AP50"]]  # a validation with no detection: NaN
        top = max(evals, key=lambda r: (r["segm/AP50"], -r["iteration"])) if evals else None
        assert info.best_ap50 == (top["segm/AP50"] / 100 if top else None)
        assert info.best_iteration == (top["iteration"] if top else None)
        assert info.best_ap == (top["segm/AP"] / 100 if top else None)
        if top:
            assert (info.best_ap50, info.best_iteration) == (record["best_ap50"], record["best_iter"])
        assert (info.iteration, info.max_iter, info.state) == (record["iteration"], record["max_iter"], "finished")
        assert info.hours == pytest.approx(record["seconds"] / 3600, abs=1e-3)
        assert info.size_bytes == sum(p.stat().st_size for p in files.dir.rglob("*") if p.is_file())
    assert table.runs[0].best and not table.runs[1].best and table.best == FIRST
    assert table.runs[1].changes == [
        "SOLVER.MAX_ITER: 300 -> 5", "SOLVER.BASE_LR: 0.02 -> 0.01", "SOLVER.STEPS: (240,) -> ()",
        "SOLVER.CHECKPOINT_PERIOD: 100 -> 2", "TEST.EVAL_PERIOD: 100 -> 5",
    ]  # fmt: skip
    text = repr(table)
    assert text.splitlines()[0].startswith("2 run(s) in ") and f"★  {FIRST}" in text
    assert "BASE_LR" in text and "5 of 5" in text and "40 of 40" in text
    assert "<table>" in table._repr_html_() and 'style="font-weight:bold"' in table._repr_html_()


def test_03_and_04_take_the_best_run_and_say_why_and_a_named_one_on_request(two_runs, capsys):
    outputs, _, second, _ = two_runs
    best = TrainedRun.load(outputs)  # RUN = "best": the higher AP50 (see the table's test)
    assert best.name == FIRST and best.checkpoint == outputs.run(FIRST).final  # no model_best without EVAL_PERIOD
    top = runs.read_run(outputs.run(FIRST)).best_ap50
    assert (
        f'Run {FIRST} (RUN = "best": the highest best validation mask AP50 ({top:.3f} at iteration 40) of 2 run(s)'
        in (capsys.readouterr().out)
    )
    named = TrainedRun.load(outputs, "final", run=second.name)
    assert named.name == second.name and named.checkpoint == outputs.run(second.name).final
    assert named.predictions_dir == outputs.predictions_dir / second.name and named.made_by() == {
        "run": second.name, "why": "the run named in RUN", "checkpoint": "model_final.pth"
    }  # fmt: skip
    with pytest.raises(TinyVocError, match=r"no run called nope .*runs: .*tinyvoc runs"):
        TrainedRun.load(outputs, run="nope")


def test_the_best_is_the_highest_ap50_with_a_checkpoint_ties_to_the_newest(tmp_path):
    outputs = Outputs.at(tmp_path / "output")
    for name, ap50, checkpoint, age in [
        ("c-tie-new", 70.0, True, 3), ("b-tie-old", 70.0, True, 1), ("a-low", 50.0, True, 0),
        ("z-no-ckpt", 90.0, False, 2),
    ]:  # fmt: skip
        fake_run(outputs, name, [ap50], checkpoint=checkpoint, age=age)
    name, why = runs.pick(outputs, "best")
    assert name == "c-tie-new" and "0.700" in why and "tied with b-tie-old: the newest" in why
    assert "3 run(s) with a checkpoint" in why
    assert runs.pick(outputs, "a-low") == ("a-low", "the run named in RUN")
    assert [i.name for i in runs.list_runs(outputs)] == ["z-no-ckpt", "c-tie-new", "b-tie-old", "a-low"]
    assert [i.best for i in runs.list_runs(outputs)] == [False, True, False, False]


def test_a_killed_run_resumes_itself_and_no_other(two_runs, monkeypatch, capsys):
    from detectron2.engine import SimpleTrainer

    outputs, before, second, _ = two_runs
    others = {name: snapshot(outputs.run(name)) for name in runs.names(outputs)}
    original = SimpleTrainer.run_step

    def killed_at_4(self):
        if self.iter == 4:
            raise KeyboardInterrupt("disconnect")
        return original(self)

    monkeypatch.setattr(SimpleTrainer, "run_step", killed_at_4)
    with pytest.raises(KeyboardInterrupt):
        training.train(outputs, "smoke", max_iter=6, overrides=KILLED)
    monkeypatch.setattr(SimpleTrainer, "run_step", original)
    name = "smoke+EVAL_PERIOD=0+CHECKPOINT_PERIOD=2+BASE_LR=0.005+MAX_ITER=6"
    assert runs.read_run(outputs.run(name)).state == "stopped, resumable"
    assert [p.name for p in outputs.run(name).periodic()] == ["model_0000001.pth", "model_0000003.pth"]
    capsys.readouterr()

    run = training.train(outputs, "smoke", max_iter=6, overrides=KILLED)  # a new runtime: the same cell again
    printed = capsys.readouterr().out
    assert f"Run {name} (the run holding this recipe)" in printed and "Resuming from iteration 4 of 6" in printed
    assert run.name == name and run.finished and run.iteration == 6
    assert {n: snapshot(outputs.run(n)) for n in others} == others  # the other runs untouched

    resumed = snapshot(outputs.run(name))
    with pytest.raises(TinyVocError, match=rf"run {re.escape(name)} .* holds another recipe \(smoke, OPTS .*\)"):
        training.train(outputs, "smoke", max_iter=3, overrides=KILLED, run=name)  # an explicit name, another recipe
    assert snapshot(outputs.run(name)) == resumed and {n: snapshot(outputs.run(n)) for n in others} == others


def test_auto_names_are_readable_stable_safe_and_hashed_when_long():
    recipe = runs.Recipe("smoke", ("SOLVER.BASE_LR", "0.01", "INPUT.MIN_SIZE_TRAIN", "(512, 640)"), 5000, 8)
    name = recipe.auto_name()  # in full: smoke+BASE_LR=0.01+MIN_SIZE_TRAIN=512,640+MAX_ITER=5000+IMS_PER_BATCH=8
    assert name.startswith("smoke+BASE_LR=0.01+MIN_SIZE_TRAIN=512,640+MAX_ITER=5000") and len(name) <= runs.NAME_LIMIT
    assert re.fullmatch(r"[A-Za-z0-9._,=+-]+-[0-9a-f]{8}", name)  # long: cut, and ended by a hash of the whole name
    assert runs.Recipe("smoke", recipe.opts, 5000, 16).auto_name() != name  # the hash tells them apart
    assert runs.Recipe("smoke", recipe.opts, 5000, 8).auto_name() == name  # stable
    assert runs.Recipe("/drive/My Recipes/my recipe.yaml").auto_name() == "myrecipe"
    assert runs.Recipe("strong", ("SOLVER.BASE_LR", "0.01")).auto_name() == "strong+BASE_LR=0.01"
    budgeted = runs.Recipe("strong", time_budget_h=5, pretrained=False)
    assert budgeted.auto_name() == "strong+TIME_BUDGET_H=5+PRETRAINED=False"
    for bad in ("../up", ".hidden", "a/b", "with space", "best", ""):
        with pytest.raises(TinyVocError, match="RUN"):
            runs.check_name(bad)


def test_auto_numbers_a_name_holding_another_recipe_and_finds_a_recipe_under_any_name(tmp_path):
    outputs = Outputs.at(tmp_path / "output")
    recipe = runs.Recipe("/drive/mine.yaml")
    for name, config in (("mine", "old config\n"), ("renamed", "new config\n")):
        outputs.run(name).dir.mkdir(parents=True)
        outputs.run(name).config.write_text(config)
    assert runs.choose(outputs, "auto", recipe, "new config\n", None) == ("renamed", "the run holding this recipe")
    name, why = runs.choose(outputs, "auto", recipe, "newest config\n", None)  # the file edited again
    assert name == "mine-2" and "run mine holds another recipe" in why
    outputs.run("mine-2").dir.mkdir()
    outputs.run("mine-2").config.write_text("newest config\n")
    assert runs.choose(outputs, "auto", recipe, "newest config\n", None)[0] == "mine-2"  # found again: stable
    with pytest.raises(TinyVocError, match=r"run mine .*holds another recipe.*RUN = \"mine-3\".*RESUME = False"):
        runs.choose(outputs, "mine", recipe, "newest config\n", None)
    assert runs.choose(outputs, "mine", recipe, "newest config\n", None, resume=False)[0] == "mine"  # replaced


def test_no_space_for_a_run_lists_the_runs_that_could_go_and_deletes_nothing(two_runs, monkeypatch):
    from detectron2.config import get_cfg

    from tinyvoc.training.storage import require_checkpoint_space

    outputs, _, second, _ = two_runs
    cfg = get_cfg()
    cfg.merge_from_other_cfg(cfg.load_cfg(outputs.run(FIRST).config.read_text()))
    new = outputs.run("next-one")
    others = runs.list_runs(outputs)
    sizes = {name: snapshot(outputs.run(name)) for name in runs.names(outputs)}
    ten_mib = os.statvfs_result((2**20, 2**20, 10**6, 10, 10, 0, 0, 0, 0, 255))
    monkeypatch.setattr(space.os, "statvfs", lambda path: ten_mib)
    with pytest.raises(TinyVocError) as refused:
        require_checkpoint_space(cfg, new, others)
    message = str(refused.value)
    assert "Not enough space for this run's checkpoints" in message and "Nothing was written" in message
    for info in others:
        frees = rf"{re.escape(info.name)} \(finished, best val AP50 [-0-9.]+, frees {units.size(info.size_bytes)}\)"
        assert re.search(frees, message)
    assert "`tinyvoc runs --remove NAME`" in message and 'runs.remove(outputs, "NAME")' in message
    assert {name: snapshot(outputs.run(name)) for name in runs.names(outputs)} == sizes  # nothing deleted


def test_an_older_projects_train_folder_becomes_a_run_once_and_is_not_trained_again(trained_sample, tmp_path, capsys):
    outputs = Outputs.at(tmp_path / "output", trained_sample.data_dir)
    shutil.copytree(trained_sample.root, outputs.root)
    old = outputs.legacy_train_dir
    os.replace(outputs.run(FIRST).dir, old)  # as a version from before runs had names left it
    outputs.runs_dir.rmdir()
    record = json.loads((old / "run.json").read_text())
    del record["name"]
    (old / "run.json").write_text(json.dumps(record))
    (old / "recipe.json").unlink()
    outputs.predictions_dir.mkdir(exist_ok=True)
    (outputs.predictions_dir / "test-0123456789abcdef.jsonl").write_text("{}\n")  # a cache of that run
    files = {p.name: p.read_bytes() for p in old.iterdir() if p.is_file() and p.name != "log.txt"}  # the log appends
    capsys.readouterr()

    run = training.train(outputs, "smoke", max_iter=40, overrides=["TEST.EVAL_PERIOD", 0])
    printed = capsys.readouterr().out
    assert f"This project's run in {old} is now run smoke in {outputs.run('smoke').dir}" in printed
    assert "Training already finished (40 iterations" in printed and run.iteration == 40 and run.name == "smoke"
    assert not old.exists() and runs.names(outputs) == ["smoke"]
    kept = {p.name: p.read_bytes() for p in outputs.run("smoke").dir.iterdir() if p.is_file() and p.name != "log.txt"}
    assert kept == files
    assert (outputs.predictions_for("smoke") / "test-0123456789abcdef.jsonl").is_file()
    assert TrainedRun.load(outputs, "final").name == "smoke"
    assert "is now run" not in capsys.readouterr().out  # said once


def test_twenty_runs_show_in_well_under_a_second_and_the_cli_lists_and_removes(tmp_path, capsys):
    outputs = Outputs.at(tmp_path / "output")
    for k in range(20):
        fake_run(outputs, f"recipe-{k:02d}", [10.0 + k, 20.0 + k, 15.0], age=k, rows=1000)
    started = time.perf_counter()
    table = runs.table(outputs)
    text, html = repr(table), table._repr_html_()
    seconds = time.perf_counter() - started
    assert seconds < 1.0 and len(text.splitlines()) == 22 and html.count("<tr") == 21
    assert table.best == "recipe-19" and table.runs[0].best_ap50 == pytest.approx(0.39)

    assert cli.main(["runs", "--json", "--project-dir", str(tmp_path)]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {"name", "dir", "best_ap50", "best_iteration", "state"} <= set(listed[0])
    assert listed[0]["name"] == "recipe-19" and listed[0]["best_iteration"] == 2 * 100 - 1
    outputs.predictions_for("recipe-03").mkdir(parents=True)
    assert cli.main(["runs", "--remove", "recipe-03", "--project-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Removed run recipe-03" in out and "19 run(s) in" in out
    assert "recipe-03" not in runs.names(outputs) and not outputs.predictions_for("recipe-03").exists()
    assert cli.main(["runs", "--remove", "recipe-03", "--project-dir", str(tmp_path)]) == 1  # no such run: said
    print(f"20 runs (1,000 metric rows each): table and both renderings in {seconds * 1000:.0f} ms")


def test_the_cli_on_colab_lists_the_runs_of_the_drive_project_and_says_which_folder(
    on_colab, drive, monkeypatch, capsys
):
    """``!tinyvoc runs`` in a Colab cell: the project 02 trained on Drive, not the runtime's own disk."""
    mount, fake = drive
    project = mount / "MyDrive" / "tinyvoc"
    assert cli.main(["runs"]) == 1  # Drive not mounted yet: said, nothing written under the mount point
    assert "is on Google Drive (" in capsys.readouterr().err and not mount.exists()
    from google.colab import drive as colab_drive

    monkeypatch.setenv("TINYVOC_FAKE_DRIVE", str(fake))
    colab_drive.mount(str(mount))  # what a notebook's start cell did in this runtime
    assert "Mounted at" in capsys.readouterr().out
    fake_run(Outputs.at(project / "output"), "strong", [30.0, 41.0])
    assert cli.main(["runs", "--json"]) == 0
    out, err = capsys.readouterr()
    assert [r["name"] for r in json.loads(out)] == ["strong"]
    assert f"project: {project} (the notebooks' default here" in err
    assert cli.main(["runs", "--remove", "strong"]) == 0 and runs.names(Outputs.at(project / "output")) == []


def test_the_overlaid_ap50_figure_has_one_line_a_run(tmp_path):
    from tinyvoc.visualize import plots

    outputs = Outputs.at(tmp_path / "output")
    for k in range(3):
        fake_run(outputs, f"r{k}", [10.0 * k, 20.0 * k], age=k)
    fake_run(outputs, "no-validation", [], age=4)
    curves = runs.ap50_curves(outputs)
    assert sorted(curves) == ["r0", "r1", "r2"] and curves["r2"] == [(99, 0.2), (199, 0.4)]
    fig = plots.runs_ap50(curves, outputs.figures_dir / "runs_ap50.png", best="r2")
    assert len(fig.axes[0].lines) == 3 and (outputs.figures_dir / "runs_ap50.png").stat().st_size > 0


def fake_run(outputs, name, ap50s, *, checkpoint=True, age=0, rows=0):
    """A finished run's files as training leaves them, without training: validations every 100 iterations."""
    files = outputs.run(name)
    files.dir.mkdir(parents=True)
    lines = [{"iteration": i, "total_loss": 1.0} for i in range(rows)]
    lines += [{"iteration": 100 * (k + 1) - 1, "segm/AP50": ap, "segm/AP": ap / 2} for k, ap in enumerate(ap50s)]
    files.metrics.write_text("".join(json.dumps(line) + "\n" for line in lines))
    best = max(ap50s, default=None)
    files.record.write_text(json.dumps({"profile": "smoke", "max_iter": 300, "iteration": 300, "finished": True,
                                        "seconds": 3600.0, "best_ap50": best / 100 if best else None}))  # fmt: skip
    files.config.write_text(f"config of {name}\n")
    if checkpoint:
        files.best.write_bytes(b"weights")
    when = time.time() - 1000 * (10 - age)  # a larger age: newer
    for path in files.dir.iterdir():
        os.utime(path, (when, when))
    return files


def test_load_state_is_read_from_the_chosen_run(two_runs):
    outputs, _, second, _ = two_runs
    run = TrainedRun.load(outputs, "final", run=second.name)
    saved = torch.load(run.checkpoint, map_location="cpu", weights_only=False)
    assert saved["iteration"] == second.iteration - 1 == 4


def test_a_record_from_before_runs_had_names_takes_its_folders_name(tmp_path):
    files = Outputs.at(tmp_path / "output").run("smoke")
    files.dir.mkdir(parents=True)
    files.record.write_text(json.dumps({
        "profile": "smoke", "max_iter": 40, "iteration": 40, "finished": True, "seconds": 9.0, "seconds_per_iter": 0.2,
        "best_ap50": None, "best_iter": None, "checkpoint_final": "model_final.pth", "checkpoint_best": None,
        "a_key_of_a_later_version": 1,
    }))  # fmt: skip
    record = training.RunRecord.load(files.record)
    assert record.name == "smoke" and record.dataset is None  # 02's next cell calls outputs.run(record.name)


def _without_dataset(files):
    """The run's files as a version from before runs knew their dataset wrote them."""
    for path in (files.record, files.recipe):
        data = json.loads(path.read_text())
        path.write_text(json.dumps({k: v for k, v in data.items() if k not in ("dataset", "fingerprint")}))


def test_a_run_belongs_to_its_dataset_best_chooses_among_its_own_and_another_is_refused(two_runs, tmp_path):
    from tinyvoc.dataset.record import DatasetRecord, prepare_dataset

    source, _, second, _ = two_runs
    outputs = Outputs.at(tmp_path / "output", source.data_dir)
    shutil.copytree(source.root, outputs.root)
    first = DatasetRecord.load(outputs)
    assert runs.learned(outputs.run(FIRST)) == ("sample", first.fingerprint)
    assert json.loads(outputs.run(FIRST).record.read_text())["fingerprint"] == first.fingerprint
    _without_dataset(outputs.run(second.name))  # an older run: usable with any dataset, shown as "?"

    other = prepare_dataset(first.data_files, outputs, "sample", val_fraction=0.3, seed=1)  # another split
    assert other.fingerprint != first.fingerprint
    table = runs.table(outputs)
    shown = {i.name: i.dataset for i in table.runs}
    assert (shown[FIRST], shown[second.name]) == ("sample", "")
    assert table.best == second.name  # FIRST has the higher AP50, but learned the other split
    assert "  ?  " in repr(table)

    assert TrainedRun.load(outputs, "final").name == second.name
    with pytest.raises(TinyVocError) as refused:
        TrainedRun.load(outputs, "final", run=FIRST)
    for said in (f"run {FIRST} learned dataset sample (fingerprint {first.fingerprint})",
                 f"now sample (fingerprint {other.fingerprint})", "03 and 04 do not use it"):  # fmt: skip
        assert said in str(refused.value)

    recipe = runs.Recipe("smoke", ("TEST.EVAL_PERIOD", 0), 40).on(other)
    assert recipe.auto_name() == FIRST
    signature = outputs.run(FIRST).config.read_text()  # the very config FIRST trained
    learned = re.escape(f"run {FIRST} learned dataset sample (fingerprint {first.fingerprint})")
    with pytest.raises(TinyVocError, match=learned + ".*02 does not resume it"):
        runs.choose(outputs, FIRST, recipe, signature, None)
    assert runs.choose(outputs, "auto", recipe, signature, None)[0] == f"{FIRST}-2"  # a new run, not FIRST resumed

    prepare_dataset(first.data_files, outputs, "sample", val_fraction=0.2, seed=0)  # the first dataset again
    assert TrainedRun.load(outputs).name == FIRST  # one project folder, two datasets: each finds its own runs
    assert runs.choose(outputs, "auto", recipe.on(DatasetRecord.load(outputs)), signature, None)[0] == FIRST
