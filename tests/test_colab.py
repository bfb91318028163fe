"""Colab without surprises: one project folder, portable records, checked downloads, no silent fallbacks.

Each "stops" test checks the message and that nothing was written. Colab is stood in for by the
test double in ``tests/colab_double`` (``google.colab`` importable, ``drive.mount`` exposing a
temporary folder) and ``TINYVOC_DRIVE_MOUNT`` pointing the mount point into ``tmp_path``.
"""

import json
import re
import shutil
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest
from tinyvoc import colab, download, local_data, project
from tinyvoc.dataset import DataFiles, DatasetRecord, prepare_dataset
from tinyvoc.errors import TinyVocError
from tinyvoc.paths import NOTEBOOKS, NOTEBOOKS_DIR, REPO_ROOT, Outputs
from tinyvoc.sample_data import make_sample_dataset

DOUBLE = Path(__file__).parent / "colab_double"


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*")) if path.exists() else []


@pytest.fixture
def drive(tmp_path, monkeypatch):
    """A mount point in tmp_path (not mounted yet) and the folder that stands for Google Drive."""
    mount = tmp_path / "content" / "drive"
    fake = tmp_path / "fake-drive"
    (fake / "MyDrive").mkdir(parents=True)
    monkeypatch.setenv(colab.MOUNT_ENV, str(mount))
    monkeypatch.delenv("TINYVOC_FAKE_DRIVE", raising=False)
    return mount, fake


@pytest.fixture
def on_colab(monkeypatch):
    monkeypatch.syspath_prepend(str(DOUBLE))
    for name in [m for m in sys.modules if m == "google.colab" or m.startswith("google.colab.")]:
        monkeypatch.delitem(sys.modules, name)
    assert colab.on_colab()


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return make_sample_dataset(tmp_path_factory.mktemp("sample"))


def zip_folder(folder: Path, archive: Path, top: str | None = None) -> Path:
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.iterdir()):
            zf.write(path, f"{top}/{path.name}" if top else path.name)
    return archive


def put_on_drive(sample: Path, data: Path) -> None:
    data.mkdir(parents=True)
    for name in ("pascal_train.json", "test.json"):
        shutil.copy(sample / name, data / name)
    zip_folder(sample / "train_images", data / "train_images.zip", top="train_images")
    zip_folder(sample / "test_images", data / "test_images.zip")  # flat zip: both layouts are accepted


# --- no silent fallbacks -------------------------------------------------------------------------


def test_not_colab_without_the_package():
    assert not colab.on_colab()


def test_project_on_unmounted_drive_stops_off_colab(drive):
    mount, _ = drive
    with pytest.raises(TinyVocError, match=r"is on Google Drive .* but Drive is not mounted\. Nothing was written"):
        project.start(str(mount / "MyDrive" / "tinyvoc"), install=False)
    assert not mount.exists()


def test_output_folder_on_unmounted_drive_stops(drive):
    mount, _ = drive
    with pytest.raises(TinyVocError, match="The output folder .* Drive is not mounted"):
        Outputs.at(mount / "MyDrive" / "out")
    assert not mount.exists()


def test_drive_that_does_not_mount_stops_on_colab(drive, on_colab):
    mount, _ = drive  # no TINYVOC_FAKE_DRIVE: the double refuses, as Colab does when access is not allowed
    with pytest.raises(ValueError, match="mount failed"):
        project.start("", install=False)
    assert not mount.exists()


def test_relative_project_dir_stops(drive, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TinyVocError, match="PROJECT_DIR 'tinyvoc' is a relative path"):
        project.start("tinyvoc", install=False)
    assert not (tmp_path / "tinyvoc").exists()


def test_colab_default_project_is_on_drive_and_mounts_it(drive, on_colab, monkeypatch):
    mount, fake = drive
    monkeypatch.setenv("TINYVOC_FAKE_DRIVE", str(fake))
    proj = project.start("", install=False)
    assert proj.root == mount / "MyDrive" / "tinyvoc" and proj.on_colab and colab.drive_mounted()
    assert proj.data_dir == REPO_ROOT / "data"  # the runtime's local disk, not Drive


def test_missing_data_on_colab_stops_and_writes_nothing(drive, on_colab, monkeypatch):
    mount, fake = drive
    monkeypatch.setenv("TINYVOC_FAKE_DRIVE", str(fake))
    proj = project.start("", install=False)
    before = files_under(fake)
    with pytest.raises(TinyVocError, match=r"Tiny VOC files not found in .*MyDrive/tinyvoc/data: put pascal_train"):
        project.dataset_files(proj, "auto", download=False)
    with pytest.raises(TinyVocError, match="Tiny VOC files not found"):
        project.dataset_files(proj, "tinyvoc", download=False)
    assert files_under(fake) == before


def test_missing_data_on_colab_offline_download_fails_fast(drive, on_colab, monkeypatch):
    mount, fake = drive
    monkeypatch.setenv("TINYVOC_FAKE_DRIVE", str(fake))
    monkeypatch.setattr(download, "DRIVE_HOST", ("127.0.0.1", 9))
    proj = project.start("", install=False)
    started = time.monotonic()
    with pytest.raises(TinyVocError, match=r"Cannot reach 127.0.0.1 .*Put the files there by hand: download pascal"):
        project.dataset_files(proj, "auto", download=True)
    assert time.monotonic() - started < 15
    assert files_under(fake) == [fake / "MyDrive"]


