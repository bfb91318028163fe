"""Smoke training: metrics and the best checkpoint, checkpoint retention (a finished run keeps best and final only),
TensorBoard events, progress lines, resume after an interruption, the time-budget plan across a resume, determinism."""

import json
import re

import pytest
import torch

from tinyvoc.core.errors import TinyVocError
from tinyvoc.core.paths import DataFiles, Outputs
from tinyvoc.dataset.record import prepare_dataset
from tinyvoc.inference.trained_run import chosen_checkpoint
from tinyvoc.training import metrics, runs
from tinyvoc.training import train as training

SHORT = ["SOLVER.CHECKPOINT_PERIOD", 5, "TEST.EVAL_PERIOD", 10]
FINISHED = ["SOLVER.CHECKPOINT_PERIOD", 5, "TEST.EVAL_PERIOD", 10]  # six periodic saves: two are kept


def _outputs(sample, path):
    outputs = Outputs.at(path)
    prepare_dataset(DataFiles.in_folder(sample), outputs, "sample", val_fraction=0.2, seed=0)
    return outputs


def the_run(outputs):
    """The files of the project's one run."""
    (name,) = runs.names(outputs)
    return outputs.run(name)


def _losses(outputs):
    rows = metrics.read_metrics(the_run(outputs).metrics)
    return [(r["iteration"], r["total_loss"]) for r in rows if "total_loss" in r]


@pytest.fixture(scope="module")
def finished_run(sample, tmp_path_factory):
    outputs = _outputs(sample, tmp_path_factory.mktemp("run"))
    run = training.train(outputs, "smoke", max_iter=30, overrides=FINISHED)
    return outputs, run


def test_metrics_and_best_checkpoint_follow_validation_ap50(finished_run):
    outputs, run = finished_run
    assert run.finished and run.iteration == 30
    rows = metrics.read_metrics(the_run(outputs).metrics)
    evals = [(r["segm/AP50"], r["iteration"]) for r in rows if "segm/AP50" in r]
    assert [it for _, it in evals] == [9, 19, 30]  # the final evaluation is logged after the last step
    best_ap, best_iter = max(evals, key=lambda e: (e[0], -e[1]))
    assert run.best_ap50 == pytest.approx(best_ap / 100)
    saved = torch.load(the_run(outputs).dir / "model_best.pth", map_location="cpu", weights_only=False)
    assert saved["iteration"] == best_iter
    assert chosen_checkpoint(the_run(outputs)) == the_run(outputs).dir / "model_best.pth"
    assert (the_run(outputs).dir / "model_final.pth").exists()
    assert json.loads(the_run(outputs).record.read_text())["best_iter"] == best_iter


def test_rerun_after_finish_does_not_train_again(finished_run, capsys):
    outputs, run = finished_run
    mtime = (the_run(outputs).dir / "model_final.pth").stat().st_mtime_ns
    again = training.train(outputs, "smoke", max_iter=30, overrides=FINISHED)
    assert again == run
    assert "already finished" in capsys.readouterr().out
    assert (the_run(outputs).dir / "model_final.pth").stat().st_mtime_ns == mtime


def test_another_recipe_under_a_taken_name_is_refused(finished_run):
    outputs, run = finished_run
    refusal = f"run {re.escape(run.name)} .* holds another recipe .*Choose a new name .*RESUME = False"
    with pytest.raises(TinyVocError, match=refusal):
        training.train(outputs, "smoke", max_iter=40, overrides=FINISHED, run=run.name)
    assert runs.names(outputs) == [run.name]


