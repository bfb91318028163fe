"""Class id mapping, the deterministic split, the dataset record, and re-registration."""

import json
import shutil
from pathlib import Path

import pytest

from tinyvoc.core.coco_json import load_coco
from tinyvoc.core.errors import TinyVocError
from tinyvoc.core.paths import DataFiles, Outputs
from tinyvoc.dataset.record import ClassMap, DatasetRecord, prepare_dataset, split_images
from tinyvoc.dataset.registry import TEST, TRAIN, VAL, register, register_all
from tinyvoc.dataset.sample import CATEGORIES, make_sample_dataset


def test_class_map_with_non_contiguous_ids():
    cmap = ClassMap.from_categories([{"id": 9, "name": "c"}, {"id": 2, "name": "a"}, {"id": 5, "name": "b"}])
    assert cmap.names == ("a", "b", "c")
    assert [cmap.to_contiguous(i) for i in (2, 5, 9)] == [0, 1, 2]
    assert [cmap.to_dataset_id(k) for k in range(3)] == [2, 5, 9]
    assert cmap.name_of(9) == "c"


def test_sample_has_the_tiny_voc_quirks(sample):
    train = load_coco(sample / "pascal_train.json", need_annotations=True)
    test = load_coco(sample / "test.json")
    ids = sorted(i["id"] for i in train["images"])
    assert ids != list(range(ids[0], ids[0] + len(ids))), "image ids must not be contiguous"
    assert not set(ids) & {i["id"] for i in test["images"]}
    assert sorted(c["id"] for c in train["categories"]) == [c["id"] for c in CATEGORIES]
    assert "annotations" not in test
    assert all(isinstance(a["segmentation"], list) for a in train["annotations"])


def test_sample_generation_is_deterministic(tmp_path):
    a, b = make_sample_dataset(tmp_path / "a"), make_sample_dataset(tmp_path / "b")
    assert (a / "pascal_train.json").read_bytes() == (b / "pascal_train.json").read_bytes()
    name = json.loads((a / "test.json").read_text())["images"][0]["file_name"]
    assert (a / "test_images" / name).read_bytes() == (b / "test_images" / name).read_bytes()


def test_split_is_deterministic_disjoint_and_covers_classes(sample):
    coco = load_coco(sample / "pascal_train.json", need_annotations=True)
    train_a, val_a = split_images(coco, 0.1, seed=3)
    train_b, val_b = split_images(coco, 0.1, seed=3)
    assert (train_a, val_a) == (train_b, val_b)
    assert not set(train_a) & set(val_a)
    assert sorted(train_a + val_a) == sorted(i["id"] for i in coco["images"])
    assert len(val_a) == round(0.1 * len(coco["images"]))
    classes_in = {
        side: {a["category_id"] for a in coco["annotations"] if a["image_id"] in set(ids)}
        for side, ids in (("train", train_a), ("val", val_a))
    }
    assert classes_in["train"] == classes_in["val"] == {c["id"] for c in CATEGORIES}
    assert split_images(coco, 0.1, seed=4)[1] != val_a
    assert split_images(coco, 0, seed=3) == (sorted(i["id"] for i in coco["images"]), [])


def test_prepare_dataset_writes_splits_and_record(sample, tmp_path):
    outputs = Outputs.at(tmp_path / "out")
    record = prepare_dataset(DataFiles.in_folder(sample), outputs, "sample", val_fraction=0.2, seed=0)
    train = json.loads(outputs.split_dir.joinpath("train.json").read_text())
    val = json.loads(outputs.split_dir.joinpath("val.json").read_text())
    assert len(train["images"]) + len(val["images"]) == 150
    assert record.counts["val_images"] == len(val["images"]) == 30
    saved = json.loads(outputs.dataset_record.read_text())
    assert saved["category_ids"] == [2, 5, 9] and saved["class_names"] == ["circle", "square", "triangle"]


