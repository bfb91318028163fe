"""Bad order, bad files, interruptions and odd images: clear messages, no lost or half-written work."""

import builtins
import errno
import io
import json
import os
import random
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tinyvoc.core import faults, space
from tinyvoc.core.errors import TinyVocError
from tinyvoc.core.paths import DataFiles, Outputs
from tinyvoc.dataset.check import check_coco_file
from tinyvoc.dataset.record import DatasetRecord, prepare_dataset
from tinyvoc.dataset.sample import make_sample_dataset
from tinyvoc.inference import cached_predictions
from tinyvoc.inference.selection import Selection
from tinyvoc.inference.trained_run import TrainedRun, load_checkpoint_state
from tinyvoc.runner import run_notebook
from tinyvoc.submission import export
from tinyvoc.submission.check import validate_submission
from tinyvoc.training import metrics, runs
from tinyvoc.training import train as training


@pytest.mark.parametrize(
    "notebook, needs",
    [
        ("02_train.ipynb", "01_register_dataset.ipynb"),
        ("03_visualize.ipynb", "01_register_dataset.ipynb"),
        ("04_export_submission.ipynb", "01_register_dataset.ipynb"),
    ],
)
def test_a_notebook_run_first_names_the_one_to_run(notebook, needs, tmp_path):
    outputs = Outputs.at(tmp_path / "output")
    with pytest.raises(TinyVocError, match=f"TinyVocError: .*Run {needs} first"):
        run_notebook(notebook, {"PROJECT_DIR": str(tmp_path)}, outputs)
    assert (outputs.executed_notebooks / notebook).is_file()  # written locally, then put into the project folder
    assert not list(outputs.executed_notebooks.glob(".*.tmp"))


def test_export_before_training_names_notebook_02(tmp_path):
    outputs = Outputs.at(tmp_path / "out")
    prepare_dataset(DataFiles.in_folder(make_sample_dataset(tmp_path / "s")), outputs, "sample", 0.2, 0)
    with pytest.raises(TinyVocError, match="Run 02_train.ipynb first"):
        cached_predictions.predict_split(TrainedRun.load(outputs), "test")


def test_truncated_or_foreign_checkpoints_are_named(trained_sample, tmp_path):
    good = the_run(trained_sample).dir / "model_final.pth"
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(TinyVocError, match="truncated.pth cannot be read as a checkpoint.*truncated"):
        load_checkpoint_state(truncated, 3)
    with pytest.raises(TinyVocError, match="model_final.pth was trained for 3 classes, but this dataset has 20"):
        load_checkpoint_state(good, 20)
    not_ours = tmp_path / "weights.pth"
    torch.save({"something": 1}, not_ours)
    with pytest.raises(TinyVocError, match="not a detectron2 training checkpoint"):
        load_checkpoint_state(not_ours, 3)
    with pytest.raises(TinyVocError, match="cannot be read as a checkpoint"):
        cached_predictions.predict_split(TrainedRun.load(trained_sample, str(truncated)), "test")


def the_run(outputs):
    """The files of the project's one training run (``output/runs/<name>/``)."""
    (name,) = runs.names(outputs)
    return outputs.run(name)


def run_of(outputs, opts, max_iter):
    """The files of the smoke run these settings train (``RUN = "auto"`` names it after them)."""
    return outputs.run(runs.Recipe("smoke", tuple(opts), max_iter).auto_name())


def _outputs(sample, path):
    outputs = Outputs.at(path)
    prepare_dataset(DataFiles.in_folder(sample), outputs, "sample", val_fraction=0.2, seed=0)
    return outputs


SHORT = ["SOLVER.CHECKPOINT_PERIOD", 5, "TEST.EVAL_PERIOD", 10]


def test_a_crash_while_saving_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    sample = make_sample_dataset(tmp_path / "sample")
    outputs = _outputs(sample, tmp_path / "out")
    real_save = torch.save

    def dying_save(obj, f, *args, **kwargs):
        name = str(getattr(f, "name", f))  # the checkpointer hands torch an open file
        if name.endswith(".tmp") and "model_0000009" in name:
            f.write(b"half a checkpoint")
            raise KeyboardInterrupt("power cut while saving")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        training.train(outputs, "smoke", max_iter=15, overrides=SHORT)
    assert (the_run(outputs).dir / "last_checkpoint").read_text() == "model_0000004.pth"
    assert not (the_run(outputs).dir / "model_0000009.pth").exists()
    assert not list(the_run(outputs).dir.glob("*.tmp"))
    monkeypatch.setattr(torch, "save", real_save)
    run = training.train(outputs, "smoke", max_iter=15, overrides=SHORT)
    assert run.finished and run.iteration == 15


