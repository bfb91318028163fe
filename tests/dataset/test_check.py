"""Tests for tinyvoc.dataset.check: the real files pass, and each kind of broken copy is named precisely.

Broken copies are made in tmp_path from either a small synthetic dataset (always available) or a copy of
the real files in ../shared/tinyvoc (when present), so the checks are exercised on both.
"""

import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from tinyvoc import cli
from tinyvoc.core.errors import TinyVocError
from tinyvoc.dataset.check import DatasetReport, Problem, check_coco_file, check_dataset


@pytest.fixture(scope="module")
def real(shared_tinyvoc) -> "Dataset":
    """The course's real files (the first 10 training images and the 100 test images), read only."""
    return Dataset(
        shared_tinyvoc / "pascal_train_first10.json",
        shared_tinyvoc / "train_images",
        shared_tinyvoc / "test.json",
        shared_tinyvoc / "test_images",
    )


@dataclass
class Dataset:
    train_json: Path
    train_images: Path
    test_json: Path
    test_images: Path

    def load(self) -> dict:
        return json.loads(self.train_json.read_text())

    def save(self, data: dict) -> None:
        self.train_json.write_text(json.dumps(data))

    def check(self, **kwargs) -> DatasetReport:
        return check_coco_file(self.train_json, self.train_images, require_annotations=True, **kwargs)


def _write_jpeg(path: Path, width: int, height: int, color=(120, 60, 30), exif_orientation=None) -> None:
    image = Image.new("RGB", (width, height), color)
    if exif_orientation is None:
        image.save(path, "JPEG")
    else:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        image.save(path, "JPEG", exif=exif)


def _rect(x0, y0, x1, y1) -> list:
    return [x0, y0, x1, y0, x1, y1, x0, y1]


CATEGORIES = [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}, {"id": 5, "name": "person"}]


@pytest.fixture
def synthetic(tmp_path) -> Dataset:
    """A tiny clean dataset: non-contiguous ids, multi-polygon objects, PIL-made JPEGs."""
    root = tmp_path / "synthetic"
    train_images, test_images = root / "train_images", root / "test_images"
    train_images.mkdir(parents=True)
    test_images.mkdir()
    images = [
        {"id": 3, "file_name": "a.jpg", "width": 64, "height": 48},
        {"id": 8, "file_name": "b.jpg", "width": 80, "height": 60},
        {"id": 21, "file_name": "c.jpg", "width": 50, "height": 70},
    ]
    for im in images:
        _write_jpeg(train_images / im["file_name"], im["width"], im["height"])
    annotations = [
        {
            "id": 5,
            "image_id": 3,
            "category_id": 1,
            "segmentation": [_rect(8, 8, 40, 30)],
            "bbox": [8, 8, 32, 22],
        },
        # one object in two pieces (occluded), like many real Tiny VOC objects
        {
            "id": 9,
            "image_id": 8,
            "category_id": 2,
            "segmentation": [_rect(10, 10, 30, 40), _rect(40, 10, 70, 40)],
            "bbox": [10, 10, 60, 30],
        },
        {
            "id": 12,
            "image_id": 8,
            "category_id": 5,
            "segmentation": [[5, 50, 25, 45, 15, 58]],
            "bbox": [5, 45, 20, 13],
        },
        {
            "id": 40,
            "image_id": 21,
            "category_id": 5,
            "segmentation": [_rect(0, 0, 50, 70)],
            "bbox": [0, 0, 50, 70],
        },
    ]
    for ann in annotations:
        ann.update(iscrowd=0, area=1.0)
    train_json = root / "train.json"
    train_json.write_text(json.dumps({"images": images, "annotations": annotations, "categories": CATEGORIES}))
    test_list = [
        {"id": 100, "file_name": "t1.jpg", "width": 40, "height": 30},
        {"id": 7, "file_name": "t2.jpg", "width": 30, "height": 40},
    ]
    for im in test_list:
        _write_jpeg(test_images / im["file_name"], im["width"], im["height"])
    test_json = root / "test.json"
    test_json.write_text(json.dumps({"images": test_list, "categories": CATEGORIES}))
    return Dataset(train_json, train_images, test_json, test_images)


