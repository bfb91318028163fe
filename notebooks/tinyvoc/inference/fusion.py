"""Fuse several runs' cached predictions of one split into one set of detections, with no model run.

Two or three models trained on different recipes or seeds miss and hallucinate different things, and
averaging them is the oldest way to a better leaderboard score. Box fusion (weighted boxes fusion,
``ensemble_boxes``) and TTA mask averaging inside one model exist; fusing whole runs' instance masks by
score does not, so it is done here, from the prediction caches (``cache_file.Predictions``), in seconds.

The rule, image by image and class by class (masks of different images or classes never merge):

- **Grouping.** All members' detections of one image and class are taken best score first (ties: the
  member's place in the canonical order, then the detection's place in its member). Each joins the
  group whose first (best-scored) detection its mask overlaps most, at mask IoU >= ``iou_threshold``,
  among the groups that hold nothing yet from its own member; else it starts a group. So a group has at
  most one detection per member, and a member's own duplicates stay separate, as that member made them.
  Identical masks have IoU 1, two empty ones too (pycocotools would say 0).
- **Score.** The mean of the members' scores over ALL members, a member that did not find the object
  counting 0: what every member agrees on keeps its score, what only some found is lowered (found by one
  of two at 0.8: 0.4). A run fused with itself keeps its scores exactly. With per-run weights
  (``FUSION_WEIGHTS``, as WBF's ``weights``) it is the weighted mean, and each member's vote below is
  its weight times its score.
- **Mask.** Mask voting (MNC, FCIS; Kaggle's instance-segmentation ensembles): where every member's cache
  keeps its mask head's probabilities (28 x 28, ``mask_probs``), each member's map is pasted into the
  image over its box as detectron2 pastes it (bilinear, pixel centres, over the box and a pixel beyond),
  the maps are averaged weighted by score (times the run's weight; members that did not find the object
  do not vote), and the average is cut at 0.5, detectron2's own mask threshold (an average of exactly 0.5
  is on, as in detectron2); the box is the fused mask's. A member alone keeps its own
  mask and box. A cache written before it kept probabilities falls back to the binary vote, and the
  fusion says so: a pixel is on where the scores of the members whose masks cover it add up to at least
  half of the group's total score (ties on); with two members the better-scored mask wins outright and
  equal scores give the union; from three members on it is a weighted majority. If every score in the
  group is 0, each member gets weight 1.
- **Box.** With the soft vote, the fused mask's box; with the binary vote, the score-weighted mean of the
  members' boxes (unchanged when they agree); from the mask when a member has no box.

The result does not depend on the order the members are given in: they are sorted by their cache key
(then by a digest of their detections when keys tie). The output is a ``Predictions`` of the same split
that selection, evaluation and export take unchanged, written to ``cache_dir`` under a key made from the
members' keys and the settings, so asking again costs a file read.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from itertools import combinations
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_util

from ..core.errors import TinyVocError
from ..core.rle import to_pycocotools
from ..core.settings import default
from .cache_file import Predictions, mask_probs_levels, reuse_cache, write_cache

# part of the key: a change of the rule above never reads an older fused cache (2: soft masks; 3: their average's
# ties on, whatever float32's rounding)
FUSION_FORMAT = 3
DEFAULT_IOU = default("FUSION_IOU")  # 0.5; mask IoU runs lower than box IoU for the same pair: 04 sweeps it
_TIE = 1e-9  # relative tolerance on "at least half": float sums of the same scores in another order
# the same for mask voting's average, summed in float32 (7 digits): two members of equal score at levels 1 and 254 of
# 255 average exactly 0.5, which is on (detectron2 cuts at >= 0.5), whatever the rounding of their sum
_SOFT_TIE = 1e-6
_MERGE_MEMBERS = 6  # groups up to this many members vote on run-length codes, larger ones on decoded masks


def fuse(
    members: Sequence[Predictions],
    iou_threshold: float = DEFAULT_IOU,
    cache_dir: str | Path | None = None,
    refresh: bool = False,
    weights: Sequence[float] | None = None,
) -> Predictions:
    """One ``Predictions`` fusing ``members`` (same split, same images) by the rule in the module docstring.

    ``weights``: one per member, in the order given (``FUSION_WEIGHTS``; None: all equal). With ``cache_dir``
    the result is read from ``fused-<split>-<key>.jsonl`` there when present and intact, else computed and
    written there (atomically, every new mask checked as for any cache).
    """
    weights = checked_weights(weights, len(members))
    order = _canonical_indices(members)
    ordered, weights = [members[i] for i in order], [weights[i] for i in order]
    _check_members(ordered, iou_threshold)
    key = _key(ordered[0].split, [m.key or _digest(m) for m in ordered], iou_threshold, weights)
    first = ordered[0]
    images = next((m.images for m in ordered if m.images is not None), None)
    path = Path(cache_dir) / f"fused-{first.split}-{key}.jsonl" if cache_dir is not None else None  # as cache_path
    cached = reuse_cache(path, images, refresh, "fusion")
    if cached is not None:
        return cached
    started = time.perf_counter()
    detections = fuse_detections([m.detections for m in ordered], iou_threshold, weights)
    seconds = round(time.perf_counter() - started, 2)
    settings = fusion_settings(ordered, iou_threshold, weights)
    fused = Predictions(
        split=first.split,
        detections=detections,
        # every object whose fused score reaches the highest member floor was kept by at least one member
        score_floor=max(m.score_floor for m in ordered),
        image_ids=list(first.image_ids),
        key=key,
        checkpoint=" + ".join(m.checkpoint or m.key or "?" for m in ordered),
        tta=any(m.tta for m in ordered),
        seconds=seconds,
        gt_json=first.gt_json,
        images=images,
        fusion=settings,
    )
    binary = [_name(m) for m in ordered if not _has_probs(m)]
    if binary and len(ordered) > 1:
        print(f"{len(binary)} of {len(ordered)} members' caches keep no mask probabilities (written before they "
              f"were kept: {', '.join(binary)}): their masks fuse by the binary vote; predict them again "
              "(delete their caches) for mask voting.")  # fmt: skip
    # masks taken unchanged from a member were checked when that member's cache was written
    checked = frozenset().union(*(m.checked_rles for m in ordered))
    total = sum(len(m.detections) for m in ordered)
    print(
        f"Fused {len(ordered)} runs' {first.split} predictions ({total} detections) into "
        f"{len(detections)} in {seconds:.2f} s (mask IoU >= {iou_threshold:g})"
    )
    if path is None:
        counts = ((d["segmentation"]["size"], d["segmentation"]["counts"]) for d in detections)
        kept = frozenset(t for t in ((s[0], s[1], c) for s, c in counts) if t in checked)
        return replace(fused, checked_rles=kept)
    return write_cache(path, fused, checked_rles=checked)


def canonical_order(members: Sequence[Predictions]) -> list[Predictions]:
    """The members sorted by cache key; members sharing a key by a digest of their detections."""
    return [members[i] for i in _canonical_indices(members)]


def _canonical_indices(members: Sequence[Predictions]) -> list[int]:
    if not members:
        raise TinyVocError("nothing to fuse: give the predictions of one or more runs")
    keys = [m.key for m in members]
    digests = [_digest(m) if keys.count(m.key) > 1 or not m.key else "" for m in members]
    return sorted(range(len(members)), key=lambda i: (keys[i], digests[i]))


def checked_weights(weights: Sequence[float] | None, count: int) -> list[float]:
    """``FUSION_WEIGHTS`` as one float per member (None: all 1), or a clear error."""
    if weights is None:
        return [1.0] * count
    try:
        weights = [float(w) for w in weights]
    except (TypeError, ValueError):
        raise TinyVocError(f"FUSION_WEIGHTS = {weights!r}: give one number per run in RUN, e.g. [2, 1]") from None
    if len(weights) != count or any(not w >= 0 for w in weights) or not sum(weights) > 0:
        raise TinyVocError(
            f"FUSION_WEIGHTS = {weights!r}: give one weight (0 or more, not all 0) for each of the {count} runs in "
            "RUN, in RUN's order, e.g. [2, 1]; or None for equal weights"
        )
    return [w / max(weights) for w in weights]  # the largest 1: equal weights fuse exactly as unweighted


def fusion_settings(members: Sequence[Predictions], iou_threshold: float, weights=None) -> dict:
    """What the fused cache's header records: the members (in canonical order) and the rule's settings."""
    return {
        "format": FUSION_FORMAT,
        "iou_threshold": float(iou_threshold),
        **({"weights": list(weights)} if _unequal(weights) else {}),
        "score": "mean over all members, 0 for a member that did not find the object",
        "mask": "mask voting: the members' probabilities pasted, averaged by score, cut at 0.5"
        if all(_has_probs(m) for m in members)
        else "score-weighted pixel vote of the group's members, on at >= half their total score",
        "members": [
            {
                "key": m.key or _digest(m),
                "checkpoint": m.checkpoint,
                "tta": m.tta,
                "score_floor": m.score_floor,
                "detections": len(m.detections),
                **({"fusion": m.fusion} if m.fusion else {}),
            }
            for m in members
        ],
    }


def fusion_key(members: Sequence[Predictions], iou_threshold: float) -> str:
    """A hash of the members' keys (canonical order) and the settings: a new member or setting is a new cache."""
    return _key(members[0].split, [m.key or _digest(m) for m in canonical_order(members)], iou_threshold)