@pytest.fixture(scope="module")
def interrupted_at_17(tmp_path_factory):
    """A run of 20 (a checkpoint every 5) cut at iteration 17, as a disconnect leaves it: made once, each test below
    resumes a copy of it (it was trained once for each before)."""
    from detectron2.engine import SimpleTrainer

    root = tmp_path_factory.mktemp("interrupted")
    outputs = _outputs(make_sample_dataset(root / "sample"), root / "out")
    files = run_of(outputs, SHORT, 20)
    original = SimpleTrainer.run_step

    def crash_at_17(self):
        if self.iter == 17:
            raise KeyboardInterrupt("disconnect")
        return original(self)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(SimpleTrainer, "run_step", crash_at_17)
        with pytest.raises(KeyboardInterrupt):
            training.train(outputs, "smoke", max_iter=20, overrides=SHORT)
    assert files.last_checkpoint.read_text() == "model_0000014.pth"
    assert [p.name for p in files.periodic()] == ["model_0000009.pth", "model_0000014.pth"]  # 0000004 pruned
    return outputs


def _copy(outputs, path):
    shutil.copytree(outputs.root, path)
    return Outputs.at(path)


def test_a_truncated_newest_checkpoint_resumes_from_the_previous_one(interrupted_at_17, tmp_path, capsys):
    """After a disconnect Drive may hold only part of the file ``last_checkpoint`` names."""
    outputs = _copy(interrupted_at_17, tmp_path / "out")
    files = run_of(outputs, SHORT, 20)
    newest = files.dir / "model_0000014.pth"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 3])
    leftover = files.dir / ".model_0000019.pth.k2j4x9.tmp"  # atomic_path's name for a save that was killed
    leftover.write_bytes(b"half a checkpoint")
    capsys.readouterr()

    run = training.train(outputs, "smoke", max_iter=20, overrides=SHORT)
    out = capsys.readouterr().out
    assert "Removed 1 unfinished file(s) left by an interrupted save: .model_0000019.pth.k2j4x9.tmp" in out
    assert not leftover.exists()
    assert "model_0000014.pth cannot be read" in out and "Resuming from model_0000009.pth instead." in out
    assert "Resuming from iteration 10 of 20" in out
    assert run.finished and run.iteration == 20
    assert torch.load(files.final, map_location="cpu", weights_only=False)["iteration"] == 19


def test_resume_skips_missing_checkpoints_and_starts_over_when_none_is_readable(tmp_path, capsys):
    from tinyvoc.training.engine import AtomicCheckpointer

    model = torch.nn.Linear(2, 2)
    checkpointer = AtomicCheckpointer(model, str(tmp_path))
    for it in (4, 9, 14):
        checkpointer.save(f"model_{it:07d}", iteration=it)
    assert [p.name for p in checkpointer.files.periodic()] == ["model_0000009.pth", "model_0000014.pth"]
    (tmp_path / "model_0000014.pth").unlink()  # named by last_checkpoint, never uploaded
    assert checkpointer.resume_or_load("", resume=True)["iteration"] == 9
    assert checkpointer.resumed_from == tmp_path / "model_0000009.pth"
    assert "model_0000014.pth is missing" in capsys.readouterr().out
    (tmp_path / "model_0000009.pth").write_bytes(b"not a checkpoint")
    assert checkpointer.resume_or_load("", resume=True) == {}
    assert checkpointer.resumed_from is None
    assert "No readable checkpoint" in capsys.readouterr().out


