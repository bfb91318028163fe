"""Kaggle's session model: detection, the course files among the inputs, and bringing in earlier outputs.

The inputs are built the way Kaggle attaches them under a moved root (``TINYVOC_KAGGLE_ROOT``), and hashed
before and after: nothing may ever be written into an input (Kaggle mounts them read-only; the tests run as
users who could write anywhere, so they assert instead).
"""

import hashlib
import json
import shutil
from pathlib import Path

import nbformat
import pytest

from tinyvoc.core.atomic import copy_file
from tinyvoc.core.errors import TinyVocError
from tinyvoc.core.paths import NOTEBOOKS, DataFiles, Outputs, TrainFiles, notebooks_dir
from tinyvoc.dataset.record import DatasetRecord, prepare_dataset
from tinyvoc.runtime import kaggle, local_data


def tree_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file() and not path.is_symlink():
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture
def kaggle_root(tmp_path, monkeypatch):
    root = tmp_path / "kaggle"
    (root / "input").mkdir(parents=True)
    (root / "working").mkdir()
    monkeypatch.setenv(kaggle.ROOT_ENV, str(root))
    monkeypatch.setenv(kaggle.RUN_TYPE_ENV, "Interactive")
    monkeypatch.setenv("TMPDIR", str(tmp_path / "scratch"))
    (tmp_path / "scratch").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() reads TMPDIR again
    return root


def upload_course_files(sample: Path, dataset: Path) -> None:
    """The four files as Kaggle shows an uploaded dataset: json files, train images unzipped with the zip's own
    top folder inside (``train_images/train_images/``), test images left as a zip."""
    dataset.mkdir(parents=True)
    for name in ("pascal_train.json", "test.json"):
        shutil.copy(sample / name, dataset / name)
    shutil.copytree(sample / "train_images", dataset / "train_images" / "train_images")
    shutil.make_archive(str(dataset / "test_images"), "zip", sample / "test_images")  # a flat zip


def test_detection_and_the_moved_root(monkeypatch, tmp_path):
    monkeypatch.delenv(kaggle.RUN_TYPE_ENV, raising=False)
    assert not kaggle.on_kaggle() and not kaggle.is_batch()
    monkeypatch.setenv(kaggle.RUN_TYPE_ENV, "Interactive")
    assert kaggle.on_kaggle() and not kaggle.is_batch()
    monkeypatch.setenv(kaggle.RUN_TYPE_ENV, "Batch")
    assert kaggle.is_batch()
    monkeypatch.delenv(kaggle.ROOT_ENV, raising=False)
    assert kaggle.input_root() == Path("/kaggle/input") and kaggle.working_dir() == Path("/kaggle/working")
    monkeypatch.setenv(kaggle.ROOT_ENV, str(tmp_path))
    assert kaggle.input_root() == tmp_path / "input" and kaggle.working_dir() == tmp_path / "working"


def test_course_files_found_in_an_input_staged_on_scratch_and_the_input_untouched(kaggle_root, sample, tmp_path):
    inputs = kaggle_root / "input"
    (inputs / "some-other-dataset" / "data").mkdir(parents=True)  # an unrelated input, found first by name
    upload_course_files(sample, inputs / "tinyvoc-course")
    before = tree_hash(inputs)

    found = kaggle.find_course_files()
    assert found.train_json == inputs / "tinyvoc-course" / "pascal_train.json"
    assert found.train_images == inputs / "tinyvoc-course" / "train_images" / "train_images"  # nested, as unzipped
    assert found.test_images == inputs / "tinyvoc-course" / "test_images.zip"

    files = kaggle.stage_course_files(found)
    local = tmp_path / "scratch" / "tinyvoc-data"
    assert files == DataFiles.in_folder(local) and not files.missing()
    first = json.loads((sample / "pascal_train.json").read_text())["images"][0]["file_name"]
    assert (local / "train_images" / first).resolve() == found.train_images / first  # read in place
    assert not (local / "train_images").is_symlink()  # a real folder: the record stays relative to data/
    assert len(list((local / "test_images").iterdir())) == len(list((sample / "test_images").iterdir()))
    assert not str(local).startswith(str(kaggle.working_dir()))  # scratch is never saved as output

    outputs = Outputs.at(kaggle.working_dir() / "output", local)
    prepare_dataset(files, outputs, "tinyvoc", val_fraction=0.2, seed=0)
    saved = json.loads(outputs.dataset_record.read_text())
    assert saved["files"]["train_images"] == "train_images"  # relative: the next session stages it again
    assert DatasetRecord.load(outputs).data_files == files

    assert local_data.make_local(local, local) == files  # notebook 01 then reads it in place (its own check)
    (local / "test_images" / "stray").write_text("x")  # staged once: a second call keeps the marker's copy
    assert kaggle.stage_course_files(kaggle.find_course_files()) == files
    assert (local / "test_images" / "stray").exists()
    assert tree_hash(inputs) == before