def test_interrupted_run_resumes_from_last_checkpoint(sample, tmp_path, monkeypatch, capsys):
    from detectron2.engine import SimpleTrainer

    outputs = _outputs(sample, tmp_path / "out")
    original = SimpleTrainer.run_step

    def crash_at_15(self):
        if self.iter == 15:
            raise KeyboardInterrupt("simulated Colab disconnect")
        return original(self)

    monkeypatch.setattr(SimpleTrainer, "run_step", crash_at_15)
    with pytest.raises(KeyboardInterrupt):
        training.train(outputs, "smoke", max_iter=20, overrides=SHORT)
    files = the_run(outputs)
    assert files.last_checkpoint.read_text().strip() == "model_0000014.pth"
    assert not files.record.exists()
    # a stopped run keeps what resumes: the last two periodic checkpoints, with the optimizer's state
    assert [p.name for p in files.periodic()] == ["model_0000009.pth", "model_0000014.pth"]
    first = torch.load(files.periodic()[-1], map_location="cpu", weights_only=False)
    assert "optimizer" in first["trainer"]["_trainer"]
    periodic_size = files.periodic()[-1].stat().st_size
    monkeypatch.setattr(SimpleTrainer, "run_step", original)

    run = training.train(outputs, "smoke", max_iter=20, overrides=SHORT)
    assert "Resuming from iteration 15 of 20" in capsys.readouterr().out
    assert run.finished and run.iteration == 20 and run.name == files.name
    final = torch.load(files.final, map_location="cpu", weights_only=False)
    assert final["iteration"] == 19
    name = "backbone.bottom_up.stem.conv1.weight"
    assert not torch.equal(final["model"][name], first["model"][name])
    # weights only: well under the periodic checkpoint, which also carries SGD momentum
    assert files.final.stat().st_size < 0.7 * periodic_size


def test_fixed_seed_gives_identical_losses(sample, tmp_path):
    """Two runs, ten iterations each: the logged loss (the last one, a median over every step) is bit-identical."""
    losses = []
    for k in range(2):
        outputs = _outputs(sample, tmp_path / f"det{k}")
        training.train(outputs, "smoke", max_iter=10, overrides=[*SHORT, "TEST.EVAL_PERIOD", 0])
        losses.append(_losses(outputs))
    assert losses[0] == losses[1] and len(losses[0]) >= 1


def _load(path):
    return torch.load(path, map_location="cpu", weights_only=False)


def test_a_finished_run_keeps_best_and_final_alone_and_they_hold_weights_only(finished_run):
    outputs, _ = finished_run
    files = the_run(outputs)
    assert files.periodic() == []  # nothing resumes a finished run: its periodic checkpoints went
    assert sorted(p.name for p in files.dir.glob("*.pth")) == ["model_best.pth", "model_final.pth"]
    for path in (files.best, files.final):
        assert set(_load(path)) == {"model", "iteration"}, path
    assert files.last_checkpoint.read_text() == "model_final.pth"


def test_tensorboard_events_hold_losses_lr_and_validation_ap(finished_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    outputs, _ = finished_run
    assert list(the_run(outputs).dir.glob("events.out.tfevents.*"))
    events = EventAccumulator(str(the_run(outputs).dir))
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"total_loss", "loss_mask", "lr", "segm/AP50", "bbox/AP50", "eval_seconds"} <= scalars
    assert [e.step for e in events.Scalars("segm/AP50")] == [9, 19, 30]
    assert [e.step for e in events.Scalars("total_loss")][-1] == 29


def test_progress_is_one_compact_line_per_period():
    import io

    from detectron2.utils.events import EventStorage

    from tinyvoc.training.engine import ProgressPrinter, progress_period

    assert progress_period(300) == 20 and progress_period(4600) == 40 and progress_period(30000) == 300
    out = io.StringIO()
    printer = ProgressPrinter(max_iter=100, period=40, eval_period=50, stream=out)
    with EventStorage(0) as storage:
        for it in range(100):
            storage.iter = it
            storage.put_scalars(total_loss=1.5, loss_cls=0.25, loss_box_reg=0.5, loss_mask=0.625, loss_rpn_cls=0.125)
            storage.put_scalars(time=0.5, lr=0.005, smoothing_hint=False)
            if it == 49:
                storage.put_scalars(**{"segm/AP50": 51.2, "eval_seconds": 10.0}, smoothing_hint=False)
            if (it + 1) % 20 == 0:  # detectron2's writer period
                printer.write()
    lines = out.getvalue().splitlines()
    assert lines == [
        "iter 40/100  eta 0:00:30  loss 1.500 (cls 0.25 box 0.5 mask 0.625 rpn 0.125)  lr 0.005",
        "iter 80/100  eta 0:00:20  loss 1.500 (cls 0.25 box 0.5 mask 0.625 rpn 0.125)  lr 0.005  val AP50 0.512@49",
        "iter 100/100  eta 0:00:00  loss 1.500 (cls 0.25 box 0.5 mask 0.625 rpn 0.125)  lr 0.005  val AP50 0.512@49",
    ]


