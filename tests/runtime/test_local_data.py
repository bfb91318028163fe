"""The data on the runtime's local disk: unpacked once per runtime from the project folder, then checked."""

import time
import zipfile

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