def _unequal(weights: Sequence[float] | None) -> bool:
    return weights is not None and len(set(weights)) > 1


def _key(split: str, ordered_keys: list[str], iou_threshold: float, weights: Sequence[float] | None = None) -> str:
    """Equal weights add nothing to the key: a fusion cached before weights existed is still found."""
    payload = {"fusion": FUSION_FORMAT, "split": split, "members": ordered_keys, "iou_threshold": float(iou_threshold)}
    if _unequal(weights):
        total = sum(weights)
        payload["weights"] = [round(w / total, 9) for w in weights]  # [2, 1] and [4, 2] fuse alike
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def cache_path(
    cache_dir: str | Path, split: str, member_keys: Sequence[str], iou_threshold: float, weights=None
) -> Path | None:
    """Where :func:`fuse` keeps the fusion of members with these cache keys (and ``weights``, in the same order),
    known before any member is read (so a current fusion costs one file read); None when two members share a key
    (their order needs their detections)."""
    if len(set(member_keys)) < len(member_keys) or not all(member_keys):
        return None
    weights = checked_weights(weights, len(member_keys))
    order = sorted(range(len(member_keys)), key=lambda i: member_keys[i])
    key = _key(split, [member_keys[i] for i in order], iou_threshold, [weights[i] for i in order])
    return Path(cache_dir) / f"fused-{split}-{key}.jsonl"


