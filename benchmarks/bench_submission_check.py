"""The submission check at the real load: a 10,000-instance file, and the two ways to parse RLE strings.

Decides, by measurement, whether the submission check (``core.rle.rle_problems``) keeps its vectorised
numpy parse of the RLE ``counts`` strings or a plain Python loop that mirrors pycocotools' ``rleFrString`` line by line.
Both must agree on every string. Then the whole check of the written file, as the ``validate``
verb runs it on any file, and as the export runs it with the cache's already-checked masks.

    .venv/bin/python benchmarks/bench_submission_check.py
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from _common import median_seconds, real_files, strong_model_detections

from tinyvoc.core.rle import rle_problems
from tinyvoc.inference.selection import Selection
from tinyvoc.submission.check import SUBMISSION_KEYS, validate_submission


def plain_loop_total(text: str) -> int | None:
    """pycocotools' string decoder as a Python loop: the sum of the runs, or None if undecodable."""
    runs: list[int] = []
    value = shift = 0
    for char in text:
        code = ord(char) - 48
        if not 0 <= code < 64:
            return None
        value |= (code & 0x1F) << shift
        shift += 5
        if code & 0x20:  # more characters of this number follow
            continue
        if code & 0x10:  # sign bit on the last character
            value -= 1 << shift
        if shift > 35 or (len(runs) > 2 and value + runs[-2] < 0) or (len(runs) <= 2 and value < 0):
            return None
        runs.append(value + runs[-2] if len(runs) > 2 else value)
        value = shift = 0
    return None if shift or not text else sum(runs)


def main() -> None:
    files = real_files()
    test = json.loads(files.test_json.read_text())
    detections = strong_model_detections(test["images"], [c["id"] for c in test["categories"]])
    rows = Selection(0.0).apply(detections, keys=SUBMISSION_KEYS)
    counts = [r["segmentation"]["counts"] for r in rows]
    sizes = [tuple(r["segmentation"]["size"]) for r in rows]
    assert len(rows) == 10_000

    vectorised = median_seconds(lambda: rle_problems(counts, sizes))
    loop = median_seconds(lambda: [plain_loop_total(c) for c in counts], repeats=3)
    assert all(p is None for p in rle_problems(counts, sizes))
    assert [plain_loop_total(c) for c in counts] == [h * w for h, w in sizes]
    print(f"{len(rows)} RLE strings of the 100 test images' sizes, {sum(map(len, counts)) / len(rows):.0f} chars each")
    print(f"numpy parse (core.rle):    {vectorised:7.3f} s")
    print(f"plain loop (pycocotools' decoder): {loop:7.3f} s")
    print(f"ratio: {loop / vectorised:.1f}x")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "submission.json"
        path.write_text(json.dumps(rows))
        checked = {(h, w, c) for c, (h, w) in zip(counts, sizes)}
        full = median_seconds(lambda: validate_submission(path, files.test_json))
        trusted = median_seconds(lambda: validate_submission(path, files.test_json, checked))
        report = validate_submission(path, files.test_json, checked)
        assert report.ok and report.num_instances == validate_submission(path, files.test_json).num_instances == 10_000
    print(f"check of the written {report.num_instances}-instance file, every string parsed: {full:7.3f} s")
    print(f"the same with the cache's checked masks (export):       {trusted:7.3f} s")


if __name__ == "__main__":
    main()