def test_no_course_files_or_json_without_images(kaggle_root, sample):
    assert kaggle.find_course_files() is None
    lonely = kaggle_root / "input" / "only-json"
    lonely.mkdir()
    for name in ("pascal_train.json", "test.json"):
        shutil.copy(sample / name, lonely / name)
    with pytest.raises(TinyVocError, match="no attached input holds the images it lists.*train_images.zip.*Add Input"):
        kaggle.find_course_files()
    shutil.make_archive(str(kaggle_root / "input" / "images-elsewhere"), "zip", sample, "train_images")  # another name
    shutil.copytree(sample / "train_images", kaggle_root / "input" / "zz-images" / "train_images")
    shutil.copytree(sample / "test_images", kaggle_root / "input" / "zz-images" / "test_images")
    found = kaggle.find_course_files()  # images in another input than the json files
    assert found.train_images == kaggle_root / "input" / "zz-images" / "train_images"


def fake_output(
    folder: Path, sample: Path, *, train: dict | None = None, checkpoints=(), predictions=(), run="smoke", legacy=False
) -> Outputs:
    """An ``output/`` folder as a notebook saves it: 01's record and splits; 02's run ``run`` when ``train`` is given
    (``legacy``: in ``output/train/``, as a version from before runs had names saved it). ``predictions``: cache
    files of that run."""
    outputs = Outputs.at(folder / "output", sample)
    prepare_dataset(DataFiles.in_folder(sample), outputs, "sample", val_fraction=0.2, seed=0)
    if train is not None:
        files = TrainFiles(outputs.legacy_train_dir) if legacy else outputs.run(run)
        files.dir.mkdir(parents=True)
        files.record.write_text(json.dumps({"profile": "smoke", **train}))
        for path in (files.metrics, files.config, files.plan):
            path.write_text(f"{path.name} of {folder.name}\n")
        for name in checkpoints:
            (files.dir / name).write_bytes(name.encode() * 100)
        periodic = [c for c in checkpoints if c.startswith("model_0")]
        if periodic:
            files.last_checkpoint.write_text(periodic[-1])
    caches = outputs.predictions_dir if legacy else outputs.predictions_for(run)
    for name in predictions:
        caches.mkdir(parents=True, exist_ok=True)
        (caches / name).write_text(f"cache from {folder.name}\n")
    return outputs


def test_02_brings_in_the_dataset_and_only_what_a_resume_needs(kaggle_root, sample, capsys):
    inputs = kaggle_root / "input"
    fake_output(inputs / "tinyvoc-01", sample)
    earlier = fake_output(
        inputs / "tinyvoc-02", sample, train={"iteration": 200, "finished": False},
        checkpoints=("model_0000099.pth", "model_0000199.pth", "model_best.pth"),
    )  # fmt: skip
    fake_output(inputs / "tinyvoc-02-other", sample, train={"iteration": 50}, checkpoints=("model_0000049.pth",),
                run="smoke+BASE_LR=0.01")  # fmt: skip  # another recipe's run: not this one's to resume
    before = tree_hash(inputs)
    outputs = Outputs.at(kaggle.working_dir() / "output")

    said = kaggle.bring_in_for_training(outputs, wanted="smoke")
    assert [line.split(":")[0] for line in said] == ["dataset record and splits", "run smoke to resume"]
    assert all("input 'tinyvoc-02'" in line for line in said)  # the record the training used, from its output
    assert "brought in run smoke to resume: from input 'tinyvoc-02'" in capsys.readouterr().out
    copied = sorted(p.name for p in outputs.run("smoke").dir.iterdir())
    assert copied == sorted(["last_checkpoint", "model_0000199.pth", "model_best.pth", "metrics.jsonl", "config.yaml",
                             "plan.json", "run.json"])  # fmt: skip  # not the older periodic checkpoint
    assert (outputs.run("smoke").dir / "model_0000199.pth").read_bytes() == (
        earlier.run("smoke").dir / "model_0000199.pth"
    ).read_bytes()
    assert (outputs.split_dir / "train.json").read_bytes() == (earlier.split_dir / "train.json").read_bytes()
    assert not list(outputs.root.rglob(".*.tmp")) and [p.name for p in outputs.runs_dir.iterdir()] == ["smoke"]

    assert kaggle.bring_in_for_training(outputs, wanted="smoke") == []  # what this session has is kept
    assert tree_hash(inputs) == before