def test_fault_injection_random_interruptions_end_consistent(tmp_path, monkeypatch):
    from detectron2.engine import SimpleTrainer

    sample = make_sample_dataset(tmp_path / "sample")
    outputs = _outputs(sample, tmp_path / "out")
    original = SimpleTrainer.run_step
    rng = random.Random(7)
    stops = sorted(rng.sample(range(3, 24), 3))
    for stop in stops:

        def crash(self, stop=stop):
            if self.iter == stop:
                raise KeyboardInterrupt(f"disconnect at {stop}")
            return original(self)

        monkeypatch.setattr(SimpleTrainer, "run_step", crash)
        try:
            training.train(outputs, "smoke", max_iter=25, overrides=SHORT)
        except KeyboardInterrupt:
            pass
    monkeypatch.setattr(SimpleTrainer, "run_step", original)
    run = training.train(outputs, "smoke", max_iter=25, overrides=SHORT)
    assert run.finished and run.iteration == 25
    last = (the_run(outputs).dir / "last_checkpoint").read_text()
    assert last == "model_final.pth"
    final = torch.load(the_run(outputs).dir / last, map_location="cpu", weights_only=False)
    assert final["iteration"] == 24
    rows = metrics.read_metrics(the_run(outputs).metrics)
    assert max(r["iteration"] for r in rows if "total_loss" in r) == 24
    evals = [(r["segm/AP50"], r["iteration"]) for r in rows if "segm/AP50" in r]
    assert {it for _, it in evals} == {9, 19, 25}  # every 10 iterations, and the final one after training
    best = torch.load(the_run(outputs).dir / "model_best.pth", map_location="cpu", weights_only=False)
    assert best["iteration"] == max(evals, key=lambda e: (e[0], -e[1]))[1]
    assert json.loads(the_run(outputs).record.read_text())["best_iter"] == best["iteration"]


def _odd_images(folder, rotated=False):
    """Images as users have them; returns test-json entries with the sizes a COCO file would list.

    ``rotated`` adds a JPEG with an EXIF "rotate 90" tag, listed with its stored size.
    """
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    entries = []

    def add(name, image, size=None):
        image.save(folder / name) if not isinstance(image, tuple) else image[0].save(folder / name, exif=image[1])
        w, h = size or (image[0] if isinstance(image, tuple) else image).size
        entries.append({"id": 100 + len(entries), "file_name": name, "height": h, "width": w})

    rgb = Image.fromarray(rng.integers(0, 255, (90, 120, 3), dtype=np.uint8))
    add("gray.jpg", rgb.convert("L"))
    add("alpha.png", rgb.convert("RGBA"))
    add("UPPER.JPG", rgb)
    if rotated:
        exif = Image.Exif()
        exif[0x0112] = 6  # rotated 90 degrees: viewers and detectron2 show it 90 wide and 120 high
        add("rotated.jpg", (rgb, exif))
    add("tiny.jpg", rgb.resize((9, 6)))
    add("large.jpg", rgb.resize((2600, 1900)))
    return entries


def _odd_test_set(trained_sample, tmp_path, rotated=False):
    """A copy of the trained outputs whose test set is ``_odd_images``; returns (outputs, test json, entries)."""
    outputs = Outputs.at(tmp_path / "out")
    shutil.copytree(trained_sample.root, outputs.root, dirs_exist_ok=True)
    record = json.loads(outputs.dataset_record.read_text())
    images = _odd_images(tmp_path / "odd_images", rotated=rotated)
    test_json = tmp_path / "odd_test.json"
    categories = [{"id": i, "name": n} for i, n in zip(record["category_ids"], record["class_names"])]
    test_json.write_text(json.dumps({"images": images, "categories": categories}))
    record["files"].update(test_json=str(test_json), test_images=str(tmp_path / "odd_images"))
    outputs.dataset_record.write_text(json.dumps(record))
    return outputs, test_json, images


def test_odd_images_predict_and_export_with_the_json_sizes(trained_sample, tmp_path):
    outputs, test_json, images = _odd_test_set(trained_sample, tmp_path)
    cached = cached_predictions.predict_split(TrainedRun.load(outputs, "final"), "test", score_floor=0.0)
    sizes = {im["id"]: [im["height"], im["width"]] for im in images}
    assert all(d["segmentation"]["size"] == sizes[d["image_id"]] for d in cached.detections)
    report = export.export_submission(cached, test_json, outputs.submission, Selection(0.0))
    assert report.ok, report.summary()
    assert validate_submission(outputs.submission, test_json).ok
    assert DatasetRecord.load(outputs).data_files.test_json == test_json


def test_exif_rotated_test_image_is_refused_by_the_check_and_by_prediction(trained_sample, tmp_path):
    # detectron2 would turn it to 90x120 while the json (and the RLE sizes) say 120x90: the masks would
    # be predicted on a turned picture. Issue 12: refused everywhere, naming the file (README, Troubleshooting).
    outputs, test_json, _ = _odd_test_set(trained_sample, tmp_path, rotated=True)
    report = check_coco_file(test_json, tmp_path / "odd_images", require_annotations=False)
    assert [Path(p.file).name for p in report.errors] == ["rotated.jpg"], report.summary()
    assert "EXIF orientation 6" in report.errors[0].message
    with pytest.raises(TinyVocError, match=r"rotated\.jpg: rotated\.jpg has EXIF orientation 6"):
        cached_predictions.predict_split(TrainedRun.load(outputs, "final"), "test", score_floor=0.0)


