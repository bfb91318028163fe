"""The prediction cache: reused when nothing changed, never served stale, same as fresh inference."""

import os
import shutil

import numpy as np

from tinyvoc.inference import cache_file, cached_predictions
from tinyvoc.inference.cache_file import Predictions
from tinyvoc.inference.selection import Selection
from tinyvoc.inference.trained_run import TrainedRun
from tinyvoc.submission import export


def test_second_call_is_served_from_the_cache_and_equals_fresh_inference(trained_sample, capsys, tmp_path):
    run = TrainedRun.load(trained_sample, "final")
    first = cached_predictions.predict_split(run, "test", refresh=True)  # other tests may have filled it
    assert "Using cached" not in capsys.readouterr().out
    again = cached_predictions.predict_split(run, "test")
    assert "Using cached" in capsys.readouterr().out
    assert again == first
    fresh = cached_predictions.predict_split(run, "test", refresh=True)
    assert fresh.detections == first.detections
    test_json = run.record.data_files.test_json
    export.export_submission(first, test_json, tmp_path / "a.json", Selection(0.05))
    export.export_submission(fresh, test_json, tmp_path / "b.json", Selection(0.05))
    assert (tmp_path / "a.json").read_text() == (tmp_path / "b.json").read_text()
    assert len(list(run.predictions_dir.glob("test-*.jsonl"))) == 1


