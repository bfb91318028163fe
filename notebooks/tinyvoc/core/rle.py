"""Binary masks <-> the submission's compressed RLE (``{"size": [h, w], "counts": str}``), and checking the strings.

pycocotools does the run-length coding in C on a Fortran-ordered uint8 array; its ``counts`` are
bytes, which JSON cannot hold, so they are decoded to ASCII text here, in this one place.

:func:`rle_problems` tells whether ``counts`` strings decode to their size, for many strings at
once. ``pycocotools.mask.decode`` alone is not enough: it rejects run lengths that overrun the mask,
but when they fall short of ``height * width`` it returns a mask whose tail is uninitialised memory
instead of failing. The submission check and the prediction cache (which checks each mask once,
when written) both use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pycocotools import mask as mask_util

_CHUNK_CHARS = 1 << 16  # RLE characters parsed per numpy pass


def encode_mask(mask: np.ndarray) -> dict:
    """Encode one HxW boolean/0-1 mask as ``{"size": [h, w], "counts": str}``."""
    rle = mask_util.encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def to_pycocotools(rle: dict) -> dict:
    """A submission RLE (``counts`` as str or bytes) as pycocotools' C functions take it (bytes)."""
    counts = rle["counts"]
    return {"size": list(rle["size"]), "counts": counts.encode("ascii") if isinstance(counts, str) else counts}


def decode_mask(rle: dict) -> np.ndarray:
    """Decode a compressed RLE (``counts`` as str or bytes) to an HxW uint8 mask."""
    return mask_util.decode(to_pycocotools(rle))


def rle_problems(counts: list[str], sizes: list[tuple[int, int]]) -> list[str | None]:
    """Why each compressed RLE string would not decode to its size, or None.

    A string decodes correctly exactly when every character is in '0'..'o', the last number is
    complete, no run is negative and the runs add up to ``height * width``. The strings are parsed
    together in chunks of about ``_CHUNK_CHARS`` characters: one numpy pass per chunk instead of per
    entry, with arrays small enough to stay in cache rather than fresh memory for every step.
    """
    problems: list[str | None] = [None] * len(counts)
    parsable: list[tuple[int, bytes]] = []
    for j, text in enumerate(counts):
        try:
            raw = text.encode("ascii")
        except UnicodeEncodeError:
            problems[j] = "segmentation counts contains non-ASCII characters; it is not a pycocotools RLE string"
            continue
        if raw:
            parsable.append((j, raw))
        else:
            problems[j] = "segmentation counts is empty; pycocotools cannot decode it"
    for chunk in _chunks(parsable):
        bad_char, cut_off, malformed, total = _parse_rle_strings([raw for _, raw in chunk])
        for k, (j, _) in enumerate(chunk):
            height, width = sizes[j]
            if bad_char[k]:
                problems[j] = (
                    "segmentation counts has characters outside '0'..'o', so it is not a pycocotools "
                    "compressed RLE string and cannot be decoded"
                )
            elif cut_off[k]:
                problems[j] = "segmentation counts ends in the middle of a number (cut off?); it cannot be decoded"
            elif malformed[k]:
                problems[j] = "segmentation counts is not a valid compressed RLE string; pycocotools cannot decode it"
            elif total[k] != height * width:
                problems[j] = (
                    f"segmentation counts add up to {int(total[k])} pixels, but size [{height}, {width}] has "
                    f"{height * width}; it does not decode to a mask of that size"
                )
    return problems


def _chunks(items: list[tuple[int, bytes]]):
    """Consecutive runs of ``items`` holding about ``_CHUNK_CHARS`` characters each."""
    begin, chars = 0, 0
    for end, (_, raw) in enumerate(items, start=1):
        chars += len(raw)
        if chars >= _CHUNK_CHARS or end == len(items):
            yield items[begin:end]
            begin, chars = end, 0


def decode_masks(rles: Sequence[dict]) -> np.ndarray:
    """Decode compressed RLEs of one size (one image's masks) to pycocotools' ``H x W x N`` Fortran-ordered bool
    array, as ``mask_util.decode`` returns it, for strings known to decode (the cache's, checked when written).

    Why not ``mask_util.decode``: it writes the masks a byte at a time, holding the GIL, and 100 masks of a
    500 x 375 image are 19 MB; ``np.repeat`` of the run lengths writes each run at once, and the strings are
    parsed for all masks together (:func:`_parse_runs`): 2.8-3.7x faster on 100 such images
    (``benchmarks/bench_prediction_outputs.py``).
    """
    if not rles:
        raise ValueError("decode_masks needs at least one mask, to know the size")
    height, width = (int(v) for v in rles[0]["size"])
    raws = [c.encode("ascii") if isinstance(c, str) else c for c in (r["counts"] for r in rles)]
    parsed = _parse_runs(raws)
    wrong = parsed.bad_char | parsed.cut_off | parsed.malformed | (parsed.totals != height * width)
    if wrong.any() or any(tuple(r["size"]) != (height, width) for r in rles):
        raise ValueError(f"{int(wrong.sum()) or 'some'} of {len(rles)} masks do not decode to {height} x {width}")
    ones = (parsed.position % 2).astype(bool)  # runs alternate: zeros first, then ones, ...
    flat = np.repeat(ones, parsed.runs)
    return flat.reshape(len(rles), width, height).transpose(2, 1, 0)