# --- a Drive that drops, a disk that fills (issue 22) ---------------------------------------------------------


class StorageFault:
    """File functions under ``folder`` fail with ``error`` (a dropped Drive's ENOTCONN by default) from the first
    touch of a path containing ``trigger``, once a path containing ``armed_by`` was touched, for ``seconds`` (None:
    until :meth:`end`). In this process: with one worker, training runs here."""

    def __init__(self, monkeypatch, folder, trigger, armed_by=None, seconds=None, error=errno.ENOTCONN):
        self.folder, self.trigger, self.armed, self.seconds, self.error = (
            str(folder),
            trigger,
            not armed_by,
            seconds,
            error,
        )
        self.armed_by, self.since, self.over, self.failures = armed_by, None, False, 0
        for module, name in ((builtins, "open"), (io, "open"), (os, "open"), (os, "replace"), (os, "unlink")):
            monkeypatch.setattr(module, name, self._wrap(getattr(module, name)))

    def _failing(self, path) -> bool:
        if self.over or isinstance(path, int) or not os.fsdecode(path).startswith(self.folder):
            return False
        path = os.fsdecode(path)
        self.armed = self.armed or self.armed_by in path
        if self.since is None and self.armed and self.trigger in path:
            self.since = time.monotonic()
        return self.since is not None and (self.seconds is None or time.monotonic() - self.since < self.seconds)

    def _wrap(self, function):
        def call(path, *args, **kwargs):
            if self._failing(path):
                self.failures += 1
                raise OSError(self.error, os.strerror(self.error), os.fsdecode(path))
            return function(path, *args, **kwargs)

        return call

    def end(self):
        self.over = True


def assert_nothing_half_written(outputs):
    files = the_run(outputs)
    assert not list(outputs.root.rglob("*.tmp")), "a temporary file was left behind"
    lines = files.metrics.read_text().splitlines() if files.metrics.exists() else []
    for line in lines:
        json.loads(line)  # every line complete
    for checkpoint in [*files.periodic(), files.best, files.final]:
        if checkpoint.exists():
            torch.load(checkpoint, map_location="cpu", weights_only=False)


DROP_RUN = ["SOLVER.CHECKPOINT_PERIOD", 5, "TEST.EVAL_PERIOD", 10]
FAST_RUN = ["SOLVER.CHECKPOINT_PERIOD", 5, "TEST.EVAL_PERIOD", 0]  # no validation: a stop at iteration 15 of 20


def test_a_drive_that_drops_and_comes_back_costs_no_iteration(tmp_path, monkeypatch, capsys):
    """The drop hits the final validation (reading its split's json); it is retried until the folder answers."""
    outputs = _outputs(make_sample_dataset(tmp_path / "sample"), tmp_path / "out")
    monkeypatch.setenv(faults.RETRY_ENV, "60")
    fault = StorageFault(monkeypatch, outputs.root, trigger="val.json", armed_by="model_0000014", seconds=2.5)
    run = training.train(outputs, "smoke", max_iter=20, overrides=DROP_RUN)
    out = capsys.readouterr().out
    assert fault.failures and "end of training: EvalHook: [Errno 107] Transport endpoint is not connected" in out
    assert "retrying for up to 60 s" in out and "The project folder answers again after" in out
    assert "Resuming" not in out and run.finished and run.iteration == 20
    assert {r["iteration"] for r in metrics.read_metrics(the_run(outputs).metrics) if "segm/AP50" in r} == {9, 20}
    assert_nothing_half_written(outputs)


