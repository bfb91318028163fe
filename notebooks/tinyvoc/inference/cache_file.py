"""``Predictions``: one split's cached detections, and the cache file they live in.

Every detection (class as the dataset's category id, score, box, mask as compressed RLE, and the
mask head's 28 x 28 probabilities as 8-bit, zlib, base64: ``mask_probs``) of one prediction run is
kept, down to a low score floor, so notebooks 03 and 04 and every re-export at a new threshold read
them instead of running the model. A cache written before ``mask_probs`` existed has none and is read
as it is (its fusion falls back to the binary vote, and says so).

The cache file is two JSON lines: a header, then the list of detections. Every mask string is
checked once, when the file is written (``core.rle.rle_problems``), and the header holds the sha256
of the detections line; a cache whose bytes still match was checked, so the export need not parse
its 10,000 RLE strings again (:attr:`Predictions.checked_rles`). A damaged cache, or one of another
format, reads as None and is predicted again.
"""

from __future__ import annotations

import base64
import hashlib
import json
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

CACHE_FORMAT = 2  # 1: one JSON document, no checksum


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


def encode_mask_probs(probs) -> str:
    """The mask head's probabilities (M x M floats in 0..1) as the cache keeps them: 8-bit, zlib, base64."""
    levels = np.clip(np.rint(np.asarray(probs, dtype=np.float32) * 255), 0, 255).astype(np.uint8)
    return base64.b64encode(zlib.compress(levels.tobytes(), 9)).decode("ascii")


def decode_mask_probs(text: str) -> np.ndarray:
    """:func:`encode_mask_probs`'s string back as M x M floats in 0..1."""
    levels = np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype=np.uint8)
    side = int(round(len(levels) ** 0.5))
    return levels.reshape(side, side).astype(np.float32) / 255.0


def write_cache(path: Path, predictions: Predictions, checked_rles: Collection = ()) -> Predictions:
    """Check every mask string once, write header and detections atomically, return what a read returns.

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
        body = json.dumps(detections).encode()
        checksum = hashlib.sha256(body).hexdigest()
        header = {"format": CACHE_FORMAT, **predictions.header(), "num_detections": len(detections)}
        header["detections_sha256"] = checksum
        write_bytes(path, json.dumps(header).encode() + b"\n" + body)
        return _predictions(header, json.loads(body), predictions.images)


def read_cache(path: Path, images: SplitImages | None = None) -> Predictions | None:
    """The cached predictions, or None when the file is of another format or its detections changed."""
    head, _, body = Path(path).read_bytes().partition(b"\n")
    try:
        header = json.loads(head)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(header, dict) or header.get("format") != CACHE_FORMAT:
        return None
    if hashlib.sha256(body).hexdigest() != header.get("detections_sha256"):
        return None
    with paused_gc():
        return _predictions(header, json.loads(body), images)


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


def _predictions(header: dict, detections: list[dict], images: SplitImages | None) -> Predictions:
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
