"""Your own COCO export: each layout found, names resolved, classes from the data, every verdict of the check.

Every dataset here is written by the test: a few small JPEGs and the json an annotation tool would write, quirks
included (Roboflow's empty dataset-name category 0, CVAT's RLE crowd masks in subfolders, Label Studio's
``..\\..\\label-studio\\media\\upload`` names, box-only labels, an ``ignore`` key, ids 3, 7, 12).
"""

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from tinyvoc import cli
from tinyvoc.core.errors import TinyVocError
from tinyvoc.core.paths import Outputs
from tinyvoc.dataset import own_data
from tinyvoc.dataset.check import check_files
from tinyvoc.dataset.layouts import find_layout
from tinyvoc.dataset.record import DatasetRecord, prepare_dataset
from tinyvoc.dataset.sources import dataset_source
from tinyvoc.runtime.project import Project

CATS = [{"id": 12, "name": "zebra"}, {"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}]  # ids 3, 7, 12, unordered


def jpeg(path: Path, width=64, height=48, orientation=None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", (width, height), (90, 140, 200))
    if orientation:
        exif = Image.Exif()
        exif[0x0112] = orientation
        image.save(path, "JPEG", exif=exif)
    else:
        image.save(path, "JPEG")


def polygon_ann(ann_id, image_id, category_id, x=8, y=8, w=20, h=16, **extra) -> dict:
    seg = [[x, y, x + w, y, x + w, y + h, x, y + h]]
    return {"id": ann_id, "image_id": image_id, "category_id": category_id, "segmentation": seg,
            "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0, **extra}  # fmt: skip


def rle_ann(ann_id, image_id, category_id, width=64, height=48, crowd=1) -> dict:
    mask = np.zeros((height, width), np.uint8, order="F")
    mask[10:30, 12:40] = 1
    rle = mask_utils.encode(mask)
    rle["counts"] = rle["counts"].decode()
    return {"id": ann_id, "image_id": image_id, "category_id": category_id, "segmentation": rle,
            "bbox": [12, 10, 28, 20], "area": 560, "iscrowd": crowd}  # fmt: skip


def coco(images, annotations, categories=CATS) -> dict:
    return {"images": images, "annotations": annotations, "categories": categories}


def image(image_id, file_name, width=64, height=48) -> dict:
    return {"id": image_id, "file_name": file_name, "width": width, "height": height}


def write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def prepared_record(tmp_path, origin, **options):
    proj = Project(tmp_path / "project", tmp_path / "runtime" / "data", on_colab=False)
    data = dataset_source(proj, str(origin), **options)
    report = check_files(data.files, found=data.problems, read_images=False)
    assert report.ok, report.summary()
    return prepare_dataset(data.files, proj.outputs, data.source, 0.34, 0, own=data.own), proj, data


# --- layouts ---------------------------------------------------------------------------------------------


def test_roboflow_export_valid_is_the_validation_split_and_the_empty_root_category_is_left_out(tmp_path):
    root = tmp_path / "roboflow"
    categories = [{"id": 0, "name": "pets-abc1", "supercategory": "none"},
                  {"id": 1, "name": "cat", "supercategory": "pets-abc1"},
                  {"id": 2, "name": "dog", "supercategory": "pets-abc1"}]  # fmt: skip
    for split, n in (("train", 4), ("valid", 2), ("test", 2)):
        images = [image(i, f"{split}{i}_jpg.rf.abc.jpg") for i in range(n)]  # Roboflow's ids start at 0 per split
        for im in images:
            jpeg(root / split / im["file_name"])
        anns = [polygon_ann(i, i, 1 + i % 2) for i in range(n)] if split != "test" else []
        write(root / split / "_annotations.coco.json", coco(images, anns, categories))
    layout = find_layout(root)
    assert layout.kind == "Roboflow COCO" and layout.val and layout.test
    record, proj, data = prepared_record(tmp_path, root)
    assert record.category_ids == [1, 2] and record.class_names == ["cat", "dog"]
    assert any("pets-abc1" in str(p) and "left out" in str(p) for p in data.problems)
    assert record.counts["train_images"] == 4 and record.counts["val_images"] == 2 and record.counts["test_images"] == 2
    val = json.loads(Path(record.val_split).read_text())
    assert [im["file_name"] for im in val["images"]] == ["valid/valid0_jpg.rf.abc.jpg", "valid/valid1_jpg.rf.abc.jpg"]
    assert (record.data_files.train_images / val["images"][0]["file_name"]).is_file()


def test_cvat_export_with_subfolders_and_rle_crowd_masks_stops_until_crowd_as_objects(tmp_path):
    root = tmp_path / "cvat"
    images = [image(1, "set1/a.jpg"), image(2, "set2/b.jpg"), image(3, "set2/c.jpg")]
    for im in images:
        jpeg(root / "images" / im["file_name"])
    anns = [rle_ann(i, i, (3, 7, 12)[i % 3]) for i in (1, 2, 3)]
    write(root / "annotations" / "instances_default.json", coco(images, anns))
    proj = Project(tmp_path / "project", tmp_path / "runtime" / "data", on_colab=False)
    data = dataset_source(proj, str(root))
    assert data.layout.startswith("CVAT COCO 1.0")
    report = check_files(data.files, found=data.problems)
    assert not report.ok
    crowd = [p for p in report.errors if "crowd regions" in p.message]
    assert len(crowd) == 1 and "3 of 3 annotations" in crowd[0].message and "CROWD_AS_OBJECTS" in crowd[0].message
    record, _, _ = prepared_record(tmp_path, root, crowd_as_objects=True)
    assert record.mask_format == "bitmask" and record.crowd_as_objects
    train = json.loads(Path(record.train_split).read_text())
    assert {a["iscrowd"] for a in train["annotations"]} == {0}


def test_label_studio_names_resolve_by_the_stated_rule(tmp_path):
    root = tmp_path / "label-studio"
    jpeg(root / "images" / "4f2a-x.jpg")
    jpeg(root / "images" / "y.jpg")
    images = [image(0, "..\\..\\label-studio\\media\\upload\\4\\4f2a-x.jpg"), image(1, "images\\y.jpg")]
    write(root / "result.json", coco(images, [polygon_ann(0, 0, 3), polygon_ann(1, 1, 7)], CATS[1:]))
    prepared = own_data.prepare(root, tmp_path / "data")
    assert not prepared.problems
    names = [im["file_name"] for im in json.loads(prepared.files.train_json.read_text())["images"]]
    assert names == ["images/4f2a-x.jpg", "images/y.jpg"]
    assert prepared.files.test_json is None  # no test set: 01 says so and uses the validation images


def test_a_name_that_fits_two_files_stops_naming_both(tmp_path):
    root = tmp_path / "plain"
    jpeg(root / "images" / "a" / "x.jpg")
    jpeg(root / "images" / "b" / "x.jpg")
    write(root / "data.json", coco([image(1, "C:\\export\\x.jpg")], [polygon_ann(1, 1, 3)]))
    prepared = own_data.prepare(root, tmp_path / "data")
    errors = [p for p in prepared.problems if p.severity == "error"]
    assert len(errors) == 1
    message = errors[0].message
    assert "fits two files" in message and "images/a/x.jpg" in message and "images/b/x.jpg" in message


def test_an_unknown_layout_stops_naming_what_it_found_and_the_layouts_known(tmp_path):
    root = tmp_path / "odd"
    jpeg(root / "photo.jpg")
    (root / "notes.txt").write_text("labels elsewhere")
    with pytest.raises(TinyVocError, match=r"no COCO export found \(it holds notes.txt, photo.jpg\). Layouts known"):
        own_data.prepare(root, tmp_path / "data")


def test_a_zip_is_unpacked_once_and_ids_3_7_12_stay_the_datasets_own(own_export, tmp_path, capsys):
    folder = own_export(tmp_path / "src" / "my-pets")
    archive = tmp_path / "my-pets.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in folder.rglob("*"):
            zf.write(path, path.relative_to(folder.parent))
    record, proj, data = prepared_record(tmp_path, archive)
    assert record.name == "my-pets" and record.source == "own" and not record.is_course
    assert record.category_ids == [3, 7, 12] and record.class_names == ["cat", "dog", "zebra"]
    assert record.class_map.to_dataset_id(record.class_map.to_contiguous(12)) == 12
    assert "unpacking" in capsys.readouterr().out
    dataset_source(proj, str(archive))  # the next notebook: staged already, nothing unpacked again
    assert "unpacking" not in capsys.readouterr().out
    assert record.test_split and "validation images" in record.test_source
    assert (
        json.loads(Path(record.test_split).read_text())["images"]
        == json.loads(Path(record.val_split).read_text())["images"]
    )


def test_reversed_categories_change_nothing(own_export, tmp_path):
    first, _, _ = prepared_record(tmp_path / "a", own_export(tmp_path / "a" / "pets"))
    second_root = own_export(tmp_path / "b" / "pets")
    data = json.loads((second_root / "labels.json").read_text())
    data["categories"].reverse()
    write(second_root / "labels.json", data)
    second, _, _ = prepared_record(tmp_path / "b", second_root)
    assert (first.category_ids, first.class_names, first.fingerprint) == (
        second.category_ids,
        second.class_names,
        second.fingerprint,
    )


def test_a_new_runtime_stages_your_data_again_from_the_record(own_export, tmp_path):
    record, proj, _ = prepared_record(tmp_path, own_export(tmp_path / "pets"))
    elsewhere = Outputs.at(proj.outputs.root, tmp_path / "runtime2" / "data")
    again = DatasetRecord.load(elsewhere)
    assert again.data_files.train_images == tmp_path / "runtime2" / "data" / "datasets" / "pets"
    assert (again.data_files.train_images / "p0.jpg").is_file() and again.fingerprint == record.fingerprint


def test_test_images_folder_gets_a_json_sorted_recursive_sizes_from_the_files(own_export, tmp_path):
    root = own_export(tmp_path / "pets")
    new = tmp_path / "new-photos"
    jpeg(new / "b.jpg", 30, 20)
    jpeg(new / "a" / "z.jpg", 40, 30, orientation=6)  # the loader turns it: 30 wide, 40 high
    (new / "broken.png").write_bytes(b"not a png")
    record, _, data = prepared_record(tmp_path, root, test_images=str(new))
    test = json.loads(record.data_files.test_json.read_text())
    assert [(i["id"], i["file_name"], i["width"], i["height"]) for i in test["images"]] == [
        (1, "a/z.jpg", 30, 40),
        (2, "b.jpg", 30, 20),
    ]
    assert any("1 files could not be read" in p.message and "broken.png" in p.message for p in data.problems)
    assert record.data_files.test_images == tmp_path / "runtime" / "data" / "datasets" / "new-photos-test"


def test_a_dataset_path_on_the_command_line_is_checked_as_01_reads_it(own_export, tmp_path, capsys):
    root = own_export(tmp_path / "pets")
    assert cli.main(["check-dataset", str(root), "--no-images"]) == 0
    out = capsys.readouterr().out
    assert "plain COCO folder (train labels.json)" in out and "Dataset check passed" in out
    assert not (root / own_data.NORMALIZED).exists()  # the check wrote nothing into the export


# --- the check's verdicts, each said once with a count ------------------------------------------------------


def verdicts(tmp_path, images, annotations, categories=CATS, **options):
    root = tmp_path / "export"
    for im in images:
        jpeg(root / im["file_name"], 64, 48)
    write(root / "labels.json", coco(images, annotations, categories))
    data = dataset_source(Project(tmp_path / "p", tmp_path / "d", False), str(root))
    return check_files(data.files, found=data.problems, read_images=False, **options)


def only(problems, text):
    found = [p for p in problems if text in p.message]
    assert len(found) == 1, [str(p) for p in problems]
    return found[0].message


def test_box_only_annotations_stop_once_with_the_count(tmp_path):
    images = [image(i, f"i{i}.jpg") for i in range(1, 5)]
    anns = [polygon_ann(i, i, 3) for i in range(1, 5)]
    for ann in anns[:3]:
        ann["segmentation"] = []
    del anns[2]["segmentation"]
    report = verdicts(tmp_path, images, anns)
    message = only(report.errors, "have no mask")
    assert message.startswith("3 of 4 annotations have no mask") and "box-only" in message
    assert report.summary().count("no mask") == 1


def test_a_few_crowd_regions_warn_and_an_ignore_key_stops(tmp_path):
    images = [image(i, f"i{i}.jpg") for i in range(1, 5)]
    anns = [polygon_ann(i, i, 3) for i in range(1, 5)]
    anns[0]["iscrowd"] = 1
    anns[1]["ignore"] = 1
    report = verdicts(tmp_path, images, anns)
    assert only(report.warnings, "crowd regions").startswith("1 of 4 annotations are crowd regions")
    assert "detectron2 stops on them" in only(report.errors, "'ignore'")


def test_images_without_objects_say_whether_they_are_kept(tmp_path):
    images = [image(i, f"i{i}.jpg") for i in range(1, 5)]
    anns = [polygon_ann(1, 1, 3), polygon_ann(2, 2, 7), polygon_ann(3, 2, 12)]
    left = verdicts(tmp_path / "a", images, anns)
    assert "left out of training" in only(left.warnings, "2 of 4 images have no annotations")
    kept = verdicts(tmp_path / "b", images, anns, keep_empty_images=True)
    assert "kept as negative examples" in only(kept.warnings, "2 of 4 images have no annotations")


def test_two_categories_with_one_name_stop_naming_both_ids(tmp_path):
    images = [image(1, "i1.jpg")]
    categories = [{"id": 3, "name": "cat"}, {"id": 9, "name": "cat"}]
    report = verdicts(tmp_path, images, [polygon_ann(1, 1, 3), polygon_ann(2, 1, 9)], categories)
    assert "categories 3, 9 have one name 'cat'" in only(report.errors, "have one name")


def test_huge_photos_and_objects_too_small_at_the_training_size_warn_with_counts(tmp_path):
    images = [image(1, "big.jpg", 64, 48), image(2, "small.jpg")]
    images[0].update(width=4032, height=3024)  # a phone photo, as the json says (images are not read here)
    anns = [polygon_ann(1, 1, 3, w=10, h=8), polygon_ann(2, 2, 7)]  # 10 px of 4032 is 2 px at 1333
    report = verdicts(tmp_path, images, anns)
    assert only(report.warnings, "px on their long side").startswith("1 of 2 images are over 2666 px")
    assert only(report.warnings, "training size").startswith("1 of 2 objects are under 4 px")


def test_problems_of_one_kind_are_one_line_and_a_count(tmp_path):
    images = [image(i, f"i{i}.jpg") for i in range(1, 9)]
    anns = [polygon_ann(i, i, 99) for i in range(1, 9)]  # a class never declared (MMDetection #11858)
    anns.append(polygon_ann(20, 1, 3))
    summary = verdicts(tmp_path, images, anns).summary()
    assert summary.count("category_id 99 is not in 'categories'") == 1
    assert "... and 7 more like it (annotation 2 (image 2), annotation 3 (image 3), annotation 4 (image 4), ...)" in (
        summary
    )


def test_exif_turned_photos_labelled_as_shown_are_read_and_stored_size_labels_refused(tmp_path):
    root = tmp_path / "phone"
    jpeg(root / "shown.jpg", 64, 48, orientation=6)  # labelled as a viewer shows it: 48 wide, 64 high
    jpeg(root / "stored.jpg", 64, 48, orientation=6)  # labelled on the stored pixels: 64 x 48
    images = [image(1, "shown.jpg", 48, 64), image(2, "stored.jpg", 64, 48)]
    write(root / "labels.json", coco(images, [polygon_ann(1, 1, 3), polygon_ann(2, 2, 7)]))
    data = dataset_source(Project(tmp_path / "p", tmp_path / "d", False), str(root))
    report = check_files(data.files, found=data.problems)
    assert [Path(p.file).name for p in report.errors] == ["stored.jpg"], report.summary()
    assert "labelled on the stored pixels" in report.errors[0].message


def test_a_read_only_input_is_read_in_place_and_never_written(own_export, tmp_path):
    """Kaggle's ``/kaggle/input/<slug>/`` (and any local folder): linked entry by entry, the rewritten jsons beside the
    links, the export itself untouched."""
    export = own_export(tmp_path / "input" / "my-pets")
    before = {p: p.stat().st_mtime_ns for p in export.rglob("*")}
    proj = Project(tmp_path / "working", tmp_path / "scratch" / "data", on_colab=False, on_kaggle=True)
    data = dataset_source(proj, str(export))
    staged = data.files.train_images
    assert staged == tmp_path / "scratch" / "data" / "datasets" / "my-pets"
    assert (staged / "p0.jpg").is_symlink()
    assert data.files.train_json == staged / own_data.NORMALIZED / "train" / "labels.json"
    assert {p: p.stat().st_mtime_ns for p in export.rglob("*")} == before


def test_the_id_round_trip_holds_for_every_class_or_nothing_is_built():
    from tinyvoc.dataset.record import ClassMap

    ids = ClassMap((0, 3, 1_000_000), ("a", "b", "c"))
    assert [ids.to_dataset_id(ids.to_contiguous(i)) for i in (0, 3, 1_000_000)] == [0, 3, 1_000_000]
    with pytest.raises(TinyVocError, match="do not map one to one"):
        ClassMap((3, 3), ("cat", "dog"))
