"""Pretrained weights: fetched once, with a timeout; offline fails fast and clearly, leaving nothing behind."""

import time

import pytest

from tinyvoc.core.errors import TinyVocError
from tinyvoc.training import weights


def test_weights_download_offline_fails_fast(tmp_path):
    started = time.monotonic()
    with pytest.raises(TinyVocError, match="Could not download pretrained weights.*Offline, copy the file"):
        weights.fetch("http://127.0.0.1:9/X-101-32x8d.pkl", cache_dir=tmp_path, timeout=5)
    assert time.monotonic() - started < 30
    assert not list(tmp_path.iterdir()), "no partial file may be left behind"
    assert weights.url_for("detectron2://ImageNetPretrained/FAIR/X-101-32x8d.pkl") == (
        "https://dl.fbaipublicfiles.com/detectron2/ImageNetPretrained/FAIR/X-101-32x8d.pkl"
    )
    local = tmp_path / "w.pth"
    local.write_bytes(b"x")
    assert weights.fetch(str(local)) == str(local)
    with pytest.raises(TinyVocError, match="not found"):
        weights.fetch(str(tmp_path / "missing.pth"))
