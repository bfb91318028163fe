"""The course files by Drive file id: fetched one by one, checked against the course's release."""

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from tinyvoc.core.errors import TinyVocError
from tinyvoc.core.paths import TRAIN_IMAGES
from tinyvoc.dataset import download
from tinyvoc.runtime import local_data


def course_files(shared: Path, folder: Path, n_train: int = download.COURSE_COUNTS[TRAIN_IMAGES]) -> dict[str, Path]:
    """Files shaped like the course's release: the real test.json, a train json and zips with the right counts."""
    test = json.loads((shared / "test.json").read_text())
    train = {
        "images": [{"id": i, "file_name": f"t{i}.jpg", "height": 2, "width": 2} for i in range(n_train)],
        "annotations": [],
        "categories": test["categories"],
    }
    folder.mkdir(parents=True, exist_ok=True)
    out = {"pascal_train.json": folder / "pascal_train.json", "test.json": folder / "test.json"}
    out["pascal_train.json"].write_text(json.dumps(train))
    out["test.json"].write_text(json.dumps(test))
    for name, images in (("train_images", train["images"]), ("test_images", test["images"])):
        out[f"{name}.zip"] = folder / f"{name}.zip"
        with zipfile.ZipFile(out[f"{name}.zip"], "w") as zf:
            for img in images:
                zf.writestr(f"{name}/{img['file_name']}", b"")
    return out


def test_course_files_are_fetched_by_file_id_and_checked(shared_tinyvoc, tmp_path, monkeypatch):
    source = course_files(shared_tinyvoc, tmp_path / "published")
    by_id = {download.COURSE_FILE_IDS[name]: path for name, path in source.items()}
    fetched = []
    monkeypatch.setattr(download, "check_reachable", lambda dest, timeout=10: None)

    def fake_drive(file_id, target):
        fetched.append(file_id)
        shutil.copy(by_id[file_id], target)

    dest = tmp_path / "project" / "data"
    assert download.fetch_course_files(dest, downloader=fake_drive) == dest
    assert sorted(fetched) == sorted(download.COURSE_FILE_IDS.values())  # four single files, no folder listing
    files = local_data.make_local(dest, tmp_path / "local")
    assert len(list(files.train_images.iterdir())) == 1349 and len(list(files.test_images.iterdir())) == 100


def test_course_files_that_differ_stop_with_how_to_fix(shared_tinyvoc, tmp_path):
    folder = tmp_path / "data"
    course_files(shared_tinyvoc, folder, n_train=1348)
    test = json.loads((folder / "test.json").read_text())
    test["images"][0]["file_name"] = "renamed.jpg"
    (folder / "test.json").write_text(json.dumps(test))
    with pytest.raises(TinyVocError) as err:
        download.verify_course_files(folder)
    message = str(err.value)
    assert "pascal_train.json lists 1348 images, not 1349" in message
    assert "test.json's image ids and file names differ from the course's test.json" in message
    assert "train_images.zip holds 1348 images, not 1349" in message
    assert "Put the files there by hand" in message


def test_the_stored_signature_is_that_of_the_course_test_json(shared_tinyvoc):
    coco = json.loads((shared_tinyvoc / "test.json").read_text())
    assert download.image_list_signature(coco) == download.TEST_IMAGES_SHA256


def test_a_file_gone_from_drive_says_how_to_put_it_there(tmp_path, monkeypatch):
    import gdown

    def gone(**kwargs):
        raise gdown.exceptions.FileURLRetrievalError("Cannot retrieve the public link of the file.")

    monkeypatch.setattr(gdown, "download", gone)
    with pytest.raises(TinyVocError, match=r"Could not download test.json \(Drive file id 1-8Lg.*Put the files there"):
        download._gdown(download.COURSE_FILE_IDS["test.json"], tmp_path / "test.json")
    assert list(tmp_path.iterdir()) == []