@pytest.fixture(params=["synthetic", "shared"])
def dataset(request, tmp_path) -> Dataset:
    """A writable copy to break: the synthetic set, or the real train files copied into tmp_path."""
    if request.param == "synthetic":
        return request.getfixturevalue("synthetic")
    real = request.getfixturevalue("real")
    root = tmp_path / "shared_copy"
    root.mkdir()
    train_json = root / real.train_json.name
    shutil.copy(real.train_json, train_json)
    shutil.copytree(real.train_images, root / "train_images")
    test_json = root / real.test_json.name
    shutil.copy(real.test_json, test_json)
    # test images are only read, never changed, so they are not copied
    return Dataset(train_json, root / "train_images", test_json, real.test_images)


def _find(report: DatasetReport, text: str, severity: str = "error") -> Problem:
    matches = [p for p in report.problems if text in p.message and p.severity == severity]
    assert matches, f"no {severity} containing {text!r} in:\n{report.summary(limit=100)}"
    return matches[0]


# --- clean data --------------------------------------------------------------------------------


def test_real_files_have_no_errors(real):
    import detectron2.data  # noqa: F401 - a once-per-kernel import, not the check's time

    start = time.perf_counter()
    report = check_dataset(real.train_json, real.train_images, real.test_json, real.test_images)
    elapsed = time.perf_counter() - start
    assert report.ok, report.summary()
    assert report.stats == {"images": 110, "annotations": 23, "images_checked": 110, "categories": 20}
    assert elapsed < 10, f"check took {elapsed:.1f}s on 110 images"


def test_real_test_file_alone_has_no_problems(real):
    report = check_coco_file(real.test_json, real.test_images, require_annotations=False)
    assert report.problems == []
    assert report.stats["images"] == 100


def test_synthetic_dataset_is_clean(synthetic):
    report = check_dataset(synthetic.train_json, synthetic.train_images, synthetic.test_json, synthetic.test_images)
    assert report.problems == [], report.summary()
    assert report.stats == {"images": 5, "annotations": 4, "images_checked": 5, "categories": 3}
    assert "passed" in report.summary()


# --- broken copies: errors ---------------------------------------------------------------------


def test_missing_image(dataset):
    data = dataset.load()
    image = data["images"][1]
    (dataset.train_images / image["file_name"]).unlink()
    report = dataset.check()
    problem = _find(report, "image file not found")
    assert problem.where == f"image {image['id']}"
    assert Path(problem.file).name == image["file_name"]
    assert len(report.errors) == 1


def test_wrong_size_in_json(dataset):
    data = dataset.load()
    image = data["images"][0]
    width, height = image["width"], image["height"]
    image["width"] = width + 7
    dataset.save(data)
    problem = _find(dataset.check(), "size mismatch")
    assert problem.where == f"image {image['id']}"
    assert f"{width + 7}x{height}" in problem.message and f"the file is {width}x{height}" in problem.message


def test_unknown_category(dataset):
    data = dataset.load()
    ann = data["annotations"][0]
    ann["category_id"] = 999
    dataset.save(data)
    problem = _find(dataset.check(), "category_id 999 is not in 'categories'")
    assert problem.where == f"annotation {ann['id']} (image {ann['image_id']})"


def test_degenerate_polygon(dataset):
    data = dataset.load()
    ann = data["annotations"][0]
    ann["segmentation"] = [[1, 1, 5, 5]]
    dataset.save(data)
    problem = _find(dataset.check(), "polygon 0 has 2 points (needs >= 3)")
    expected = f"ERROR {dataset.train_json.name} annotation {ann['id']} (image {ann['image_id']}): "
    assert str(problem) == expected + "polygon 0 has 2 points (needs >= 3)"


def test_odd_number_of_coordinates(dataset):
    data = dataset.load()
    ann = data["annotations"][0]
    ann["segmentation"] = [ann["segmentation"][0][:-1]]
    dataset.save(data)
    problem = _find(dataset.check(), "polygon 0 has an odd number of coordinates")
    assert str(ann["id"]) in problem.where