def test_02_resumes_an_older_versions_one_run_under_its_profiles_name(kaggle_root, sample):
    fake_output(kaggle_root / "input" / "old-02", sample, train={"iteration": 20}, checkpoints=("model_0000019.pth",),
                legacy=True)  # fmt: skip
    outputs = Outputs.at(kaggle.working_dir() / "output")
    said = kaggle.bring_in_for_training(outputs, wanted="smoke+MAX_ITER=40")
    assert said[1].startswith("run smoke to resume: from input 'old-02'")
    assert outputs.run("smoke").last_checkpoint.read_text() == "model_0000019.pth"


def test_02_from_scratch_brings_only_the_dataset_and_off_kaggle_nothing(kaggle_root, sample, monkeypatch):
    fake_output(
        kaggle_root / "input" / "tinyvoc-02", sample, train={"iteration": 9}, checkpoints=("model_0000009.pth",)
    )
    outputs = Outputs.at(kaggle.working_dir() / "output")
    monkeypatch.delenv(kaggle.RUN_TYPE_ENV)
    assert kaggle.bring_in_for_training(outputs) == [] and not outputs.root.exists()
    monkeypatch.setenv(kaggle.RUN_TYPE_ENV, "Batch")
    said = kaggle.bring_in_for_training(outputs, resume=False)
    assert [line.split(":")[0] for line in said] == ["dataset record and splits"] and not outputs.runs_dir.exists()


def test_02_without_01s_output_names_it(kaggle_root):
    outputs = Outputs.at(kaggle.working_dir() / "output")
    with pytest.raises(TinyVocError, match="output/dataset.json.*Add Input > Your Work > .*01_register_dataset"):
        kaggle.bring_in_for_training(outputs)


def test_03_and_04_bring_in_the_run_the_chosen_checkpoint_and_prediction_caches(kaggle_root, sample):
    inputs = kaggle_root / "input"
    fake_output(inputs / "a-01", sample)
    fake_output(
        inputs / "b-02-old", sample, train={"iteration": 100, "finished": True}, checkpoints=("model_final.pth",)
    )
    fake_output(
        inputs / "c-02", sample, train={"iteration": 300, "finished": True, "best_ap50": 0.4},
        checkpoints=("model_best.pth", "model_final.pth"),
    )  # fmt: skip
    fake_output(inputs / "d-03", sample, predictions=("test-abc.jsonl",))
    before = tree_hash(inputs)

    outputs = Outputs.at(kaggle.working_dir() / "output")
    said = kaggle.bring_in_trained_run(outputs)
    assert said[0].startswith("dataset record and splits: from input 'c-02'")
    assert said[1].startswith("run smoke (best model): from input 'c-02'")  # the one with a validation AP50
    assert said[2].startswith("1 prediction cache file(s) of run smoke: from input 'd-03'")
    assert sorted(p.name for p in outputs.run("smoke").dir.iterdir()) == ["config.yaml", "metrics.jsonl",
                                                                          "model_best.pth", "run.json"]  # fmt: skip
    assert (outputs.predictions_for("smoke") / "test-abc.jsonl").read_text() == "cache from d-03\n"
    original = inputs / "c-02" / "output" / "runs" / "smoke" / "model_best.pth"  # the same time: caches stay valid
    assert (outputs.run("smoke").best).stat().st_mtime_ns == original.stat().st_mtime_ns

    said = kaggle.bring_in_trained_run(outputs, "final")  # 04 in the same session, another checkpoint
    assert len(said) == 1
    assert said[0].startswith("run smoke (final model): from input 'c-02'")
    assert outputs.run("smoke").final.is_file()
    assert kaggle.bring_in_trained_run(outputs, "final") == []
    assert tree_hash(inputs) == before