@dataclass(frozen=True)
class _ParsedRuns:
    """Compressed RLE strings parsed together: per string its flags and the sum of its runs; per run its length
    and its position in its string."""

    bad_char: np.ndarray
    cut_off: np.ndarray
    malformed: np.ndarray
    totals: np.ndarray
    runs: np.ndarray
    position: np.ndarray


def _parse_rle_strings(raws: list[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per string: bad characters, cut off mid-number, otherwise undecodable, and the sum of its runs."""
    parsed = _parse_runs(raws)
    return parsed.bad_char, parsed.cut_off, parsed.malformed, parsed.totals


def _parse_runs(raws: list[bytes]) -> _ParsedRuns:
    """The run lengths of all ``raws`` at once, and per string whether it is broken.

    This mirrors pycocotools' ``rleFrString``: each run length is a little-endian base-32 number, 5 bits
    per character ``chr(48 + bits)``, with 0x20 meaning "more characters follow" and 0x10 on the last
    one a sign; from the fourth run on, the number is a difference to the run two before.

    Why numpy and not a plain loop over the characters, which would read like pycocotools' C: at the
    real load, 10,000 masks of the test images' sizes (about 590 characters each),
    ``benchmarks/bench_submission_check.py`` measured this at 0.70 s against 4.45 s for the loop
    (6.3x, 2 busy CPU cores), and every ``validate`` of a strong model's submission pays it. The
    export from the prediction cache skips it (``checked_rles``), so that path does not depend on it.
    """
    lengths = np.fromiter(map(len, raws), dtype=np.int64, count=len(raws))
    entry_first = np.cumsum(lengths) - lengths
    entry_last = entry_first + lengths - 1
    codes = np.frombuffer(b"".join(raws), dtype=np.uint8).astype(np.int64) - 48
    bad_char = np.add.reduceat(((codes < 0) | (codes > 63)).astype(np.int64), entry_first) > 0
    codes = np.clip(codes, 0, 63)
    is_last = (codes & 0x20) == 0
    cut_off = ~is_last[entry_last]
    is_last[entry_last] = True  # so no number runs across two strings, whatever they hold

    tok_end = np.flatnonzero(is_last)
    tok_start = np.concatenate(([0], tok_end[:-1] + 1))
    tok_len = tok_end - tok_start + 1
    tok_entry = np.repeat(np.arange(len(raws)), lengths)[tok_end]
    # 7 characters already hold 35 bits, more than any image's pixel count
    too_long = np.bincount(tok_entry, weights=tok_len > 7, minlength=len(raws)) > 0

    shift = 5 * np.minimum(np.arange(len(codes)) - np.repeat(tok_start, tok_len), 7)
    value = np.add.reduceat((codes & 0x1F) << shift, tok_start)
    negative_sign = (codes[tok_end] & 0x10) != 0
    value[negative_sign] -= np.int64(1) << (5 * np.minimum(tok_len[negative_sign], 8))
    value[(bad_char | too_long)[tok_entry]] = 0  # keeps the sums below small for strings already failed

    tok_count = np.bincount(tok_entry, minlength=len(raws))
    tok_first = np.cumsum(tok_count) - tok_count
    position = np.arange(len(tok_end)) - tok_first[tok_entry]
    # runs 1, 3, 5... are running sums of the odd-position numbers, runs 2, 4... of the even ones from 2, each
    # string's sums starting afresh; run 0 alone. Taken class by class in string order, no sort needed.
    runs = value.copy()
    for chain in ((position % 2 == 1), (position > 0) & (position % 2 == 0)):
        where = np.flatnonzero(chain)
        if where.size:
            running = np.cumsum(value[where])
            entry = tok_entry[where]
            first = np.flatnonzero(np.concatenate(([True], entry[1:] != entry[:-1])))
            before = np.concatenate(([0], running))[first]  # the sum of the earlier strings' numbers
            runs[where] = running - np.repeat(before, np.diff(np.append(first, where.size)))
    malformed = too_long | (np.minimum.reduceat(runs, tok_first) < 0)
    return _ParsedRuns(bad_char, cut_off, malformed, np.add.reduceat(runs, tok_first), runs, position)