def fuse_detections(
    members: Sequence[Sequence[dict]], iou_threshold: float = DEFAULT_IOU, weights: Sequence[float] | None = None
) -> list[dict]:
    """The fused detections of ``members`` (each a list of cache rows, already in canonical order; ``weights``
    in the same order, None: equal).

    Sorted by image id, then best score first; ties in order of their groups' first rows (member, then
    row), so a run fused with itself lists its detections in the run's own order, and COCO's matching,
    which takes tied scores in the order given, scores it exactly as the run.
    """
    weights = checked_weights(weights, len(members))
    groups: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)  # (image, class) -> (member, row)
    for m, rows in enumerate(members):
        for r, row in enumerate(rows):
            groups[(row["image_id"], row["category_id"])].append((m, r))
    fused, scratch = [], _Scratch()
    for (image_id, category_id), found in groups.items():
        rows = [members[m][r] for m, r in found]
        scores = np.array([row["score"] for row in rows], dtype=float)
        order = np.lexsort((np.array([r for _, r in found]), np.array([m for m, _ in found]), -scores))
        for group in _group(rows, [found[i][0] for i in order], order, iou_threshold):
            made = _fused_row(image_id, category_id, [rows[i] for i in group], [weights[found[i][0]] for i in group],
                              sum(weights), scratch)  # fmt: skip
            fused.append(((image_id, -made["score"], *found[group[0]]), made))
    fused.sort(key=lambda pair: pair[0])
    return [row for _, row in fused]


