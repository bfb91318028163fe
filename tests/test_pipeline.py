"""The main job, end to end: the five notebooks executed in order on the sample with the smoke profile.

This is what `make submission` runs. It checks what a user is promised: every artifact is in the
output folder, the executed notebooks carry their pictures, the submission is valid against the
test json and covers every test image, and the model visibly learned (validation mask AP50 floor).
"""

import json

import nbformat
import pytest

from tinyvoc.core.paths import NOTEBOOKS, Outputs
from tinyvoc.dataset.record import DatasetRecord
from tinyvoc.runner import run_all, run_notebook
from tinyvoc.submission.check import validate_submission
from tinyvoc.training import runs
from tinyvoc.visualize.inspector import SESSION_ENV

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
AP50_FLOOR = 0.6  # measured: the smoke profile reaches ~0.94 at 200 iterations, ~0.99 at 400; random is ~0


def the_run(outputs):
    """The files of the project's one training run (``output/runs/<name>/``)."""
    (name,) = runs.names(outputs)
    return outputs.run(name)


@pytest.fixture(scope="module")
def main_job(tmp_path_factory):
    project = tmp_path_factory.mktemp("main_job")
    outputs = Outputs.at(project / "output", project / "data")
    params = {"PROJECT_DIR": str(project), "PROFILE": "smoke", "DATASET": "sample", "VAL_FRACTION": 0.2}
    # as when `tinyvoc run-all` is started from a cell in JupyterLab: the server's session variable is set, and the
    # executed copies must still hold the static figures, not the interactive view nobody sees there
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(SESSION_ENV, "a JupyterLab session")
        executed = run_all(params, outputs)
    return outputs, executed


def test_every_artifact_is_written(main_job):
    outputs, executed = main_job
    assert [p.name for p in executed] == list(NOTEBOOKS)
    for path in (
        outputs.root / "environment.json",
        outputs.dataset_record,
        outputs.split_dir / "train.json",
        outputs.split_dir / "val.json",
        the_run(outputs).config,
        the_run(outputs).metrics,
        the_run(outputs).record,
        the_run(outputs).dir / "model_final.pth",
        the_run(outputs).dir / "model_best.pth",
        outputs.submission,
        outputs.submission_source,
        outputs.root / "val_metrics.json",
    ):
        assert path.exists(), path
    assert len(list(outputs.predictions_for(the_run(outputs).name).glob("test-*.jsonl"))) == 1
    figures = {p.name for p in outputs.figures_dir.glob("*.png")}
    assert {"train_ground_truth.png", "training_curves.png", "test_predictions.png", "val_gt_vs_pred.png",
            "runs_ap50.png"} <= figures  # fmt: skip
    made_by = json.loads(outputs.submission_source.read_text())
    assert made_by["run"] == the_run(outputs).name == "smoke" and made_by["checkpoint"] == "model_best.pth"
    assert made_by["why"].startswith('RUN = "best"') and made_by["selection"].startswith("score >= 0.05")


def test_executed_notebooks_show_pictures_inline(main_job):
    _, executed = main_job
    for name in ("01_register_dataset.ipynb", "02_train.ipynb", "03_visualize.ipynb", "04_export_submission.ipynb"):
        book = nbformat.read(executed[list(NOTEBOOKS).index(name)], as_version=4)
        pngs = [
            o
            for c in book.cells
            if c.cell_type == "code"
            for o in c.get("outputs", [])
            if "image/png" in o.get("data", {})
        ]
        assert pngs, f"{name} has no inline picture"
        widgets = [o for c in book.cells for o in c.get("outputs", []) if WIDGET_VIEW in o.get("data", {})]
        assert not widgets, f"{name} shows the interactive view in a headless run"


def test_submission_is_valid_and_covers_the_test_images(main_job):
    outputs, _ = main_job
    record = DatasetRecord.load(outputs)
    report = validate_submission(outputs.submission, record.files["test_json"])
    assert report.ok, report.summary()
    test_ids = {im["id"] for im in json.loads(open(record.files["test_json"]).read())["images"]}
    assert set(report.per_image) == test_ids
    assert set(report.per_class) <= set(record.category_ids)


def test_the_model_learned_the_sample(main_job):
    outputs, _ = main_job
    metrics = json.loads((outputs.root / "val_metrics.json").read_text())
    run = json.loads(the_run(outputs).record.read_text())
    print(f"smoke profile: val segm AP50 {metrics['segm']['AP50']:.3f}, AP {metrics['segm']['AP']:.3f}")
    assert run["finished"] and run["iteration"] == run["max_iter"] == 300
    assert metrics["segm"]["AP50"] >= AP50_FLOOR


