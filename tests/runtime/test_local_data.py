"""The data on the runtime's local disk: unpacked once per runtime from the project folder, then checked."""

import shutil
import time
import zipfile
from pathlib import Path

import pytest

from tinyvoc.core.errors import TinyVocError
from tinyvoc.core.paths import DataFiles
from tinyvoc.runtime import local_data


def test_data_is_unpacked_locally_once_and_checked(sample, put_on_drive, tmp_path, capsys):
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


def test_incomplete_zip_stops_with_the_missing_image(sample, put_on_drive, tmp_path):
    stored = tmp_path / "drive-data"
    put_on_drive(sample, stored)
    with zipfile.ZipFile(stored / "test_images.zip", "w") as zf:
        zf.write(next((sample / "test_images").iterdir()), "only_one.jpg")
    with pytest.raises(TinyVocError, match=r"test_images: \d+ of the \d+ images listed in test.json are missing"):
        local_data.make_local(stored, tmp_path / "local")
    assert not (tmp_path / "local" / local_data.MARKER).exists()


def test_one_staging_routine_copies_or_links_folders_and_keeps_what_its_marker_says(sample, tmp_path, capsys):
    """``stage`` serves both callers: Colab's local copy (folders copied) and Kaggle's inputs (folders linked)."""
    sources = {name: sample / name for name in ("pascal_train.json", "train_images", "test_images")}
    sources["test.json"] = Path(shutil.copy2(sample / "test.json", tmp_path / "test.json"))  # this test changes it
    copied = local_data.stage(sources, tmp_path / "copied", where=" on local disk")
    assert copied == DataFiles.in_folder(tmp_path / "copied") and not copied.missing()
    first = next((tmp_path / "copied" / "train_images").iterdir())
    assert not first.is_symlink() and "data ready on local disk" in capsys.readouterr().out
    source_time = sources["test.json"].stat().st_mtime_ns
    assert (tmp_path / "copied" / "test.json").stat().st_mtime_ns == source_time  # copy_file keeps the time

    linked = local_data.stage(sources, tmp_path / "linked", marker=".other-marker.json", link_folders=True)
    assert linked == DataFiles.in_folder(tmp_path / "linked") and not linked.missing()
    entry = next((tmp_path / "linked" / "train_images").iterdir())
    assert entry.is_symlink() and entry.resolve() == sample / "train_images" / entry.name  # read in place
    assert not (tmp_path / "linked" / "train_images").is_symlink()
    assert (
        "train_images (read in place)" in capsys.readouterr().out
        and (tmp_path / "linked" / ".other-marker.json").is_file()
    )

    (tmp_path / "linked" / "test_images" / "stray").write_text("x")
    local_data.stage(sources, tmp_path / "linked", marker=".other-marker.json", link_folders=True)  # unchanged
    assert (tmp_path / "linked" / "test_images" / "stray").exists() and capsys.readouterr().out == ""
    sources["test.json"].touch()  # a source changed: staged again
    local_data.stage(sources, tmp_path / "linked", marker=".other-marker.json", link_folders=True)
    assert not (tmp_path / "linked" / "test_images" / "stray").exists()