def _two_finished_runs(inputs, sample, second: str):
    """Two attached outputs: run smoke (best val AP50 0.5) in v1, run ``second`` (0.7) in v2, each with both models."""
    both = ("model_best.pth", "model_final.pth")
    fake_output(inputs / "v1", sample, train={"iteration": 300, "finished": True, "best_ap50": 0.5}, checkpoints=both)
    fake_output(inputs / "v2", sample, train={"iteration": 300, "finished": True, "best_ap50": 0.7}, checkpoints=both,
                run=second)  # fmt: skip
    return inputs


def test_several_attached_runs_are_all_listed_and_run_chooses(kaggle_root, sample, capsys):
    inputs = _two_finished_runs(kaggle_root / "input", sample, "smoke+BASE_LR=0.01")
    fake_output(inputs / "v3", sample, train={"iteration": 100, "finished": True, "best_ap50": 0.6},
                checkpoints=("model_final.pth",), run="old", legacy=True)  # fmt: skip
    outputs = Outputs.at(kaggle.working_dir() / "output")
    said = kaggle.bring_in_trained_run(outputs)  # RUN = "best": the highest best validation AP50 among them
    listed = capsys.readouterr().out
    assert "run smoke from input 'v1' (finished, 300 iterations, best val AP50 0.500)" in listed
    assert "run smoke+BASE_LR=0.01 from input 'v2' (finished, 300 iterations, best val AP50 0.700)" in listed
    assert "run smoke from input 'v3' (finished, 100 iterations, best val AP50 0.600)" in listed  # output/train/
    assert said[1].startswith("run smoke+BASE_LR=0.01 (best model): from input 'v2'")
    assert [p.name for p in outputs.runs_dir.iterdir()] == ["smoke+BASE_LR=0.01"]

    said = kaggle.bring_in_trained_run(outputs, run="smoke")  # a name: that run
    assert said[0].startswith("run smoke (best model): from input 'v1'")
    with pytest.raises(TinyVocError, match="holds run nope .*Add Input > Your Work"):
        kaggle.bring_in_trained_run(outputs, run="nope")


def test_best_is_chosen_among_the_runs_of_this_sessions_dataset(kaggle_root, sample, capsys):
    """An own-data run scored higher than the course run does not become the course's best (nor the reverse)."""
    inputs = kaggle_root / "input"
    mine = fake_output(inputs / "v1", sample, train={"iteration": 300, "finished": True, "best_ap50": 0.5},
                       checkpoints=("model_best.pth",))  # fmt: skip
    fingerprint = json.loads(mine.dataset_record.read_text())["fingerprint"]
    pets = {"iteration": 300, "finished": True, "best_ap50": 0.9, "dataset": "pets", "fingerprint": "0123abcd"}
    fake_output(inputs / "v2", sample, train=pets, checkpoints=("model_best.pth",), run="pets")
    outputs = Outputs.at(kaggle.working_dir() / "output")
    outputs.root.mkdir(parents=True)
    copy_file(mine.dataset_record, outputs.dataset_record)  # 01 ran in this session: its dataset is the course's
    said = kaggle.bring_in_trained_run(outputs)
    assert fingerprint and said[0].startswith("run smoke (best model): from input 'v1'")
    assert (
        "run pets from input 'v2' (finished, 300 iterations, best val AP50 0.900, dataset pets)"
        in capsys.readouterr().out
    )
    assert kaggle.bring_in_trained_run(outputs, run="pets")[0].startswith("run pets (best model)")  # named: brought