def test_a_drive_that_does_not_come_back_stops_with_what_is_safe_and_resumes_later(tmp_path, monkeypatch, capsys):
    outputs = _outputs(make_sample_dataset(tmp_path / "sample"), tmp_path / "out")
    monkeypatch.setenv(faults.RETRY_ENV, "3")
    fault = StorageFault(monkeypatch, outputs.root, trigger="model_0000014")
    stopped = run_of(outputs, FAST_RUN, 20)
    with pytest.raises(TinyVocError) as stop:
        training.train(outputs, "smoke", max_iter=20, overrides=FAST_RUN)
    lines = str(stop.value).splitlines()
    assert lines[0] == (
        "Training at iteration 15 of 20 stopped: the project folder stopped answering ([Errno 107] Transport endpoint "
        f"is not connected: '{stopped.dir}/" + lines[0].split(f"{stopped.name}/")[1]
    )
    assert re.search(r"did not come back within [3-9] s of retries\.$", lines[0])
    assert lines[1] == (
        "Safe in the project folder: model_0000009.pth (the last complete checkpoint: a re-run resumes from "
        "iteration 10)."
    )
    only_here = "iterations 10-15 (in memory only), and whatever Drive had not uploaded yet"
    assert lines[2] == f"Only on this runtime (gone with it): {only_here}."
    assert lines[3].startswith("What to do: restart the runtime (Runtime > Restart session")
    assert lines[3].endswith("run 02_train again with the same settings: it resumes from iteration 10 of 20.")
    fault.end()
    assert_nothing_half_written(outputs)
    run = training.train(outputs, "smoke", max_iter=20, overrides=FAST_RUN)
    assert "Resuming from iteration 10 of 20" in capsys.readouterr().out
    assert run.finished and run.iteration == 20


def test_a_full_disk_mid_run_stops_at_once_with_the_free_space_and_resumes(tmp_path, monkeypatch, capsys):
    outputs = _outputs(make_sample_dataset(tmp_path / "sample"), tmp_path / "out")
    fault = StorageFault(monkeypatch, outputs.root, trigger="model_0000014", error=errno.ENOSPC)
    with pytest.raises(TinyVocError) as stop:
        training.train(outputs, "smoke", max_iter=20, overrides=FAST_RUN)
    message = str(stop.value)
    assert fault.failures == 1  # not retried: waiting does not free space
    assert message.startswith("Training at iteration 15 of 20 stopped: the disk or the Drive quota is full ([Errno 28]")
    assert re.search(r"; \d+(\.\d+)? (MiB|GB) free there\)", message)
    assert "model_0000009.pth (the last complete checkpoint" in message
    assert "empty the bin, deleted files still count" in message and "it resumes from iteration 10 of 20" in message
    fault.end()
    assert_nothing_half_written(outputs)
    run = training.train(outputs, "smoke", max_iter=20, overrides=FAST_RUN)
    assert "Resuming from iteration 10 of 20" in capsys.readouterr().out and run.finished


def test_a_drive_too_small_for_the_run_stops_before_the_first_iteration(tmp_path, monkeypatch, capsys):
    from tinyvoc.training.storage import checkpoint_sizes

    outputs = _outputs(make_sample_dataset(tmp_path / "sample"), tmp_path / "out")
    real_statvfs = os.statvfs
    ten_mib = lambda path: os.statvfs_result((2**20, 2**20, 10**6, 10, 10, 0, 0, 0, 0, 255))  # noqa: E731
    monkeypatch.setattr(space.os, "statvfs", ten_mib)
    with pytest.raises(TinyVocError) as stop:
        training.train(outputs, "smoke", max_iter=10, overrides=FAST_RUN)
    message = str(stop.value)
    assert re.search(
        r"Not enough space for this run's checkpoints \(2 periodic of \d+ MiB, best and final of \d+ MiB\)", message
    )
    files = run_of(outputs, FAST_RUN, 10)
    assert re.search(rf"it needs \d+ MiB in {re.escape(str(files.dir))}, and 10 MiB is free there\. Nothing", message)
    assert "empty the bin too, deleted files still count" in message and "another PROJECT_DIR" in message
    assert not list(files.dir.glob("*.pth")) and not files.config.exists()
    monkeypatch.setattr(space.os, "statvfs", real_statvfs)
    from detectron2.engine import SimpleTrainer

    original = SimpleTrainer.run_step

    def stop_at_7(self):
        if self.iter == 7:
            raise KeyboardInterrupt("stopped")
        return original(self)

    monkeypatch.setattr(SimpleTrainer, "run_step", stop_at_7)  # stopped: a periodic checkpoint to measure
    with pytest.raises(KeyboardInterrupt):
        training.train(outputs, "smoke", max_iter=10, overrides=FAST_RUN)
    monkeypatch.setattr(SimpleTrainer, "run_step", original)
    periodic_size = files.periodic()[-1].stat().st_size
    run = training.train(outputs, "smoke", max_iter=10, overrides=FAST_RUN)
    assert run.finished
    # the computed sizes are the files' (pickling adds a few KiB)
    cfg = _trained_cfg(files)
    periodic, weights = checkpoint_sizes(cfg)
    assert abs(files.final.stat().st_size - weights) < 0.01 * weights
    assert abs(periodic_size - periodic) < 0.01 * periodic


