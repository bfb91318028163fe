"""Smoke training: metrics and the best checkpoint, resume after an interruption, determinism."""

import json

import pytest
import torch
from tinyvoc import training
from tinyvoc.dataset import DataFiles, prepare_dataset
from tinyvoc.errors import TinyVocError
from tinyvoc.paths import Outputs
from tinyvoc.sample_data import make_sample_dataset

SHORT = ["SOLVER.CHECKPOINT_PERIOD", 10, "TEST.EVAL_PERIOD", 10]


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return make_sample_dataset(tmp_path_factory.mktemp("sample"))


def _outputs(sample, path):
    outputs = Outputs.at(path)
    prepare_dataset(DataFiles.in_folder(sample), outputs, "sample", val_fraction=0.2, seed=0)
    return outputs


def _losses(outputs):
    return [(r["iteration"], r["total_loss"]) for r in training.read_metrics(outputs.metrics) if "total_loss" in r]


@pytest.fixture(scope="module")
def finished_run(sample, tmp_path_factory):
    outputs = _outputs(sample, tmp_path_factory.mktemp("run"))
    run = training.train(outputs, "smoke", max_iter=30, overrides=SHORT)
    return outputs, run


def test_metrics_and_best_checkpoint_follow_validation_ap50(finished_run):
    outputs, run = finished_run
    assert run.finished and run.iteration == 30
    evals = [(r["segm/AP50"], r["iteration"]) for r in training.read_metrics(outputs.metrics) if "segm/AP50" in r]
    assert [it for _, it in evals] == [9, 19, 30]  # the final evaluation is logged after the last step
    best_ap, best_iter = max(evals, key=lambda e: (e[0], -e[1]))
    assert run.best_ap50 == pytest.approx(best_ap / 100)
    saved = torch.load(outputs.train_dir / "model_best.pth", map_location="cpu", weights_only=False)
    assert saved["iteration"] == best_iter
    assert training.chosen_checkpoint(outputs) == outputs.train_dir / "model_best.pth"
    assert (outputs.train_dir / "model_final.pth").exists()
    assert json.loads(outputs.train_record.read_text())["best_iter"] == best_iter


def test_rerun_after_finish_does_not_train_again(finished_run, capsys):
    outputs, run = finished_run
    mtime = (outputs.train_dir / "model_final.pth").stat().st_mtime_ns
    again = training.train(outputs, "smoke", max_iter=30, overrides=SHORT)
    assert again == run
    assert "already finished" in capsys.readouterr().out
    assert (outputs.train_dir / "model_final.pth").stat().st_mtime_ns == mtime


def test_changed_config_with_resume_is_refused(finished_run):
    outputs, _ = finished_run
    with pytest.raises(TinyVocError, match="different config"):
        training.train(outputs, "smoke", max_iter=40, overrides=SHORT)


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
    assert (outputs.train_dir / "last_checkpoint").read_text().strip() == "model_0000009.pth"
    assert not outputs.train_record.exists()
    monkeypatch.setattr(SimpleTrainer, "run_step", original)

    run = training.train(outputs, "smoke", max_iter=20, overrides=SHORT)
    assert "Resuming from iteration 10 of 20" in capsys.readouterr().out
    assert run.finished and run.iteration == 20
    final = torch.load(outputs.train_dir / "model_final.pth", map_location="cpu", weights_only=False)
    first = torch.load(outputs.train_dir / "model_0000009.pth", map_location="cpu", weights_only=False)
    assert final["iteration"] == 19
    name = "backbone.bottom_up.stem.conv1.weight"
    assert not torch.equal(final["model"][name], first["model"][name])


def test_fixed_seed_gives_identical_losses(sample, tmp_path):
    runs = []
    for k in range(2):
        outputs = _outputs(sample, tmp_path / f"det{k}")
        training.train(outputs, "smoke", max_iter=20, overrides=[*SHORT, "TEST.EVAL_PERIOD", 0])
        runs.append(_losses(outputs))
    assert runs[0] == runs[1] and len(runs[0]) >= 1