def _group(rows: list[dict], member_of: list[int], order: np.ndarray, iou_threshold: float) -> list[list[int]]:
    """Rows (indices into ``rows``) grouped as the module docstring says; ``order`` is best first."""
    if len(rows) == 1:
        return [[0]]
    rles = [to_pycocotools(rows[i]["segmentation"]) for i in order]
    sizes = {tuple(r["size"]) for r in rles}
    if len(sizes) > 1:
        raise TinyVocError(
            f"image {rows[0]['image_id']}: the runs' masks have different sizes {sorted(sizes)}; "
            "fuse predictions of the same images only"
        )
    ious = _cross_member_ious(rles, np.asarray(member_of))
    can_join = (ious >= iou_threshold).any(axis=1)
    leaders: list[int] = []  # position (in ``order``) of each group's first row
    groups: list[list[int]] = []
    members_in: list[set[int]] = []
    for k, member in enumerate(member_of):
        best, best_iou = -1, iou_threshold
        if can_join[k]:
            row = ious[k].tolist()
            for g, leader in enumerate(leaders):
                overlap = row[leader]
                if overlap >= best_iou and member not in members_in[g] and (best < 0 or overlap > best_iou):
                    best, best_iou = g, overlap  # the highest IoU; ties: the earliest group
        if best < 0:
            leaders.append(k)
            groups.append([int(order[k])])
            members_in.append({member})
        else:
            groups[best].append(int(order[k]))
            members_in[best].add(member)
    return groups


def _cross_member_ious(rles: list[dict], member_of: np.ndarray) -> np.ndarray:
    """Mask IoU between rows of different members; 0 within a member (a row never joins its own member's group).

    Identical masks have IoU 1, two empty ones too (pycocotools says 0 for those), so a run fused with
    itself keeps its empty masks as they were. One pycocotools call per pair of members.
    """
    ious = np.zeros((len(rles), len(rles)))
    present = np.unique(member_of)
    for i, first in enumerate(present):
        for second in present[i + 1 :]:
            a, b = np.flatnonzero(member_of == first), np.flatnonzero(member_of == second)
            block = np.asarray(mask_util.iou([rles[k] for k in a], [rles[k] for k in b], [0] * len(b)))
            ious[np.ix_(a, b)] = block
            ious[np.ix_(b, a)] = block.T
    alike: dict[bytes, list[int]] = defaultdict(list)
    for k, rle in enumerate(rles):
        alike[rle["counts"]].append(k)
    for rows in alike.values():
        for i, a in enumerate(rows):
            for b in rows[i + 1 :]:
                if member_of[a] != member_of[b]:
                    ious[a, b] = ious[b, a] = 1.0
    return ious


def _fused_row(
    image_id: int,
    category_id: int,
    rows: list[dict],
    member_weights: list[float],
    total_weight: float,
    scratch: _Scratch | None = None,
) -> dict:
    """One fused detection from a group's rows (at most one per member, best score first), ``member_weights`` the
    weights of their members, ``total_weight`` that of all members (a member that did not find it counts 0)."""
    scores = [float(row["score"]) for row in rows]
    score = sum(w * s for w, s in zip(member_weights, scores)) / total_weight  # equal weights are 1: (s + s) / 2 == s
    weights = [w * s for w, s in zip(member_weights, scores)]
    weights = weights if sum(weights) > 0 else [1.0] * len(rows)
    segmentations = [row["segmentation"] for row in rows]
    alike = all(s["counts"] == segmentations[0]["counts"] for s in segmentations)
    if not alike and all("mask_probs" in row and row.get("bbox") for row in rows):
        segmentation, box = _soft_vote(rows, weights, scratch)
        return {"image_id": image_id, "category_id": category_id, "score": score, "bbox": box,
                "segmentation": segmentation}  # fmt: skip
    segmentation = _voted_mask(segmentations, weights)
    boxes = [row.get("bbox") for row in rows]
    if any(b is None for b in boxes):
        box = [round(float(v), 2) for v in mask_util.toBbox(to_pycocotools(segmentation))]
    elif all(b == boxes[0] for b in boxes):
        box = list(boxes[0])
    else:
        mean = np.asarray(weights) @ np.asarray(boxes, dtype=float) / sum(weights)
        box = [round(float(v), 2) for v in mean]
    return {"image_id": image_id, "category_id": category_id, "score": score, "bbox": box, "segmentation": segmentation}