def test_missing_files_and_bad_json_are_named(tmp_path):
    with pytest.raises(TinyVocError, match="pascal_train.json"):
        prepare_dataset(DataFiles.in_folder(tmp_path), Outputs.at(tmp_path / "out"), "tinyvoc")
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [')
    with pytest.raises(TinyVocError, match="bad.json: not valid JSON"):
        load_coco(bad)
    bad.write_text('{"foo": 1}')
    with pytest.raises(TinyVocError, match="not a COCO file"):
        load_coco(bad)


def test_registration_twice_in_one_process_and_path_change(sample, tmp_path):
    from detectron2.data import DatasetCatalog, MetadataCatalog

    outputs = Outputs.at(tmp_path / "out")
    record = prepare_dataset(DataFiles.in_folder(sample), outputs, "sample", val_fraction=0.2, seed=0)
    first = register_all(record)
    second = register_all(record)  # re-running the cell must not raise "already registered"
    assert first == second == {TRAIN: 120, TEST: 24, VAL: 30}
    meta = MetadataCatalog.get(TRAIN)
    assert meta.thing_classes == ["circle", "square", "triangle"]
    assert meta.thing_dataset_id_to_contiguous_id == {2: 0, 5: 1, 9: 2}
    # a changed path takes effect: register the val file under the train name
    register(TRAIN, record.val_split, sample / "train_images")
    assert len(DatasetCatalog.get(TRAIN)) == 30
    register_all(record)
    assert len(DatasetCatalog.get(TRAIN)) == 120


# --- portable records ----------------------------------------------------------------------------


def test_the_record_is_read_in_another_runtime_with_the_data_elsewhere(sample, tmp_path):
    first = tmp_path / "runtime-1" / "data"
    shutil.copytree(sample, first)
    outputs = Outputs.at(tmp_path / "drive" / "output", first)
    prepare_dataset(DataFiles.in_folder(first), outputs, "tinyvoc", 0.2, 0)
    saved = json.loads(outputs.dataset_record.read_text())
    assert saved["files"]["train_json"] == "pascal_train.json" and saved["train_split"] == "splits/train.json"
    second = tmp_path / "runtime-2" / "data"
    shutil.move(first, second)  # the first runtime is gone; the next one has its own copy elsewhere
    record = DatasetRecord.load(Outputs.at(tmp_path / "drive" / "output", second))
    assert record.data_files == DataFiles.in_folder(second)
    assert Path(record.val_split) == tmp_path / "drive" / "output" / "splits" / "val.json"
    shutil.rmtree(second)
    with pytest.raises(TinyVocError, match="The data that .*dataset.json refers to is not on this runtime"):
        DatasetRecord.load(Outputs.at(tmp_path / "drive" / "output", second))


def test_a_record_written_before_datasets_had_fingerprints_still_loads_the_same(sample, tmp_path):
    """An upgraded project: ``dataset.json`` without name, fingerprint, mask format, origin or val_json."""
    outputs = Outputs.at(tmp_path / "out", sample.parent)
    record = prepare_dataset(DataFiles.in_folder(sample), outputs, "sample", 0.2, 0)
    saved = json.loads(outputs.dataset_record.read_text())
    new_keys = ("name", "fingerprint", "mask_format", "origin", "test_origin", "crowd_as_objects",
                "keep_empty_images", "test_split", "test_source")  # fmt: skip
    old = {k: v for k, v in saved.items() if k not in new_keys}
    old["files"] = {k: v for k, v in old["files"].items() if k != "val_json"}
    outputs.dataset_record.write_text(json.dumps(old))
    loaded = DatasetRecord.load(outputs)
    assert (loaded.name, loaded.mask_format, loaded.is_course, loaded.test_split) == ("sample", "polygon", True, None)
    assert loaded.fingerprint == record.fingerprint  # computed from the split files, as 01 would have
    assert loaded.data_files == DataFiles.in_folder(sample)