def test_a_budgeted_run_resumes_with_the_same_plan(sample, tmp_path, monkeypatch, capsys):
    from detectron2.engine import SimpleTrainer

    from tinyvoc.training import budget, speed

    measured = []

    def fake_speed(cfg, **kwargs):  # a fixed speed: the plan is then known in advance
        measured.append(cfg.SOLVER.MAX_ITER)
        return budget.Speed(10.0, eval_seconds=6.0, checkpoint_seconds=0.0, setup_seconds=0.0, measured_seconds=0.0)

    monkeypatch.setattr(speed, "measure_speed", fake_speed)
    outputs = _outputs(sample, tmp_path / "out")
    hours = 360 / 3600  # 360 s: 3 validations of 6 s, then 34 iterations of 10 s
    slow = ["SOLVER.BASE_LR", 0.005]  # the profile's LR after a 17-iteration warmup can diverge: not tested here
    original = SimpleTrainer.run_step

    def crash_at_20(self):
        if self.iter == 20:
            raise KeyboardInterrupt("simulated Colab disconnect")
        return original(self)

    monkeypatch.setattr(SimpleTrainer, "run_step", crash_at_20)
    with pytest.raises(KeyboardInterrupt):
        training.train(outputs, "smoke", time_budget_h=hours, overrides=slow)
    assert measured == [300]  # measured once, with the profile's own config
    plan = budget.Plan.load(the_run(outputs).plan)
    assert (plan.max_iter, plan.eval_period, plan.checkpoint_period, plan.warmup_iters) == (34, 12, 12, 17)
    assert (plan.bound, plan.train_images, plan.max_epochs) == ("budget", 120, 12)  # the record's count reached it
    assert "Plan: 10 s/iter -> 34 iterations" in capsys.readouterr().out
    config = the_run(outputs).config.read_text()
    assert "MAX_ITER: 34" in config and "WARMUP_ITERS: 17" in config
    monkeypatch.setattr(SimpleTrainer, "run_step", original)

    name = the_run(outputs).name
    with pytest.raises(TinyVocError, match=f"run {re.escape(name)} .* holds another recipe"):
        training.train(outputs, "smoke", time_budget_h=2 * hours, overrides=slow, run=name)
    run = training.train(outputs, "smoke", time_budget_h=hours, overrides=slow)
    printed = capsys.readouterr().out
    assert "Continuing the saved plan" in printed and "Resuming from iteration 12 of 34" in printed
    assert measured == [300]  # not measured again
    assert run.finished and run.iteration == 34 and run.time_budget_h == hours
    assert budget.Plan.load(the_run(outputs).plan) == plan and the_run(outputs).config.read_text() == config
    evals = [r["iteration"] for r in metrics.read_metrics(the_run(outputs).metrics) if "segm/AP50" in r]
    assert evals == [11, 23, 34]
    assert "iter 34/34" in printed and "val AP50" in printed


def test_a_checkpointer_that_is_not_rank_0_writes_nothing(tmp_path):
    """With N workers every rank holds a checkpointer; only rank 0's (``save_to_disk``) may touch the folder."""
    from tinyvoc.training.engine import AtomicCheckpointer

    model = torch.nn.Linear(2, 2)
    AtomicCheckpointer(model, str(tmp_path / "rank1"), save_to_disk=False).save("model_0000009", iteration=9)
    assert not (tmp_path / "rank1").exists() or list((tmp_path / "rank1").iterdir()) == []
    AtomicCheckpointer(model, str(tmp_path / "rank0")).save("model_0000009", iteration=9)
    assert sorted(p.name for p in (tmp_path / "rank0").iterdir()) == ["last_checkpoint", "model_0000009.pth"]