def test_truncated_json(dataset):
    text = dataset.train_json.read_text()
    dataset.train_json.write_text(text[: len(text) // 2])
    report = dataset.check()
    problem = _find(report, "not valid JSON")
    assert "line 1, column" in problem.message and "truncated" in problem.message
    assert str(problem).startswith(f"ERROR {dataset.train_json.name}: ")


def test_duplicate_image_ids(dataset):
    data = dataset.load()
    first, second = data["images"][0], data["images"][1]
    second["id"] = first["id"]
    dataset.save(data)
    problem = _find(dataset.check(), f"image id {first['id']} is used by 2 entries")
    assert first["file_name"] in problem.message and second["file_name"] in problem.message


def test_duplicate_annotation_ids(dataset):
    data = dataset.load()
    data["annotations"][1]["id"] = data["annotations"][0]["id"]
    dataset.save(data)
    ann_id = data["annotations"][0]["id"]
    problem = _find(dataset.check(), f"annotation id {ann_id} is used by 2 annotations")
    assert problem.where == f"annotation {ann_id}"


def test_duplicate_category_ids(dataset):
    data = dataset.load()
    data["categories"][1]["id"] = data["categories"][0]["id"]
    dataset.save(data)
    cat_id = data["categories"][0]["id"]
    assert _find(dataset.check(), f"category id {cat_id} is used by 2 entries").where == f"category {cat_id}"


def test_annotation_for_unknown_image(dataset):
    data = dataset.load()
    ann = data["annotations"][0]
    ann["image_id"] = 987654
    dataset.save(data)
    problem = _find(dataset.check(), "image_id 987654 is not in 'images'")
    assert problem.where == f"annotation {ann['id']} (image 987654)"


def test_zero_area_polygon(dataset):
    data = dataset.load()
    ann = data["annotations"][0]
    ann["segmentation"] = [[10, 10, 20, 20, 30, 30]]  # collinear
    dataset.save(data)
    problem = _find(dataset.check(), "mask has zero area")
    assert problem.where == f"annotation {ann['id']} (image {ann['image_id']})"


@pytest.mark.parametrize(
    ("segmentation", "text"),
    [
        ("polygon", "unsupported segmentation type str"),
        ([[1, 2, "x", 4, 5, 6]], "non-numeric"),
    ],
)
def test_bad_segmentation(synthetic, segmentation, text):
    data = synthetic.load()
    data["annotations"][0]["segmentation"] = segmentation
    synthetic.save(data)
    assert _find(synthetic.check(), text).where == "annotation 5 (image 3)"


@pytest.mark.parametrize("segmentation", [None, [], [[]]])
def test_a_missing_mask_is_counted_once_over_all_annotations(synthetic, segmentation):
    data = synthetic.load()
    for ann in data["annotations"][:2]:
        ann["segmentation"] = segmentation
    synthetic.save(data)
    problem = _find(synthetic.check(), "2 of 4 annotations have no mask")
    assert problem.where == "" and "e.g. annotation 5 (image 3)" in problem.message


def test_rle_segmentation_checked_against_image_size(synthetic):
    data = synthetic.load()
    mask = np.zeros((48, 64), dtype=np.uint8, order="F")
    mask[8:30, 8:40] = 1
    rle = mask_utils.encode(mask)
    rle["counts"] = rle["counts"].decode("ascii")
    data["annotations"][0]["segmentation"] = rle
    synthetic.save(data)
    assert synthetic.check().problems == []

    rle["size"] = [64, 48]
    synthetic.save(data)
    problem = _find(synthetic.check(), "RLE size [height, width] = [64, 48] does not match the image's [48, 64]")
    assert problem.where == "annotation 5 (image 3)"


def test_empty_image_folder(dataset):
    for path in dataset.train_images.iterdir():
        path.unlink()
    report = dataset.check()
    problem = _find(report, "is empty")
    assert problem.file == str(dataset.train_images)
    assert len(report.errors) == 1, "one folder error, not one 'missing' error per image"


def test_missing_image_folder_and_json(synthetic, tmp_path):
    report = check_coco_file(tmp_path / "nope.json", tmp_path / "no_images", require_annotations=True)
    _find(report, "json file not found")
    _find(report, "image folder not found")


def test_wrong_image_folder(synthetic):
    report = check_coco_file(synthetic.train_json, synthetic.test_images, require_annotations=True)
    _find(report, "none of the 3 images listed are in")


@pytest.mark.parametrize(
    ("content", "text"),
    [
        ([1, 2, 3], "the top level is a list"),
        ({"annotations": []}, "no 'images' key"),
        ({"images": {}, "categories": []}, "'images' is a dict, expected a list"),
    ],
)
def test_json_that_is_not_coco(dataset, content, text):
    dataset.train_json.write_text(json.dumps(content))
    problem = _find(dataset.check(), f"not a COCO json: {text}")
    assert problem.where == "" and Path(problem.file).name == dataset.train_json.name


def test_unreadable_image(dataset):
    name = dataset.load()["images"][0]["file_name"]
    (dataset.train_images / name).write_bytes(b"this is not a jpeg")
    assert Path(_find(dataset.check(), "cannot read image").file).name == name


def test_train_and_test_categories_must_match(synthetic):
    test = json.loads(synthetic.test_json.read_text())
    test["categories"][1]["name"] = "doggo"
    test["categories"].append({"id": 9, "name": "horse"})
    synthetic.test_json.write_text(json.dumps(test))
    report = check_dataset(synthetic.train_json, synthetic.train_images, synthetic.test_json, synthetic.test_images)
    renamed = _find(report, "category 2 is 'doggo' here but 'dog'")
    assert Path(renamed.file).name == "test.json"
    _find(report, "category 9 ('horse') is not in train.json")


# --- warnings keep going -----------------------------------------------------------------------


def test_warnings_do_not_fail(synthetic):
    data = synthetic.load()
    data["annotations"][0]["iscrowd"] = 1
    data["annotations"][1]["bbox"] = [0, 0, 5, 5]  # far from the mask
    data["annotations"][2]["segmentation"] = [[5, 50, 25, 45, 15, 75]]  # y=75 > height 60
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] != 21]
    synthetic.save(data)
    report = synthetic.check()
    assert report.ok and report.errors == []
    assert (
        "(iscrowd: 1; e.g. annotation 5 (image 3))" in _find(report, "1 of 3 annotations are crowd", "warning").message
    )
    assert "does not match the mask's bbox" in _find(report, "bbox [0, 0, 5, 5]", "warning").message
    assert "outside the 80x60 image" in _find(report, "polygon 0 has 1 point", "warning").message
    assert "(e.g. c.jpg)" in _find(report, "1 of 3 images have no annotations", "warning").message
    report.raise_if_errors()  # warnings alone do not raise
    assert "passed with warnings" in report.summary()