def _soft_vote(rows: list[dict], weights: list[float], scratch: _Scratch | None = None) -> tuple[dict, list[float]]:
    """Mask voting: the members' mask probabilities pasted over their boxes, averaged by ``weights``, cut at 0.5;
    the box is the fused mask's (the weighted mean box when nothing reaches 0.5).

    Only the union of the members' boxes (each as detectron2 pastes it, a pixel beyond) is touched, never the whole
    image; it is laid out column by column (x-major), the order run-length codes run in, so the cut mask becomes
    its code directly (:func:`_run_lengths`), with no full-image array to encode.
    """
    scratch = scratch or _Scratch()
    height, width = rows[0]["segmentation"]["size"]
    total, left, top = _pasted_sum([mask_probs_levels(row["mask_probs"]) for row in rows],
                                   [row["bbox"] for row in rows], [w / 255.0 for w in weights], height, width,
                                   scratch)  # fmt: skip
    on = scratch.array("on", (total.shape[0], total.shape[1] + 2), bool)  # a row off above and below every column
    on[:, 0] = on[:, -1] = False
    np.greater_equal(total, 0.5 * sum(weights) * (1 - _SOFT_TIE), out=on[:, 1:-1])
    counts = _run_lengths(on, left, top - 1, height, width)
    encoded = mask_util.frPyObjects({"size": [height, width], "counts": counts}, height, width)
    if len(counts) > 1:  # something is on
        box = mask_util.toBbox(encoded)
    else:
        box = np.asarray(weights) @ np.asarray([row["bbox"] for row in rows], dtype=float) / sum(weights)
    segmentation = {"size": [height, width], "counts": encoded["counts"].decode("ascii")}
    return segmentation, [round(float(v), 2) for v in box]


