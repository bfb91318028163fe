"""Which data notebook 01 registers: the project's files, downloaded on Colab when missing, or the sample."""

import time

import pytest

from tinyvoc.core.errors import TinyVocError
from tinyvoc.core.paths import DataFiles, Outputs
from tinyvoc.dataset import download
from tinyvoc.dataset.record import DatasetRecord, prepare_dataset
from tinyvoc.dataset.sources import dataset_files
from tinyvoc.runtime import project


def files_under(path):
    return sorted(path.rglob("*")) if path.exists() else []


def test_missing_data_on_colab_stops_and_writes_nothing(drive, on_colab, monkeypatch):
    mount, fake = drive
    monkeypatch.setenv("TINYVOC_FAKE_DRIVE", str(fake))
    proj = project.start("", install=False)
    before = files_under(fake)
    with pytest.raises(TinyVocError, match=r"Tiny VOC files not found in .*MyDrive/tinyvoc/data: put pascal_train"):
        dataset_files(proj, "auto", download=False)
    with pytest.raises(TinyVocError, match="Tiny VOC files not found"):
        dataset_files(proj, "tinyvoc", download=False)
    assert files_under(fake) == before


def test_missing_data_on_colab_offline_download_fails_fast(drive, on_colab, monkeypatch):
    mount, fake = drive
    monkeypatch.setenv("TINYVOC_FAKE_DRIVE", str(fake))
    monkeypatch.setattr(download, "DRIVE_HOST", ("127.0.0.1", 9))
    proj = project.start("", install=False)
    started = time.monotonic()
    with pytest.raises(TinyVocError, match=r"Cannot reach 127.0.0.1 .*Put the files there by hand: download pascal"):
        dataset_files(proj, "auto", download=True)
    assert time.monotonic() - started < 15
    assert files_under(fake) == [fake / "MyDrive"]


def test_auto_off_colab_uses_the_sample_and_says_so(tmp_path, capsys):
    proj = project.Project(tmp_path, tmp_path / "data", on_colab=False)
    files, source = dataset_files(proj, "auto")
    assert source == "sample" and files.train_json == tmp_path / "data" / "sample" / "pascal_train.json"
    assert "using the built-in sample dataset" in capsys.readouterr().out


def test_unknown_dataset_name_stops(tmp_path):
    with pytest.raises(TinyVocError, match="unknown DATASET 'voc'"):
        dataset_files(project.Project(tmp_path, tmp_path / "d", False), "voc")


def test_the_sample_record_regenerates_the_sample_in_a_new_runtime(tmp_path):
    proj = project.Project(tmp_path / "p", tmp_path / "rt1" / "data", on_colab=True)
    files, source = dataset_files(proj, "sample")
    prepare_dataset(files, proj.outputs, source, 0.2, 0)
    record = DatasetRecord.load(Outputs.at(tmp_path / "p" / "output", tmp_path / "rt2" / "data"))
    assert record.data_files == DataFiles.in_folder(tmp_path / "rt2" / "data" / "sample")
    assert not record.data_files.missing()