def test_small_bbox_offsets_are_tolerated(synthetic):
    data = synthetic.load()
    data["annotations"][2]["bbox"] = [4, 44, 22, 15]  # off by 1-2 px on a small object
    synthetic.save(data)
    assert synthetic.check().problems == []


def test_test_json_with_annotations_is_a_warning(synthetic):
    test = json.loads(synthetic.test_json.read_text())
    test["annotations"] = [{"id": 1, "image_id": 100, "category_id": 1}]
    synthetic.test_json.write_text(json.dumps(test))
    report = check_coco_file(synthetic.test_json, synthetic.test_images, require_annotations=False)
    assert report.ok
    _find(report, "has 1 annotation: a labelled test set, so 04 and `tinyvoc evaluate --split test` score", "warning")


# --- images are read exactly as detectron2's loader reads them ----------------------------------


def _noise_jpeg(path: Path, width: int, height: int, **save) -> None:
    """A photo-like JPEG (noise compresses badly, so cutting the file cuts image data, not headers)."""
    Image.effect_noise((width, height), 60).convert("RGB").save(path, "JPEG", **save)


def _set_exif_orientation(path: Path, orientation: int) -> None:
    """Re-save the same pixels with an EXIF orientation tag, as a phone or an editor writes it."""
    with Image.open(path) as image:
        pixels = image.convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = orientation
    pixels.save(path, "JPEG", quality=95, exif=exif)


def _loader_inputs(json_path: Path, image_dir: Path, is_train: bool) -> dict:
    """detectron2's own loader (load_coco_json + DatasetMapper of the smoke config) on every image of the json.

    Returns file name -> the exception the loader raised for it, or None when it produced a training input.
    """
    from detectron2.data import DatasetMapper
    from detectron2.data.datasets import load_coco_json

    from tinyvoc.training.profiles import build_config

    mapper = DatasetMapper(build_config("smoke", 3, str(json_path.parent)), is_train=is_train)
    outcome = {}
    for record in load_coco_json(str(json_path), str(image_dir)):
        try:
            mapped = mapper(record)
            assert mapped["image"].shape[0] == 3
            outcome[Path(record["file_name"]).name] = None
        except Exception as exc:  # noqa: BLE001 - any exception here is the crash the check must prevent
            outcome[Path(record["file_name"]).name] = exc
    return outcome


