"""``Predictions``: one split's cached detections, and the cache file they live in.

Every detection (class as the dataset's category id, score, box, mask as compressed RLE, and the
mask head's 28 x 28 probabilities as 8-bit levels: ``mask_probs``) of one prediction run is kept, down
to a low score floor, so notebooks 03 and 04 and every re-export at a new threshold read them instead
of running the model. A cache written before ``mask_probs`` existed has none and is read as it is (its
fusion falls back to the binary vote, and says so).

The cache file is two text lines, a header and the list of detections, and a third when the detections
carry their probabilities: all of them, one 28 x 28 uint8 array per detection in the detections' order,
compressed together (xz) and base64. One stream for the split, not one per detection: the arrays of
one model look alike, and a stream per detection paid its own header and code tables every 784 bytes
and base64 on top (+30% on a 10,000-detection cache, against +17% now; ``benchmarks/bench_fusion.py``).
In memory each detection keeps its own ``mask_probs`` string (:func:`encode_mask_probs`), so rows stay
plain JSON that compare by value and can be filtered or copied without losing their probabilities.

Every mask string is checked once, when the file is written (``core.rle.rle_problems``), and the
header holds the sha256 of the detections line (and of the probabilities line); a cache whose bytes
still match was checked, so the export need not parse its 10,000 RLE strings again
(:attr:`Predictions.checked_rles`). A damaged cache, or one of another format, reads as None and is
predicted again. Caches written before the probabilities had their own line (each detection's
``mask_probs`` compressed on its own in the detections line) read as they are.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import lzma
import zlib
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.atomic import write_bytes
from ..core.errors import TinyVocError
from ..core.gc_pause import paused_gc
from ..core.rle import rle_problems
from .trained_run import SplitImages

CACHE_FORMAT = 2  # 1: one JSON document, no checksum. Part of the prediction caches' key, so it stays 2 with the
# probabilities' line: older caches keep their names and are read; a reader before the line sees a changed checksum
# and predicts again


@dataclass(frozen=True)
class Predictions:
    """Detections of one split at ``score_floor`` and up, with what made them and, for val, the ground truth.

    ``checked_rles`` is built from immutable strings when the detections are written or read, so
    editing ``detections`` afterwards cannot smuggle an unchecked mask past the export's check: a
    changed string is simply not in the set.
    """

    split: str
    detections: list[dict]
    score_floor: float
    image_ids: list[int] = field(default_factory=list)
    key: str = ""
    checkpoint: str = ""
    tta: bool = False
    seconds: float | None = None
    gt_json: str | None = None  # the val split's json relative to the output folder, as stored in the header
    images: SplitImages | None = field(default=None, repr=False, compare=False)  # this runtime's split, when known
    fusion: dict | None = None  # fused predictions (``fusion.py``): the members and the fusion's settings
    checked_rles: frozenset = field(default=frozenset(), repr=False, compare=False)

    @property
    def ground_truth(self):
        """The split's pycocotools COCO index (val only)."""
        if self.split != "val":
            raise TinyVocError("these predictions have no ground truth (test split); evaluate the val split")
        if self.images is None:
            raise TinyVocError(
                "these val predictions were read without their split; use cached_predictions.predict_split(run, 'val')"
            )
        return self.images.ground_truth

    def header(self) -> dict:
        """What the cache file's first line holds besides the format, count and checksum."""
        return {
            "key": self.key,
            "split": self.split,
            "checkpoint": self.checkpoint,
            "tta": self.tta,
            "score_floor": self.score_floor,
            "gt_json": self.gt_json,
            "image_ids": self.image_ids,
            "seconds": self.seconds,
            **({"fusion": self.fusion} if self.fusion else {}),
        }


MASK_PROBS_SIZE = 28  # detectron2's mask head: POOLER_RESOLUTION 14, upsampled twice
# xz preset 6 with the hash-chain match finder: the arrays compress as small as with the default binary tree
# (94 bytes a detection on the benchmark's 10,000) in under half the time (2 s instead of 4.6 s on this CPU)
_XZ_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 6, "mf": lzma.MF_HC4, "nice_len": 32}]


def encode_mask_probs(probs) -> str:
    """The mask head's probabilities (M x M floats in 0..1) as a detection row carries them in memory: 8-bit
    levels in a zlib container, stored (not compressed: the cache file compresses a split's together), base64.

    A zlib container so that :func:`decode_mask_probs` reads these and the per-detection strings of older caches
    (compressed, the same container) alike; stored, because compressing 784 bytes costs some 30 us against 2 for
    storing them, and a read of a 10,000-detection cache makes them all again."""
    return _row_text(_levels(probs))


def decode_mask_probs(text: str) -> np.ndarray:
    """:func:`encode_mask_probs`'s string (or an older cache's) back as M x M floats in 0..1."""
    return mask_probs_levels(text).astype(np.float32) / 255.0


def mask_probs_levels(text: str) -> np.ndarray:
    """:func:`encode_mask_probs`'s string (or an older cache's) as the M x M uint8 levels (0..255) it keeps."""
    levels = np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype=np.uint8)
    side = int(round(len(levels) ** 0.5))
    return levels.reshape(side, side)


def _levels(probs) -> np.ndarray:
    return np.clip(np.rint(np.asarray(probs, dtype=np.float32) * 255), 0, 255).astype(np.uint8)


def _row_text(levels: np.ndarray) -> str:
    return base64.b64encode(zlib.compress(np.ascontiguousarray(levels).tobytes(), 0)).decode("ascii")