def _trained_cfg(files):
    from detectron2.config import get_cfg

    cfg = get_cfg()
    cfg.merge_from_other_cfg(cfg.load_cfg(files.config.read_text()))
    return cfg


def test_uploads_that_never_finished_are_reported_by_the_next_runtime(interrupted_at_17, tmp_path, capsys):
    """What a full Drive or a disconnect mid-upload leaves: 02 resumes from what did arrive, and says so."""
    outputs = _copy(interrupted_at_17, tmp_path / "out")
    files = run_of(outputs, SHORT, 20)
    (files.dir / "model_0000014.pth").unlink()  # never arrived
    older = files.dir / "model_0000009.pth"
    older.write_bytes(older.read_bytes()[:1000])  # and the one before arrived in part
    capsys.readouterr()
    run = training.train(outputs, "smoke", max_iter=20, overrides=SHORT)
    out = capsys.readouterr().out
    report = next((line for line in out.splitlines() if line.startswith("Uploads that never finished")), "")
    assert f"in {files.dir} (a full Drive or a disconnect in the previous runtime)" in report, out
    assert "model_0000014.pth, named by last_checkpoint, is missing" in report, report
    assert "No readable checkpoint" in out and run.finished and run.iteration == 20


def test_notebooks_03_and_04_report_a_final_checkpoint_that_never_arrived(trained_sample, tmp_path, capsys):
    outputs = Outputs.at(tmp_path / "out")
    shutil.copytree(trained_sample.root, outputs.root)
    files = the_run(outputs)
    shutil.copy(files.final, files.best)  # as if validation had kept one
    files.final.write_bytes(files.final.read_bytes()[:5000])  # cut short: the upload never finished
    run = TrainedRun.load(outputs, "best")
    assert run.checkpoint == files.best
    assert (
        "model_final.pth, named by last_checkpoint, is cut short; using model_best.pth instead."
        in capsys.readouterr().out
    )


def test_a_run_finished_on_drive_keeps_its_periodic_checkpoints_until_its_final_is_known_saved(
    interrupted_at_17, drive, on_colab, monkeypatch, capsys
):
    """A disconnect while Drive uploads model_final.pth loses no training: the periodic checkpoints stay until the
    next start reads the final back whole; a run.json saying "finished" without its final trains again."""
    from tinyvoc.runtime import colab
    from tinyvoc.training.storage import complete_checkpoint

    mount, fake = drive
    monkeypatch.setenv("TINYVOC_FAKE_DRIVE", str(fake))
    colab.mount()
    outputs = _copy(interrupted_at_17, mount / "MyDrive" / "project" / "output")
    files = run_of(outputs, SHORT, 20)
    capsys.readouterr()
    assert training.train(outputs, "smoke", max_iter=20, overrides=SHORT).finished
    assert "stay until Drive holds model_final.pth" in capsys.readouterr().out
    assert [p.name for p in files.periodic()] == ["model_0000014.pth", "model_0000019.pth"]
    newest = torch.load(files.dir / "model_0000019.pth", map_location="cpu", weights_only=False)["model"]

    files.final.unlink()  # the runtime went before Drive had it
    run = training.train(outputs, "smoke", max_iter=20, overrides=SHORT)
    out = capsys.readouterr().out
    assert f"run.json says run {files.name} finished, but model_final.pth is missing" in out, out
    assert "Training already finished" not in out
    assert run.finished and run.iteration == 20 and complete_checkpoint(files.final)
    final = torch.load(files.final, map_location="cpu", weights_only=False)["model"]
    assert all(torch.equal(final[k], newest[k]) for k in newest)  # the newest checkpoint's weights, saved again
    assert [p.name for p in files.periodic()] == ["model_0000014.pth", "model_0000019.pth"]  # written now: kept

    again = training.train(outputs, "smoke", max_iter=20, overrides=SHORT)  # the next start: the final is there
    out = capsys.readouterr().out
    assert "Training already finished" in out and again.finished and files.periodic() == []
    assert "Finished: removed 2 periodic checkpoint(s)" in out


def test_a_finished_run_whose_final_is_cut_short_is_not_called_finished(trained_sample, tmp_path):
    outputs = Outputs.at(tmp_path / "out")
    shutil.copytree(trained_sample.root, outputs.root)
    files = the_run(outputs)
    assert runs.read_run(files).state == "finished"
    files.final.write_bytes(files.final.read_bytes()[:5000])
    assert runs.read_run(files).state != "finished"