def test_truncated_jpeg_is_an_error_naming_the_file(dataset):
    data = dataset.load()
    image = data["images"][1]
    path = dataset.train_images / image["file_name"]
    if dataset.train_json.name == "train.json":  # the synthetic images are flat: make one photo-like
        _noise_jpeg(path, image["width"], image["height"])
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 3])  # an interrupted copy
    loader = _loader_inputs(dataset.train_json, dataset.train_images, is_train=True)
    assert isinstance(loader[image["file_name"]], OSError), "the loader itself must fail on this file"
    assert "truncated" in str(loader[image["file_name"]])

    report = dataset.check()
    problem = _find(report, "cannot read image")
    assert Path(problem.file).name == image["file_name"] and problem.where == f"image {image['id']}"
    assert "truncated" in problem.message and "copy it again" in problem.message
    assert len(report.errors) == 1, report.summary()
    assert [name for name, exc in loader.items() if exc is not None] == [image["file_name"]]


def test_exif_rotated_image_is_an_error_naming_the_file(dataset):
    data = dataset.load()
    image = data["images"][0]
    name, width, height = image["file_name"], image["width"], image["height"]
    _set_exif_orientation(dataset.train_images / name, 6)  # "rotate 90": viewers and detectron2 turn it
    from detectron2.data.detection_utils import SizeMismatchError

    loader = _loader_inputs(dataset.train_json, dataset.train_images, is_train=True)
    assert isinstance(loader[name], SizeMismatchError), "the loader itself must fail on this file"

    report = dataset.check()
    problem = _find(report, "EXIF orientation 6 (rotated 90 degrees clockwise)")
    assert Path(problem.file).name == name and problem.where == f"image {image['id']}"
    assert f"gives its stored size {width}x{height}" in problem.message  # labelled on the stored pixels
    assert f"turns it to {height}x{width}" in problem.message and "remove the tag" in problem.message
    assert len(report.errors) == 1, report.summary()

    # sizes swapped to what the loader sees: the json was drawn on the turned picture (as CVAT, Label Studio and
    # Roboflow show a phone photo), the one the loader reads: used, no EXIF error and no size mismatch
    image.update(width=height, height=width)
    dataset.save(data)
    report = dataset.check()
    assert not [p for p in report.errors if "EXIF" in p.message or "size mismatch" in p.message], report.summary()


@pytest.mark.parametrize("orientation", [2, 3, 4, 5, 7, 8])
def test_every_exif_turn_is_refused_even_when_the_size_stays(synthetic, orientation):
    _set_exif_orientation(synthetic.train_images / "b.jpg", orientation)
    problem = _find(synthetic.check(), f"EXIF orientation {orientation}")
    assert Path(problem.file).name == "b.jpg" and problem.where == "image 8"


def test_exif_orientation_1_is_fine(synthetic):
    _set_exif_orientation(synthetic.train_images / "a.jpg", 1)
    assert synthetic.check().problems == []