def test_auto_off_colab_uses_the_sample_and_says_so(tmp_path, capsys):
    proj = project.Project(tmp_path, tmp_path / "data", on_colab=False)
    files, source = project.dataset_files(proj, "auto")
    assert source == "sample" and files.train_json == tmp_path / "data" / "sample" / "pascal_train.json"
    assert "using the built-in sample dataset" in capsys.readouterr().out


def test_unknown_dataset_name_stops(tmp_path):
    with pytest.raises(TinyVocError, match="unknown DATASET 'voc'"):
        project.dataset_files(project.Project(tmp_path, tmp_path / "d", False), "voc")


# --- the data on the runtime's local disk --------------------------------------------------------


def test_data_is_unpacked_locally_once_and_checked(sample, tmp_path, capsys):
    stored, local = tmp_path / "drive-data", tmp_path / "local"
    put_on_drive(sample, stored)
    files = local_data.make_local(stored, local)
    assert files == DataFiles.in_folder(local) and not files.missing()
    assert len(list((local / "train_images").iterdir())) == len(list((sample / "train_images").iterdir()))
    assert len(list((local / "test_images").iterdir())) == len(list((sample / "test_images").iterdir()))
    assert "data ready on local disk" in capsys.readouterr().out
    started = time.perf_counter()
    local_data.make_local(stored, local)  # the same runtime, another notebook: nothing copied
    assert time.perf_counter() - started < 0.5 and "copying" not in capsys.readouterr().out


def test_incomplete_zip_stops_with_the_missing_image(sample, tmp_path):
    stored = tmp_path / "drive-data"
    put_on_drive(sample, stored)
    with zipfile.ZipFile(stored / "test_images.zip", "w") as zf:
        zf.write(next((sample / "test_images").iterdir()), "only_one.jpg")
    with pytest.raises(TinyVocError, match=r"test_images: \d+ of the \d+ images listed in test.json are missing"):
        local_data.make_local(stored, tmp_path / "local")
    assert not (tmp_path / "local" / local_data.MARKER).exists()


# --- the course files by Drive file id -----------------------------------------------------------


def course_files(shared: Path, folder: Path, n_train: int = download.TRAIN_IMAGES) -> dict[str, Path]:
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


def test_the_sample_record_regenerates_the_sample_in_a_new_runtime(tmp_path):
    proj = project.Project(tmp_path / "p", tmp_path / "rt1" / "data", on_colab=True)
    files, source = project.dataset_files(proj, "sample")
    prepare_dataset(files, proj.outputs, source, 0.2, 0)
    record = DatasetRecord.load(Outputs.at(tmp_path / "p" / "output", tmp_path / "rt2" / "data"))
    assert record.data_files == DataFiles.in_folder(tmp_path / "rt2" / "data" / "sample")
    assert not record.data_files.missing()


def test_the_training_config_compared_on_resume_has_no_runtime_path():
    from tinyvoc.profiles import build_config
    from tinyvoc.training import _config_signature

    one, two = build_config("smoke", 3, "/runtime-1/out/train"), build_config("smoke", 3, "/runtime-2/out/train")
    assert _config_signature(one) == _config_signature(two)
    assert "/runtime-" not in _config_signature(one)


# --- the notebooks -------------------------------------------------------------------------------


def notebook(name):
    return nbformat.read(NOTEBOOKS_DIR / name, as_version=4)


def test_every_notebook_starts_with_the_same_setup_cell_and_repo():
    for name in NOTEBOOKS:
        cells = [c for c in notebook(name).cells if c.cell_type == "code"]
        assert "parameters" in cells[0].metadata.get("tags", []), name
        params = cells[0].source
        assert f'REPO_URL = "{project.REPO_URL}"' in params and f'REPO_REF = "{project.REPO_REF}"' in params, name
        assert 'PROJECT_DIR = ""' in params and "OUTPUT_DIR" not in params and "DATA_DIR" not in params, name
        assert cells[1].source == project.BOOTSTRAP, f"{name}: first cell differs from tinyvoc.project.BOOTSTRAP"


def test_readme_badges_point_to_the_same_repo():
    owner_repo = re.fullmatch(r"https://github.com/(.+)\.git", project.REPO_URL).group(1)
    readme = (REPO_ROOT / "README.md").read_text()
    badges = re.findall(r"colab.research.google.com/github/([^/]+/[^/]+)/blob/([^/]+)/", readme)
    assert len(badges) == 5 and set(badges) == {(owner_repo, project.REPO_REF)}


def test_only_the_notebooks_that_use_it_ask_for_a_gpu():
    asks = {name: notebook(name).metadata.get("accelerator") == "GPU" for name in NOTEBOOKS}
    assert asks == {n: n[:2] in ("02", "03", "04") for n in NOTEBOOKS}