def _probs_line(detections: list[dict]) -> tuple[bytes, dict, np.ndarray] | None:
    """All detections' probabilities as one line (uint8 [N, M, M], xz, base64), the header's record of it and the
    array; None when some detection has none or their sizes differ (they then stay in the detections line, one by
    one, as older caches kept them)."""
    if not detections or not all("mask_probs" in d for d in detections):
        return None
    levels = [mask_probs_levels(d["mask_probs"]) for d in detections]
    if len({a.shape for a in levels}) > 1:
        return None
    stacked = np.stack(levels)
    line = base64.b64encode(lzma.compress(stacked.tobytes(), format=lzma.FORMAT_XZ, filters=_XZ_FILTERS))
    record = {"shape": list(stacked.shape), "encoding": "uint8, xz, base64", "sha256": hashlib.sha256(line).hexdigest()}
    return line, record, stacked


def _read_probs_line(line: bytes, record) -> np.ndarray | None:
    """:func:`_probs_line`'s line back as uint8 [N, M, M], or None when it is not what the header says."""
    if not isinstance(record, dict) or hashlib.sha256(line).hexdigest() != record.get("sha256"):
        return None
    shape = record.get("shape")
    try:
        raw = lzma.decompress(base64.b64decode(line, validate=True), format=lzma.FORMAT_XZ)
        return np.frombuffer(raw, dtype=np.uint8).reshape(shape)
    except (lzma.LZMAError, binascii.Error, ValueError, TypeError):
        return None


def write_cache(path: Path, predictions: Predictions, checked_rles: Collection = ()) -> Predictions:
    """Check every mask string once, write header and detections (and their probabilities) atomically, return what a
    read returns.

    ``checked_rles`` holds ``(height, width, counts)`` triples some cache already checked (a fusion
    reuses its members' masks); only the other strings are parsed.
    """
    detections = predictions.detections
    with paused_gc():
        counts, sizes = _rle_columns(detections)
        new = [(c, s) for c, s in zip(counts, sizes) if (s[0], s[1], c) not in checked_rles]
        bad = [p for p in rle_problems([c for c, _ in new], [s for _, s in new]) if p]
        if bad:  # masks come from pycocotools' encoder, so this is a bug, not a user error
            raise TinyVocError(f"{len(bad)} of {len(detections)} encoded masks fail the submission check: {bad[0]}")
        probs = _probs_line(detections)
        rows = [{k: v for k, v in d.items() if k != "mask_probs"} for d in detections] if probs else detections
        body = json.dumps(rows).encode()
        checksum = hashlib.sha256(body).hexdigest()
        header = {"format": CACHE_FORMAT, **predictions.header(), "num_detections": len(detections)}
        header["detections_sha256"] = checksum
        if probs:
            header["mask_probs"] = probs[1]
        write_bytes(path, json.dumps(header).encode() + b"\n" + body + (b"\n" + probs[0] if probs else b""))
        return _predictions(header, json.loads(body), predictions.images, probs[2] if probs else None)


def read_cache(path: Path, images: SplitImages | None = None) -> Predictions | None:
    """The cached predictions, or None when the file is of another format or its detections changed."""
    head, _, rest = Path(path).read_bytes().partition(b"\n")
    body, _, probs = rest.partition(b"\n")
    try:
        header = json.loads(head)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(header, dict) or header.get("format") != CACHE_FORMAT:
        return None
    if hashlib.sha256(body).hexdigest() != header.get("detections_sha256"):
        return None
    levels = None
    if probs or "mask_probs" in header:  # a line without its record, or the reverse: not what was written
        levels = _read_probs_line(probs, header.get("mask_probs"))
        if levels is None:
            return None
    with paused_gc():
        detections = json.loads(body)
        if levels is not None and len(levels) != len(detections):
            return None
        return _predictions(header, detections, images, levels)


def reuse_cache(path: Path | None, images: SplitImages | None, refresh: bool, what: str) -> Predictions | None:
    """The cache at ``path`` when it exists, is intact and ``refresh`` is off (said in one line), else None; a
    damaged one is said too, and left for the caller to write again. ``what``: the cache's kind in those lines."""
    if path is None or refresh or not Path(path).exists():
        return None
    cached = read_cache(path, images)
    if cached is not None:
        print(f"Using cached {what} {Path(path).name} ({len(cached.detections)} detections)")
    else:
        print(f"{Path(path).name} is damaged or of another format; computing the {what} again")
    return cached


def _rle_columns(detections: list[dict]) -> tuple[list[str], list[tuple[int, int]]]:
    segs = [d["segmentation"] for d in detections]
    return [s["counts"] for s in segs], [(s["size"][0], s["size"][1]) for s in segs]


def _predictions(
    header: dict, detections: list[dict], images: SplitImages | None, levels: np.ndarray | None = None
) -> Predictions:
    if levels is not None:
        for row, level in zip(detections, levels, strict=True):
            row["mask_probs"] = _row_text(level)
    counts, sizes = _rle_columns(detections)
    checked = frozenset((h, w, c) for c, (h, w) in zip(counts, sizes))
    fields = {k: header.get(k) for k in ("key", "checkpoint", "seconds", "gt_json", "fusion")}
    return Predictions(
        split=header["split"],
        detections=detections,
        score_floor=header["score_floor"],
        image_ids=list(header.get("image_ids") or []),
        tta=bool(header.get("tta")),
        images=images,
        checked_rles=checked,
        **{k: v for k, v in fields.items() if v is not None},
    )