def test_changed_setting_or_checkpoint_invalidates_the_cache(trained_sample, capsys, tmp_path):
    run = TrainedRun.load(trained_sample, "final")
    base = cached_predictions.predict_split(run, "test")
    capsys.readouterr()
    floor = cached_predictions.predict_split(run, "test", score_floor=0.2)
    assert floor.key != base.key and "Using cached" not in capsys.readouterr().out
    assert all(d["score"] >= 0.2 for d in floor.detections)

    other = tmp_path / "other.pth"
    shutil.copy(run.files.final, other)
    moved = cached_predictions.predict_split(TrainedRun.load(trained_sample, str(other)), "test")
    assert moved.key != base.key and "Using cached" not in capsys.readouterr().out

    items = run.split("test").items
    ckpt = other  # a copy: retraining the shared model in place would make every later test predict again
    key = cached_predictions.cache_key(ckpt, "cfg", items, False, 0.01)
    assert cached_predictions.cache_key(ckpt, "cfg", items, True, 0.01) != key  # TTA
    assert cached_predictions.cache_key(ckpt, "cfg2", items, False, 0.01) != key  # config
    assert cached_predictions.cache_key(ckpt, "cfg", items[:-1], False, 0.01) != key  # image list
    stat = ckpt.stat()
    os.utime(ckpt, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # retrained in place
    assert cached_predictions.cache_key(ckpt, "cfg", items, False, 0.01) != key


def test_detections_use_dataset_ids_and_json_sizes(trained_sample):
    run = TrainedRun.load(trained_sample, "final")
    cached = cached_predictions.predict_split(run, "test")
    sizes = {it.image_id: [it.height, it.width] for it in run.split("test").items}
    assert cached.detections, "a trained smoke model finds shapes on the sample"
    assert {d["category_id"] for d in cached.detections} <= {2, 5, 9}
    assert all(d["segmentation"]["size"] == sizes[d["image_id"]] for d in cached.detections)


def _rows(n=3):
    import numpy as np

    from tinyvoc.core.rle import encode_mask

    rows = []
    for k in range(n):
        mask = np.zeros((20, 30), np.uint8)
        mask[k : k + 5, 2 * k : 2 * k + 7] = 1
        rows.append({"image_id": 7, "category_id": 2, "score": 0.5 - k / 10, "bbox": [0, 0, 1, 1]})
        rows[-1]["segmentation"] = encode_mask(mask)
    return rows


def test_cache_file_round_trip_and_damage(tmp_path):
    """Written and read back equal; a changed byte, another format or a bad mask is never served."""
    import json

    import pytest

    from tinyvoc.core.errors import TinyVocError

    path = tmp_path / "test-abc.jsonl"
    written = cache_file.write_cache(path, Predictions("test", _rows(), 0.01, key="abc"))
    read = cache_file.read_cache(path)
    assert read == written and read.detections == _rows() and read.key == "abc"
    assert read.checked_rles == {(20, 30, d["segmentation"]["counts"]) for d in _rows()}
    assert not any(str(tmp_path) in line for line in path.read_text().splitlines()[:1])  # no absolute paths added

    head, body = path.read_bytes().split(b"\n", 1)
    path.write_bytes(head + b"\n" + body.replace(b'"score": 0.5', b'"score": 0.9'))
    assert cache_file.read_cache(path) is None  # still valid JSON, but not what was checked
    old = json.loads(head)
    old["format"] = 1
    path.write_bytes(json.dumps(old).encode() + b"\n" + body)
    assert cache_file.read_cache(path) is None
    path.write_text(json.dumps({"detections": []}))  # a format-1 cache: one JSON document
    assert cache_file.read_cache(path) is None

    bad = _rows()
    bad[1]["segmentation"]["counts"] = "l57"
    with pytest.raises(TinyVocError, match="1 of 3 encoded masks fail the submission check"):
        cache_file.write_cache(tmp_path / "test-bad.jsonl", Predictions("test", bad, 0.01, key="abc"))
    assert not (tmp_path / "test-bad.jsonl").exists()


def test_own_data_caches_are_keyed_to_the_dataset_and_course_caches_keep_their_names(trained_sample, monkeypatch):
    from dataclasses import replace

    run = TrainedRun.load(trained_sample, "final")
    course = cached_predictions.cache_slot(run, "test")
    items = run.split("test").items
    assert course.key == cached_predictions.cache_key(
        run.checkpoint, course.cfg.dump(), items, run.tta, run.score_floor
    )
    own = replace(run, record=replace(run.record, source="my-photos", name="my-photos"))
    relabelled = replace(own, record=replace(own.record, fingerprint="0" * 12))  # same images, other classes
    keys = {cached_predictions.cache_slot(r, "test").key for r in (run, own, relabelled)}
    assert len(keys) == 3

    made = cached_predictions.predict_split(run, "test")
    os.replace(course.path, course.older_name)  # as a version before per-checkpoint names wrote it
    monkeypatch.setattr(cached_predictions, "_run_model", lambda *a, **k: (_ for _ in ()).throw(AssertionError("ran")))
    assert cached_predictions.predict_split(run, "test").detections == made.detections  # read, not predicted
    assert course.path.is_file() and not course.older_name.exists()


def test_the_cache_keeps_the_mask_heads_probabilities_and_pasting_them_gives_the_mask(trained_sample):
    """Each detection's 28 x 28 probabilities, pasted over its box as fusion pastes them and cut at 0.5, give the
    mask detectron2 pasted: the soft vote of a run with itself is the run."""
    from pycocotools import mask as mask_util

    from tinyvoc.core.rle import decode_mask, to_pycocotools
    from tinyvoc.inference import fusion
    from tinyvoc.inference.cache_file import decode_mask_probs

    run = TrainedRun.load(trained_sample, "final")
    predictions = cached_predictions.predict_split(run, "val", refresh=True)
    assert predictions.detections and all("mask_probs" in d for d in predictions.detections)
    ious, differ, pixels = [], 0, 0
    for row in predictions.detections:
        height, width = row["segmentation"]["size"]
        top, left, patch = fusion._paste(decode_mask_probs(row["mask_probs"]), row["bbox"], height, width)
        ours = np.zeros((height, width), np.uint8, order="F")
        ours[top : top + patch.shape[0], left : left + patch.shape[1]] = patch >= 0.5
        theirs = decode_mask(row["segmentation"]).astype(bool)
        union = np.logical_or(ours, theirs).sum()
        ious.append(np.logical_and(ours, theirs).sum() / union if union else 1.0)
        differ, pixels = differ + np.logical_xor(ours, theirs).sum(), pixels + theirs.sum()
    # 8 bits round a probability near 0.5 either way: a tiny mask may lose its one pixel, never much more
    assert np.mean(ious) > 0.98 and differ <= 0.02 * pixels, (np.mean(ious), differ, pixels)
    assert mask_util.area(to_pycocotools(predictions.detections[0]["segmentation"])) > 0


def test_the_mask_probabilities_have_their_own_line_read_back_bit_exact_and_checked(tmp_path):
    """All detections' probabilities go to one compressed line after the detections, read back to the same 8-bit
    levels (the same strings in the rows); a changed or missing line is never served; rows of which only some have
    probabilities keep them in the detections line, as caches before the line kept them all."""
    import json

    from tinyvoc.inference.cache_file import encode_mask_probs, mask_probs_levels

    rng = np.random.default_rng(3)
    rows = [row | {"mask_probs": encode_mask_probs(rng.random((28, 28)))} for row in _rows(4)]
    path = tmp_path / "test-abc.jsonl"
    written = cache_file.write_cache(path, Predictions("test", rows, 0.01, key="abc"))
    lines = path.read_bytes().split(b"\n")
    header = json.loads(lines[0])
    assert len(lines) == 3 and b"mask_probs" not in lines[1] and header["mask_probs"]["shape"] == [4, 28, 28]
    read = cache_file.read_cache(path)
    assert read == written and read.detections == rows
    for mine, theirs in zip(read.detections, rows):
        assert np.array_equal(mask_probs_levels(mine["mask_probs"]), mask_probs_levels(theirs["mask_probs"]))

    probs = lines[2]
    for damaged in (lines[:2], [*lines[:2], probs[:-8] + b"AAAAAAAA"]):
        path.write_bytes(b"\n".join(damaged))
        assert cache_file.read_cache(path) is None
    del header["mask_probs"]
    path.write_bytes(b"\n".join([json.dumps(header).encode(), lines[1], probs]))  # a line the header does not know
    assert cache_file.read_cache(path) is None

    some = rows[:2] + _rows(4)[2:]
    cache_file.write_cache(path, Predictions("test", some, 0.01, key="abc"))
    assert len(path.read_bytes().split(b"\n")) == 2 and cache_file.read_cache(path).detections == some
