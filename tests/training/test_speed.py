"""One trainer: the budget's warm-up times ``TinyVocTrainer`` itself, and leaves the run's folder as it was."""

from tinyvoc.core.paths import DataFiles, Outputs
from tinyvoc.dataset.record import DatasetRecord, prepare_dataset
from tinyvoc.dataset.registry import register_all
from tinyvoc.training import engine, speed
from tinyvoc.training.config import train_config


def test_the_warm_up_times_the_trainers_own_steps_and_writes_nothing_in_the_run_folder(sample, tmp_path, monkeypatch):
    outputs = Outputs.at(tmp_path / "out")
    prepare_dataset(DataFiles.in_folder(sample), outputs, "sample", val_fraction=0.2, seed=0)
    record = DatasetRecord.load(outputs)
    register_all(record)
    _, cfg = train_config(outputs, "smoke", record=record)
    steps, built = [], []
    original_init, original_step = engine.TinyVocTrainer.__init__, engine.TinyVocTrainer.run_step

    def init(self, config):
        built.append(config)
        original_init(self, config)

    def run_step(self):
        steps.append(self.iter)
        original_step(self)

    monkeypatch.setattr(engine.TinyVocTrainer, "__init__", init)
    monkeypatch.setattr(engine.TinyVocTrainer, "run_step", run_step)
    outputs.run("smoke").dir.mkdir(parents=True)
    measured = speed.measure_speed(cfg, iterations=3, skip=1, eval_images=2, save_dir=str(outputs.run("smoke").dir))
    assert steps == [0, 1, 2, 3]  # the trainer's run_step, skip + iterations times
    (config,) = built  # one trainer, on the run's config but for its scratch output folder
    assert config.SOLVER == cfg.SOLVER and config.MODEL == cfg.MODEL and config.OUTPUT_DIR != cfg.OUTPUT_DIR
    assert measured.seconds_per_iter > 0 and measured.eval_seconds > 0 and measured.checkpoint_seconds > 0
    assert measured.iterations == 4
    assert list(outputs.run("smoke").dir.iterdir()) == []  # no metrics, events or checkpoint left in the run's folder