def _odd_files(folder: Path) -> dict:
    """file name -> (json width, json height) of odd and broken images, written into ``folder``."""
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8))
    sizes = {}

    def save(name, image, fmt, size=None, **kwargs):
        image.save(folder / name, fmt, **kwargs)
        sizes[name] = size or image.size

    def write(name, content, size=(60, 40)):
        (folder / name).write_bytes(content)
        sizes[name] = size

    save("gray.jpg", rgb.convert("L"), "JPEG")
    save("cmyk.jpg", rgb.convert("CMYK"), "JPEG")
    save("png_named.jpg", rgb, "PNG")
    save("rgba.png", rgb.convert("RGBA"), "PNG")
    save("palette.png", rgb.convert("P"), "PNG")
    save("one_bit.png", rgb.convert("1"), "PNG")
    save("sixteen_bit.png", Image.fromarray(rng.integers(0, 65535, (40, 60), dtype=np.uint16)), "PNG")
    save("tiny.jpg", rgb.resize((2, 1)), "JPEG")
    save("UPPER.JPG", rgb, "JPEG")
    save("wrong_size.jpg", rgb, "JPEG", size=(61, 40))
    exif = Image.Exif()
    exif[0x0112] = 6
    save("rotated.jpg", rgb, "JPEG", exif=exif)
    exif[0x0112] = 3
    save("upside_down.jpg", rgb, "JPEG", exif=exif)
    save("good.jpg", rgb, "JPEG")
    jpeg = (folder / "good.jpg").read_bytes()
    middle = len(jpeg) // 2
    write("corrupt_middle.jpg", jpeg[:middle] + bytes(64) + jpeg[middle + 64 :])
    write("truncated.jpg", jpeg[: len(jpeg) // 3])
    rgb.save(folder / "full.png", "PNG")
    png = (folder / "full.png").read_bytes()
    write("truncated.png", png[: len(png) // 2])
    write("zero_bytes.jpg", b"")
    write("html.jpg", b"<html><body>Sign in to Google Drive</body></html>")
    return sizes


# must be errors; the others pass or fail as the loader does, which the next test asserts
BROKEN = {"truncated.jpg", "truncated.png", "zero_bytes.jpg", "html.jpg", "wrong_size.jpg", "rotated.jpg"}
BROKEN |= {"upside_down.jpg"}


@pytest.mark.parametrize("require_annotations", [True, False], ids=["train", "test"])
def test_every_image_the_check_passes_detectron2s_loader_reads(tmp_path, require_annotations):
    folder = tmp_path / "images"
    folder.mkdir()
    sizes = _odd_files(folder)
    images = [{"id": i, "file_name": n, "width": w, "height": h} for i, (n, (w, h)) in enumerate(sorted(sizes.items()))]
    annotations = [
        {"id": 100 + im["id"], "image_id": im["id"], "category_id": 1, "iscrowd": 0, "area": 1.0}
        | {"segmentation": [_rect(0, 0, im["width"], im["height"])], "bbox": [0, 0, im["width"], im["height"]]}
        for im in images
    ]
    json_path = tmp_path / "odd.json"
    content = {"images": images, "categories": CATEGORIES}
    if require_annotations:
        content["annotations"] = annotations
    json_path.write_text(json.dumps(content))

    report = check_coco_file(json_path, folder, require_annotations=require_annotations, workers=3)
    assert report.stats["images_checked"] == len(images)
    refused = {}
    for problem in report.errors:
        name = Path(problem.file).name
        assert name in sizes, f"error does not name an image file: {problem}"
        assert problem.where == f"image {images[sorted(sizes).index(name)]['id']}", str(problem)
        assert problem.message, str(problem)
        refused[name] = problem.message
    assert BROKEN <= set(refused), f"not refused: {BROKEN - set(refused)}\n{report.summary(limit=100)}"

    loader = _loader_inputs(json_path, folder, is_train=require_annotations)
    crashed = {name for name, exc in loader.items() if exc is not None}
    passed = set(sizes) - set(refused)
    assert passed, "the odd but valid images must pass"
    assert not (passed & crashed), {name: repr(loader[name]) for name in passed & crashed}
    assert crashed <= set(refused)
    same_with_one_thread = check_coco_file(json_path, folder, require_annotations=require_annotations, workers=1)
    assert same_with_one_thread.problems == report.problems


def test_real_images_pass_the_loader_too(real):
    loader = _loader_inputs(real.train_json, real.train_images, is_train=True)
    assert len(loader) == 10 and all(exc is None for exc in loader.values()), loader


def test_large_folders_report_progress_every_tenth(tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    Image.new("RGB", (8, 6), (10, 20, 30)).save(folder / "0.jpg", "JPEG")
    for k in range(1, 250):
        shutil.copy(folder / "0.jpg", folder / f"{k}.jpg")
    images = [{"id": k, "file_name": f"{k}.jpg", "width": 8, "height": 6} for k in range(250)]
    json_path = tmp_path / "many.json"
    json_path.write_text(json.dumps({"images": images, "categories": CATEGORIES}))
    lines = []
    report = check_coco_file(json_path, folder, require_annotations=False, progress=lines.append)
    assert report.problems == [] and report.stats["images_checked"] == 250
    assert len(lines) == 10, lines
    assert lines[0].startswith("  read 25/250 images of many.json") and "250/250" in lines[-1]

    json_path.write_text(json.dumps({"images": images[:200], "categories": CATEGORIES}))
    lines.clear()
    check_coco_file(json_path, folder, require_annotations=False, progress=lines.append)
    assert lines == [], "small folders stay quiet"


def test_prediction_reader_refuses_what_the_check_refuses(synthetic):
    from tinyvoc.core.image_reader import ImageToRead, read_image

    item = ImageToRead(synthetic.train_images / "a.jpg", 48, 64)
    assert read_image(item).shape == (48, 64, 3)
    _set_exif_orientation(item.path, 6)
    with pytest.raises(TinyVocError, match=r"a\.jpg: a\.jpg has EXIF orientation 6"):
        read_image(item)
    with pytest.raises(
        TinyVocError, match=r"t1\.jpg: size mismatch: the json says width x height = 64x40, the file is 40x30"
    ):
        read_image(ImageToRead(synthetic.test_images / "t1.jpg", 40, 64, "the json"))


# --- report, raise and CLI ---------------------------------------------------------------------


def test_summary_truncates_but_report_keeps_everything(synthetic):
    data = synthetic.load()
    for ann in data["annotations"]:
        ann["category_id"] = 77
    synthetic.save(data)
    report = synthetic.check()
    assert len(report.errors) == 4
    summary = report.summary(limit=2)  # one kind: one line and where the others are
    assert summary.count("category_id 77") == 1
    assert (
        "... and 3 more like it (annotation 9 (image 8), annotation 12 (image 8), annotation 40 (image 21))" in summary
    )
    data["categories"] = []
    synthetic.save(data)
    summary = synthetic.check().summary(limit=1)
    assert "... and 4 more errors of 1 other kind" in summary


def test_raise_if_errors_names_the_file(synthetic):
    data = synthetic.load()
    data["annotations"][0]["segmentation"] = [[1, 1, 5, 5]]
    synthetic.save(data)
    with pytest.raises(TinyVocError, match=r"train\.json annotation 5 \(image 3\): polygon 0 has 2 points"):
        synthetic.check().raise_if_errors()


def test_no_images_mode_skips_reading_but_finds_missing_files(synthetic):
    (synthetic.train_images / "c.jpg").unlink()
    (synthetic.train_images / "a.jpg").write_bytes(b"garbage")
    report = synthetic.check(read_images=False)
    assert report.stats["images_checked"] == 0
    assert [p.where for p in report.errors] == ["image 21"]


def test_cli_verb_is_check_dataset(synthetic, capsys):
    from tinyvoc.cli import main as cli

    args = [str(synthetic.train_json), str(synthetic.train_images)]
    assert cli(["check-dataset", *args]) == 0
    assert "Dataset check passed" in capsys.readouterr().out
    (synthetic.train_images / "b.jpg").write_bytes(b"")
    assert cli(["check-dataset", *args]) == 1
    assert "ERROR b.jpg image 8: cannot read image b.jpg: the file is empty" in capsys.readouterr().out
    assert cli(["check", *args]) == 2  # argparse's usage error, returned as the exit status
    assert "invalid choice: 'check'" in capsys.readouterr().err


def test_without_detectron2_one_clear_error(synthetic, monkeypatch):
    monkeypatch.setitem(sys.modules, "detectron2.data", None)  # as if detectron2 were not installed
    with pytest.raises(TinyVocError, match="needs detectron2.*run 00_install.ipynb first.*--no-images"):
        synthetic.check()
    assert synthetic.check(read_images=False).problems == []


def test_check_dataset_needs_both_test_paths(synthetic):
    with pytest.raises(TinyVocError, match="both test_json and test_images"):
        check_dataset(synthetic.train_json, synthetic.train_images, test_json=synthetic.test_json)


def main(argv: list[str]) -> int:
    return cli.main(["check-dataset", *argv])


def test_main_exit_codes(synthetic, capsys):
    """``tinyvoc check-dataset``: 0 without errors, 1 with errors or a test json without its images."""
    args = [str(synthetic.train_json), str(synthetic.train_images)]
    test_args = ["--test-json", str(synthetic.test_json), "--test-images", str(synthetic.test_images)]
    assert main(args + test_args) == 0
    assert "Dataset check passed" in capsys.readouterr().out

    (synthetic.train_images / "a.jpg").unlink()
    assert main(args + ["--no-images"]) == 1
    out = capsys.readouterr().out
    assert "ERROR a.jpg image 3: image file not found" in out

    assert main(args + ["--test-json", str(synthetic.test_json)]) == 1
    assert "--test-json and --test-images go together" in capsys.readouterr().err
