"""Dataset statistics of the splits, and the stop after a failed check (record.stop_on_errors)."""

import json

import pytest

from tinyvoc.core.errors import TinyVocError
from tinyvoc.core.paths import DataFiles, Outputs
from tinyvoc.dataset import stats
from tinyvoc.dataset.check import check_dataset
from tinyvoc.dataset.record import DatasetRecord, prepare_dataset, stop_on_errors
from tinyvoc.dataset.sample import make_sample_dataset


@pytest.fixture()
def prepared(tmp_path):
    sample = make_sample_dataset(tmp_path / "sample")
    outputs = Outputs.at(tmp_path / "out")
    record = prepare_dataset(DataFiles.in_folder(sample), outputs, "sample", val_fraction=0.2, seed=0)
    return sample, outputs, record


def test_statistics_count_what_the_splits_hold(prepared):
    _, outputs, record = prepared
    numbers = stats.dataset_statistics(record, outputs)
    train = json.loads(open(record.train_split).read())
    assert numbers["train"]["images"] == len(train["images"]) == 120
    assert numbers["train"]["instances"] == len(train["annotations"])
    assert sum(numbers["train"]["instances_per_class"].values()) == len(train["annotations"])
    assert sum(numbers["train"]["sizes"].values()) == len(train["annotations"])
    assert sum(numbers["val"]["instances_per_image"].values()) == 30
    per_image = {}
    for a in train["annotations"]:
        per_image[a["image_id"]] = per_image.get(a["image_id"], 0) + 1
    assert numbers["train"]["instances_per_image"] == {
        n: sum(1 for v in per_image.values() if v == n) for n in sorted(set(per_image.values()))
    }
    assert json.loads((outputs.root / "dataset_stats.json").read_text())["val"]["images"] == 30
    text = stats.format_statistics(numbers)
    assert "circle" in text and "small" in text


def test_size_buckets_follow_coco_limits():
    square = lambda s: [[0, 0, s, 0, s, s, 0, s]]  # noqa: E731
    coco = {
        "images": [{"id": 1, "height": 300, "width": 300}],
        "annotations": [{"image_id": 1, "category_id": 1, "segmentation": square(s)} for s in (10, 31, 33, 95, 97)],
    }
    assert stats.split_statistics(coco, {1: "x"})["sizes"] == {"small": 2, "medium": 2, "large": 1}


def test_failed_check_removes_the_previous_split(prepared):
    sample, outputs, _ = prepared
    (sample / "train_images" / sorted((sample / "train_images").iterdir())[0].name).unlink()
    report = check_dataset(
        sample / "pascal_train.json", sample / "train_images", sample / "test.json", sample / "test_images"
    )
    assert not report.ok
    with pytest.raises(TinyVocError):
        stop_on_errors(report, outputs)
    assert not outputs.dataset_record.exists() and not (outputs.split_dir / "train.json").exists()
    with pytest.raises(TinyVocError, match="Run 01_register_dataset.ipynb first"):
        DatasetRecord.load(outputs)