def test_training_cell_shows_compact_progress(main_job):
    """Colab cells choke on thousands of log lines: 02 prints ~one progress line per 20 iterations."""
    outputs, executed = main_job
    book = nbformat.read(executed[list(NOTEBOOKS).index("02_train.ipynb")], as_version=4)
    text = "".join(o.get("text", "") for c in book.cells if c.cell_type == "code" for o in c.get("outputs", []))
    progress = [line for line in text.splitlines() if line.startswith("iter ")]
    # every 20 iterations, and once more after the final validation
    assert 15 <= len(progress) <= 16 and progress[-1].startswith("iter 300/300") and "val AP50" in progress[-1]
    assert len(text.splitlines()) < 80, text[-3000:]
    assert "Starting training from iteration" in (the_run(outputs).dir / "log.txt").read_text()
    assert list(the_run(outputs).dir.glob("events.out.tfevents.*"))


# Installed in the notebook's kernel by IPython's startup folder: every open of a watched file is logged,
# through a descriptor opened before the hook, so the log's own writes are not counted.
COUNT_OPENS = """
import os, sys
_log = os.open(os.environ["TINYVOC_OPEN_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
_watched = set(os.environ["TINYVOC_WATCHED"].split(os.pathsep))

def _count(event, args):
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.path.realpath(os.fsdecode(args[0]))
        if path in _watched:
            os.write(_log, (path + "\\n").encode())

sys.addaudithook(_count)
"""


@pytest.fixture(scope="module")
def rerun(main_job, tmp_path_factory):
    """Users re-run notebooks: 01, then a default 04 (only PROJECT_DIR) whose kernel logs every open of the records
    it reads. One re-run of 04 serves both tests below (it was run once for each before)."""
    outputs, _ = main_job
    record = DatasetRecord.load(outputs)
    watched = {
        "dataset.json": outputs.dataset_record,
        "config.yaml": the_run(outputs).config,
        "train split": outputs.split_dir / "train.json",
        "val split": outputs.split_dir / "val.json",
        "test.json": record.data_files.test_json,
    }
    before = {p: p.read_bytes() for p in (outputs.dataset_record, outputs.split_dir / "val.json", outputs.submission)}
    cache = {p.name: p.stat().st_mtime_ns for p in outputs.predictions_for(the_run(outputs).name).glob("*.jsonl")}
    project = str(outputs.root.parent)
    register = {"PROJECT_DIR": project, "DATASET": "sample", "VAL_FRACTION": 0.2}
    run_notebook("01_register_dataset.ipynb", register, outputs)
    home = tmp_path_factory.mktemp("count-opens")
    startup = home / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-count-opens.py").write_text(COUNT_OPENS)
    log = home / "opens.log"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IPYTHONDIR", str(home / "ipython"))
        mp.setenv("TINYVOC_OPEN_LOG", str(log))
        mp.setenv("TINYVOC_WATCHED", ":".join(str(p.resolve()) for p in watched.values()))
        run_notebook("04_export_submission.ipynb", {"PROJECT_DIR": project}, outputs)
    opened = log.read_text().splitlines()
    counts = {name: opened.count(str(path.resolve())) for name, path in watched.items()}
    return before, cache, counts


def test_rerunning_register_and_export_gives_the_same_files(main_job, rerun):
    """Same record and split, same submission, predictions from the cache."""
    outputs, _ = main_job
    before, cache, _ = rerun
    assert cache  # not a comparison of two empty dicts
    assert {p: p.read_bytes() for p in before} == before
    caches = outputs.predictions_for(the_run(outputs).name)
    assert {p.name: p.stat().st_mtime_ns for p in caches.glob("*.jsonl")} == cache
    book = nbformat.read(outputs.executed_notebooks / "04_export_submission.ipynb", as_version=4)
    text = "".join(o.get("text", "") for c in book.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "Using cached predictions" in text


def test_a_default_export_reads_each_record_once(rerun):
    """Notebook 04 loads one trained run: dataset.json, config.yaml, each split and test.json opened at most once."""
    *_, counts = rerun
    print(f"opens during notebook 04: {counts}")
    assert counts == {"dataset.json": 1, "config.yaml": 1, "train split": 0, "val split": 1, "test.json": 1}
