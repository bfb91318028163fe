"""The garbage collector pause around bulk JSON work: off inside, back on after (errors too), nests, and the
cache read and the export really run without a collection."""

import gc
import json

import numpy as np
import pytest

from tinyvoc.core import gc_pause
from tinyvoc.core.gc_pause import paused_gc
from tinyvoc.core.rle import encode_mask
from tinyvoc.inference.cache_file import Predictions, read_cache, write_cache
from tinyvoc.inference.selection import Selection
from tinyvoc.submission.export import export_submission


def test_pause_nests_restores_and_respects_a_collector_already_off():
    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner pause does not turn it back on early
    assert gc.isenabled()
    with pytest.raises(ValueError), paused_gc():
        raise ValueError("boom")
    assert gc.isenabled()
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()  # the caller's choice stands
    finally:
        gc.enable()


def test_pauses_overlapping_in_two_threads_keep_it_off_until_the_last_ends():
    """The prediction outputs' writer threads: one ending its image must not turn the collector on under the other."""
    import threading

    entered, first_done, states = threading.Event(), threading.Event(), []

    def second():
        with paused_gc():
            entered.set()
            first_done.wait(5)
            states.append(gc.isenabled())  # the first pause has ended: still off, this one runs

    worker = threading.Thread(target=second)
    with paused_gc():
        worker.start()
        entered.wait(5)
    first_done.set()
    worker.join(5)
    assert states == [False] and gc.isenabled()


def test_cache_read_and_export_run_without_a_collection(tmp_path, monkeypatch):
    """Thousands of rows, the load at which CPython would otherwise collect many times."""
    images = [{"id": k, "file_name": f"{k}.jpg", "height": 40, "width": 50} for k in range(30)]
    test_json = {"images": images, "categories": [{"id": 1, "name": "thing"}]}
    rows = []
    for image in images:
        for k in range(100):
            mask = np.zeros((40, 50), np.uint8)
            mask[k % 30 : k % 30 + 8, k % 40 : k % 40 + 9] = 1
            rows.append(
                {"image_id": image["id"], "category_id": 1, "score": (k + 1) / 101, "bbox": [0, 0, 1, 1]}
                | {"segmentation": encode_mask(mask)}
            )
    path = tmp_path / "test-k.jsonl"
    write_cache(path, Predictions("test", rows, 0.0, key="k"))

    def collections_during_read_and_export() -> int:
        started = []
        gc.callbacks.append(lambda phase, info: started.append(info) if phase == "start" else None)
        try:
            cached = read_cache(path)
            report = export_submission(cached, test_json, tmp_path / "submission.json", Selection(0.0))
        finally:
            gc.callbacks.pop()
        assert report.ok and report.num_instances == 3000
        assert len(json.loads((tmp_path / "submission.json").read_text())) == 3000
        return len(started)

    paused = collections_during_read_and_export()
    monkeypatch.setattr(gc_pause, "PAUSE", False)
    running = collections_during_read_and_export()
    # with the pause, at most the young-generation pass when each pause ends; without it, dozens
    assert paused <= 3 < 20 <= running, (paused, running)
    assert gc.isenabled()