class _Scratch:
    """Work arrays kept from one group's soft vote to the next. A group's large temporaries (a few hundred kB each)
    taken fresh every time cost as much as the arithmetic on them: the operating system hands out and zeroes new
    pages each time. Kept, they stay in the cache."""

    def __init__(self) -> None:
        self._buffers: dict[str, np.ndarray] = {}

    def array(self, name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        """An uninitialised ``shape`` array of ``dtype``, the same memory each time ``name`` is asked for."""
        size = math.prod(shape)
        buffer = self._buffers.get(name)
        if buffer is None or buffer.size < size or buffer.dtype != dtype:
            buffer = self._buffers[name] = np.empty(max(size, 2 * (0 if buffer is None else buffer.size)), dtype)
        return buffer[:size].reshape(shape)


def _run_lengths(columns: np.ndarray, left: int, top: int, height: int, width: int) -> list[int]:
    """The uncompressed RLE counts of a ``height`` x ``width`` mask that is off except for ``columns`` (one row per
    image column from ``left``, one entry per image row from ``top``), each column starting and ending off.

    Those ends make the columns one flat sequence whose changes are exactly the mask's: a change at flat position
    ``k`` is image pixel (row ``top + k % rows``, column ``left + k // rows``), column-major as COCO counts run.
    Where the columns span the image's height, a run ending at a column's foot and one starting at the next one's
    head are one run: their changes fall on the same pixel and are dropped; and a run that ends with the image is
    the last, as ``pycocotools.mask.encode`` codes them.
    """
    flat = columns.ravel()
    at = np.flatnonzero(flat[1:] != flat[:-1])  # flat position k - 1 of each change, then its image position
    at += 1 + left * height + top + (at + 1) // columns.shape[1] * (height - columns.shape[1])
    same = np.flatnonzero(at[1:] == at[:-1])
    if len(same):
        at = np.delete(at, np.concatenate((same, same + 1)))
    if len(at) and at[-1] == height * width:  # a run ending with the image: no empty run after it
        at = at[:-1]
    return np.diff(np.concatenate(([0], at, [height * width]))).tolist()


def _paste(probs: np.ndarray, bbox, height: int, width: int) -> tuple[int, int, np.ndarray]:
    """``probs`` (M x M, 0..1) pasted over ``bbox`` (x, y, w, h) as :func:`_pasted_sum` pastes one member, row-major:
    ``(top, left, patch)`` within the image."""
    total, left, top = _pasted_sum([np.asarray(probs, dtype=np.float32)], [bbox], [1.0], height, width, _Scratch())
    return top, left, total.T.copy()


def _pasted_sum(maps: list[np.ndarray], boxes: list, scales: list[float], height: int, width: int, scratch: _Scratch):
    """The sum of ``maps`` (each M x M) times ``scales``, each pasted over its box (x, y, w, h) as detectron2's
    ``paste_masks_in_image`` pastes on the CPU (``grid_sample``: bilinear, pixel centres, 0 outside the map; only
    the box's pixels and one beyond, 0 elsewhere): ``(total, left, top)``, ``total`` covering the union of those
    regions column by column (image column x, row y at ``total[x - left, y - top]``; ``scratch``'s memory, valid
    until its next use).

    Separable: each map is first interpolated down the union's rows (a few dozen values a row), then whole rows of
    those values are gathered for the member's columns and blended, into the union's block of those columns, which
    is contiguous. No loop over pixels, and no matrix products, which slow down a hundredfold when the machine is
    busy (BLAS threads wait for cores)."""
    regions = [_region(box, height, width) for box in boxes]
    left, top = min(r[0] for r in regions), min(r[1] for r in regions)
    right, bottom = max(r[2] for r in regions), max(r[3] for r in regions)
    if right <= left or bottom <= top:
        return np.zeros((0, 0), dtype=np.float32), left, top
    total = scratch.array("total", (right - left, bottom - top), np.float32)
    total[:] = 0
    for levels, box, scale, (x0, y0, x1, y1) in zip(maps, boxes, scales, regions):
        if x1 <= x0 or y1 <= y0:
            continue
        side = levels.shape[0]
        padded = np.zeros((side + 4, side + 4), dtype=np.float32)  # two zeros on each side: grid_sample's padding
        np.multiply(levels, np.float32(scale), out=padded[2:-2, 2:-2])
        x, y, w, h = (float(v) for v in box)
        # down the union's rows, rows outside the member's region reading padding: a map column per row, then
        low, up = _neighbours(top, bottom, y, y + max(h, 1e-6), side, y0, y1)
        columns = padded[low]  # union rows x cells
        step = _steps(padded)[low]
        step *= up[:, None]
        columns += step
        columns = np.ascontiguousarray(columns.T)  # cells x union rows
        steps = _steps(columns)
        # across the member's own columns: whole rows of those values gathered and blended, added to its block
        low, up = _neighbours(x0, x1, x, x + max(w, 1e-6), side, x0, x1)
        patch = np.take(columns, low, axis=0, mode="clip", out=scratch.array("patch", (x1 - x0, bottom - top),
                                                                             np.float32))  # fmt: skip
        step = np.take(steps, low, axis=0, mode="clip", out=scratch.array("step", patch.shape, np.float32))
        step *= up[:, None]
        block = total[x0 - left : x1 - left]
        block += patch
        block += step
    return total, left, top


def _steps(values: np.ndarray) -> np.ndarray:
    """``values[i + 1] - values[i]`` for each row ``i`` of ``values``; 0 for the last (its padding)."""
    steps = np.empty_like(values)
    np.subtract(values[1:], values[:-1], out=steps[:-1])
    steps[-1] = 0
    return steps


def _region(box, height: int, width: int) -> tuple[int, int, int, int]:
    """The pixels detectron2 pastes a box's mask over on the CPU (``skip_empty``): the box and one pixel beyond, within
    the image, as (left, top, right, bottom)."""
    x, y, w, h = (float(v) for v in box)
    return (max(math.floor(x) - 1, 0), max(math.floor(y) - 1, 0), min(math.ceil(x + max(w, 1e-6)) + 1, width),
            min(math.ceil(y + max(h, 1e-6)) + 1, height))  # fmt: skip


def _neighbours(first: int, end: int, start: float, stop: float, side: int, inside_first: int, inside_end: int):
    """For image pixels ``first`` to ``end`` along one axis of a box from ``start`` to ``stop`` over a map of ``side``
    cells: the first neighbour's index in the map padded with two zeros at each end, and the weight of the second
    (the next one). Beyond the map, and outside the region pasted (``inside_first`` to ``inside_end``), both
    neighbours are padding."""
    scale = side / (stop - start)  # cells per pixel: pixel p's centre is at cell (p + 0.5 - start) * scale - 0.5
    at = np.arange(end - first, dtype=float)
    at *= scale
    at += (first + 0.5 - start) * scale + 1.5  # + 2: the padding before the map
    low = np.floor(at)
    up = (at - low).astype(np.float32)
    np.minimum(low, side + 2, out=low)
    np.maximum(low, 0, out=low)
    low[: max(inside_first - first, 0)] = 0
    low[max(inside_end - first, 0) :] = 0
    return low.astype(np.intp), up


def _voted_mask(segmentations: list[dict], weights: list[float]) -> dict:
    """The score-weighted pixel vote: on where the covering weights reach half the total (module docstring).

    A pixel is on exactly when the members covering it include a minimal winning coalition (a set of
    members whose weights reach half the total, none of them superfluous), so the mask is the union of
    those coalitions' intersections, computed on the run-length codes with pycocotools' ``merge``: no
    mask is decoded. Groups of more than ``_MERGE_MEMBERS`` members (many coalitions) are decoded and
    voted pixel by pixel instead, which gives the same mask.
    """
    first = segmentations[0]
    if all(s["counts"] == first["counts"] for s in segmentations):
        return {"size": list(first["size"]), "counts": first["counts"]}
    if len(segmentations) > _MERGE_MEMBERS:
        return _vote_by_decoding(segmentations, weights)
    coalitions = _minimal_winning(weights)
    if len(coalitions) == 1 and len(coalitions[0]) == 1:  # one member outweighs all others together
        chosen = segmentations[coalitions[0][0]]
        return {"size": list(chosen["size"]), "counts": chosen["counts"]}
    rles = [to_pycocotools(s) for s in segmentations]
    parts = [mask_util.merge([rles[k] for k in c], intersect=True) if len(c) > 1 else rles[c[0]] for c in coalitions]
    voted = mask_util.merge(parts, intersect=False) if len(parts) > 1 else parts[0]
    return {"size": list(first["size"]), "counts": voted["counts"].decode("ascii")}


def _wins(weights: list[float], total: float, coalition: tuple[int, ...]) -> bool:
    """Whether these members' weights reach half the total (the tolerance absorbs float summation order)."""
    return 2 * sum(weights[k] for k in coalition) >= total * (1 - _TIE)


def _minimal_winning(weights: list[float]) -> list[tuple[int, ...]]:
    """The member sets that reach half the total weight and have no smaller such set inside, smallest first."""
    total = sum(weights)
    found: list[tuple[int, ...]] = []
    for size in range(1, len(weights) + 1):
        for coalition in combinations(range(len(weights)), size):
            if not any(set(c) <= set(coalition) for c in found) and _wins(weights, total, coalition):
                found.append(coalition)
    return found


def _vote_by_decoding(segmentations: list[dict], weights: list[float]) -> dict:
    """The same vote pixel by pixel, on the masks decoded within their joint box."""
    first = segmentations[0]
    rles = [to_pycocotools(s) for s in segmentations]
    x0, y0, w, h = np.asarray(mask_util.toBbox(rles)).T
    left, top = int(x0.min()), int(y0.min())
    right, bottom = int(np.ceil((x0 + w).max())), int(np.ceil((y0 + h).max()))
    masks = mask_util.decode(rles)[top:bottom, left:right]  # H x W x members, only where any mask is
    vote = masks @ np.asarray(weights, dtype=float)
    full = np.zeros(tuple(first["size"]), dtype=np.uint8, order="F")
    full[top:bottom, left:right] = 2 * vote >= sum(weights) * (1 - _TIE)
    encoded = mask_util.encode(full)
    return {"size": list(first["size"]), "counts": encoded["counts"].decode("ascii")}


def _check_members(members: list[Predictions], iou_threshold: float) -> None:
    if not 0.0 < float(iou_threshold) <= 1.0:
        raise TinyVocError(f"fusion IoU threshold {iou_threshold} is not in (0, 1]; 0.5 is the usual choice")
    first = members[0]
    for other in members[1:]:
        if other.split != first.split:
            raise TinyVocError(
                f"cannot fuse predictions of different splits: {_name(first)} is {first.split}, "
                f"{_name(other)} is {other.split}"
            )
        if sorted(other.image_ids) != sorted(first.image_ids):
            raise TinyVocError(
                f"cannot fuse predictions of different images: {_name(first)} covers {len(first.image_ids)} "
                f"{first.split} images, {_name(other)} {len(other.image_ids)}, not the same ones; predict both "
                "runs on the same dataset record (01) so their splits match"
            )


def _has_probs(predictions: Predictions) -> bool:
    """Whether the cache keeps the mask head's probabilities (an empty one has nothing to lack)."""
    return all("mask_probs" in d for d in predictions.detections)


def _name(predictions: Predictions) -> str:
    return f"{predictions.checkpoint or 'predictions'} ({predictions.key or 'no key'})"


def _digest(predictions: Predictions) -> str:
    """A content hash for predictions without a cache key (made in memory), and to order equal keys."""
    return hashlib.sha256(json.dumps(predictions.detections, sort_keys=True).encode()).hexdigest()[:16]
