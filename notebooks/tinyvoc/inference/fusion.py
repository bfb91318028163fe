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
  image over its box as detectron2 pastes it (bilinear, pixel centres), the maps are averaged weighted by
  score (times the run's weight; members that did not find the object do not vote), and the average is
  cut at 0.5, detectron2's own mask threshold; the box is the fused mask's. A member alone keeps its own
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
from .cache_file import Predictions, decode_mask_probs, reuse_cache, write_cache

FUSION_FORMAT = 2  # part of the key: a change of the rule above never reads an older fused cache (2: soft masks)
DEFAULT_IOU = default("FUSION_IOU")  # 0.5; mask IoU runs lower than box IoU for the same pair: 04 sweeps it
_TIE = 1e-9  # relative tolerance on "at least half": float sums of the same scores in another order
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
    fused = []
    for (image_id, category_id), found in groups.items():
        rows = [members[m][r] for m, r in found]
        scores = np.array([row["score"] for row in rows], dtype=float)
        order = np.lexsort((np.array([r for _, r in found]), np.array([m for m, _ in found]), -scores))
        for group in _group(rows, [found[i][0] for i in order], order, iou_threshold):
            made = _fused_row(image_id, category_id, [rows[i] for i in group], [weights[found[i][0]] for i in group],
                              sum(weights))  # fmt: skip
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
    image_id: int, category_id: int, rows: list[dict], member_weights: list[float], total_weight: float
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
        segmentation, box = _soft_vote(rows, weights)
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


def _soft_vote(rows: list[dict], weights: list[float]) -> tuple[dict, list[float]]:
    """Mask voting: the members' mask probabilities pasted over their boxes, averaged by ``weights``, cut at 0.5;
    the box is the fused mask's (the weighted mean box when nothing reaches 0.5)."""
    height, width = rows[0]["segmentation"]["size"]
    pasted = [_paste(decode_mask_probs(row["mask_probs"]), row["bbox"], height, width) for row in rows]
    top, left = min(p[0] for p in pasted), min(p[1] for p in pasted)
    bottom, right = max(p[0] + p[2].shape[0] for p in pasted), max(p[1] + p[2].shape[1] for p in pasted)
    total = np.zeros((bottom - top, right - left), dtype=np.float32)
    for (y, x, patch), weight in zip(pasted, weights):
        total[y - top : y - top + patch.shape[0], x - left : x - left + patch.shape[1]] += weight * patch
    full = np.zeros((height, width), dtype=np.uint8, order="F")
    full[top:bottom, left:right] = total >= 0.5 * sum(weights) * (1 - _TIE)
    encoded = mask_util.encode(full)
    if full.any():
        box = mask_util.toBbox(encoded)
    else:
        box = np.asarray(weights) @ np.asarray([row["bbox"] for row in rows], dtype=float) / sum(weights)
    segmentation = {"size": [height, width], "counts": encoded["counts"].decode("ascii")}
    return segmentation, [round(float(v), 2) for v in box]


def _paste(probs: np.ndarray, bbox, height: int, width: int) -> tuple[int, int, np.ndarray]:
    """``probs`` (M x M) pasted over ``bbox`` (x, y, w, h) as detectron2's ``paste_masks_in_image`` does it
    (``grid_sample``, bilinear, pixel centres, 0 outside the map): ``(top, left, patch)`` within the image.

    Interpolated by gathering neighbours, not by matrix products: small BLAS calls slow down a hundredfold
    when the machine is busy (their threads wait for cores), and a fusion makes thousands of them."""
    x0, y0, w, h = (float(v) for v in bbox)
    x1, y1 = x0 + max(w, 1e-6), y0 + max(h, 1e-6)
    left, top = max(int(np.floor(x0)) - 1, 0), max(int(np.floor(y0)) - 1, 0)
    right, bottom = min(int(np.ceil(x1)) + 1, width), min(int(np.ceil(y1)) + 1, height)
    side = probs.shape[0]
    padded = np.pad(np.asarray(probs, dtype=np.float32), 1)  # row and column 0 and side + 1: grid_sample's zeros
    below, above, down = _neighbours(((np.arange(top, bottom) + 0.5) - y0) / (y1 - y0) * side - 0.5, side)
    before, after, across = _neighbours(((np.arange(left, right) + 0.5) - x0) / (x1 - x0) * side - 0.5, side)
    rows = padded[below] * (1 - down)[:, None] + padded[above] * down[:, None]
    return top, left, rows[:, before] * (1 - across) + rows[:, after] * across


def _neighbours(at: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For positions ``at`` along a row of ``side`` values: the two neighbours' indices in the zero-padded row
    (beyond its ends: the padding) and the weight of the second."""
    low = np.floor(at)
    return (np.clip(low + 1, 0, side + 1).astype(int), np.clip(low + 2, 0, side + 1).astype(int),
            (at - low).astype(np.float32))  # fmt: skip


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