def test_a_list_of_runs_to_fuse_brings_in_each_at_its_checkpoint(kaggle_root, sample, capsys):
    inputs = _two_finished_runs(kaggle_root / "input", sample, "other")
    fused = Outputs.at(inputs / "v2" / "output").fused_predictions_dir  # 03's fusion cache, saved with 03's output
    fused.mkdir(parents=True)
    (fused / "test-0123.jsonl").write_text("fused cache\n")
    outputs = Outputs.at(kaggle.working_dir() / "output")
    assert not any("fusion" in line for line in kaggle.bring_in_trained_run(outputs, "best", "smoke"))  # one run
    capsys.readouterr()
    said = kaggle.bring_in_trained_run(outputs, "best", ["smoke", "other:final"])  # RUN as 03 and 04 take it
    assert [line.split(":")[0] for line in said] == [
        "run other (final model)",
        "1 prediction cache file(s) of the fusion of runs",
    ]  # fmt: skip (the dataset and run smoke came with the first call)
    assert (outputs.fused_predictions_dir / "test-0123.jsonl").read_text() == "fused cache\n"
    assert capsys.readouterr().out.count("Attached runs:") == 1
    assert outputs.run("smoke").best.is_file() and not outputs.run("smoke").final.exists()
    assert outputs.run("other").final.is_file() and not outputs.run("other").best.exists()


def test_03_and_04_bring_the_run_in_where_a_reader_sees_it():
    """The loaders read only what is there; on Kaggle, 03 and 04 bring RUN in just before loading it."""
    import inspect

    from tinyvoc.inference import ensemble, trained_run

    for name in NOTEBOOKS[3:]:
        cells = [c.source for c in nbformat.read(notebooks_dir() / name, as_version=4).cells if c.cell_type == "code"]
        lines = next(c for c in cells if "ensemble.load(" in c).splitlines()
        loads = next(i for i, line in enumerate(lines) if line.startswith("run = ensemble.load(project.outputs, "))
        assert lines[loads - 1].startswith("kaggle.bring_in_trained_run(project.outputs, CHECKPOINT, RUN)"), name
    assert not any("import kaggle" in inspect.getsource(module) for module in (trained_run, ensemble))  # no copying


def test_a_checkpoint_path_is_used_where_it_is(kaggle_root, sample):
    fake_output(kaggle_root / "input" / "run", sample, train={"iteration": 5}, checkpoints=("model_final.pth",))
    outputs = Outputs.at(kaggle.working_dir() / "output")
    kaggle.bring_in_trained_run(
        outputs, str(kaggle_root / "input" / "run" / "output" / "runs" / "smoke" / "model_final.pth")
    )
    assert sorted(p.name for p in outputs.run("smoke").dir.iterdir()) == ["config.yaml", "metrics.jsonl", "run.json"]


def test_03_without_a_training_run_names_02s_output(kaggle_root, sample):
    fake_output(kaggle_root / "input" / "only-01", sample)
    outputs = Outputs.at(kaggle.working_dir() / "output")
    with pytest.raises(TinyVocError, match="holds a run .*run.json\\) with a best checkpoint.*Your Work > .*02_train"):
        kaggle.bring_in_trained_run(outputs)


def test_the_training_budget_leaves_room_for_03_and_04_in_a_kaggle_session(kaggle_root):
    from tinyvoc.training.budget import DEFAULT_BUDGET_H, KAGGLE_MAX_BUDGET_H, resolve_budget

    assert resolve_budget("strong", None, None) == DEFAULT_BUDGET_H  # 3 h: planned for the workers it measured
    assert resolve_budget("strong", KAGGLE_MAX_BUDGET_H, None) == KAGGLE_MAX_BUDGET_H
    assert resolve_budget("smoke", 0, None) is None and resolve_budget("strong", 20, 40) is None  # MAX_ITER wins
    for hours in (KAGGLE_MAX_BUDGET_H + 0.5, 0):
        with pytest.raises(TinyVocError, match="Kaggle ends a session after 12 hours.*at most 10 hours"):
            resolve_budget("strong", hours, None)


def test_pretrained_weights_come_from_an_attached_input_when_offline(kaggle_root, tmp_path):
    from tinyvoc.training import weights

    url = "http://127.0.0.1:9/X-101-32x8d.pkl"  # nothing answers there: Internet off
    with pytest.raises(TinyVocError, match="on Kaggle, add X-101-32x8d.pkl to an attached dataset"):
        weights.fetch(url, cache_dir=tmp_path / "cache", timeout=5)
    attached = kaggle_root / "input" / "tinyvoc-wheelhouse" / "weights" / "X-101-32x8d.pkl"
    attached.parent.mkdir(parents=True)
    attached.write_bytes(b"weights")
    assert weights.fetch(url, cache_dir=tmp_path / "cache", timeout=5) == str(attached)  # read in place
    assert not (tmp_path / "cache").exists()
