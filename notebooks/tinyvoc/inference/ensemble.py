"""The run or runs notebooks 03 and 04 use: ``RUN = "best"`` (or a name) is one run, a list is their fusion.

``RUN = ["strong", "my_recipe:final"]`` fuses the runs' cached test and validation predictions
(``fusion.fuse``: no model runs where a member's cache is current) into one ``Predictions`` per split,
which selection, evaluation, the sweep, the views and the export take exactly as a single run's. Each
entry may end in ``:best`` or ``:final`` (that member's checkpoint; else ``CHECKPOINT``). A one-entry list
is that run, unfused. The notebooks call :func:`load` and :func:`predict_split` whichever it is.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import TinyVocError
from ..core.paths import Outputs, TrainFiles, run_entries
from ..dataset.record import DatasetRecord
from . import bootstrap, cached_predictions, fusion
from .cache_file import Predictions, reuse_cache
from .evaluate import Matching, best_threshold, threshold_sweep
from .selection import Selection
from .trained_run import TrainedRun


@dataclass(frozen=True)
class FusedRun:
    """Several trained runs whose predictions are fused; stands in for a :class:`TrainedRun` in 03 and 04."""

    members: tuple[TrainedRun, ...]
    iou_threshold: float = fusion.DEFAULT_IOU
    weights: tuple[float, ...] | None = None  # one per member, in RUN's order (FUSION_WEIGHTS); None: equal
    _member_predictions: dict = field(default_factory=dict, repr=False, compare=False)  # (split, tta) -> members'

    def member_predictions(self, split: str, tta: bool | None = None, again: bool = False) -> list[Predictions]:
        """Each member's cached predictions of ``split`` (made where missing); kept, so the validation comparison
        does not read them again after the fusion did. ``again``: read the caches anew (a new fusion asks)."""
        if again or (split, tta) not in self._member_predictions:
            members = [cached_predictions.predict_split(m, split, tta=tta) for m in self.members]
            self._member_predictions[(split, tta)] = members
        return self._member_predictions[(split, tta)]

    @property
    def outputs(self) -> Outputs:
        return self.members[0].outputs

    @property
    def record(self) -> DatasetRecord:
        return self.members[0].record

    @property
    def name(self) -> str:
        return "fused: " + " + ".join(m.name for m in self.members)

    @property
    def files(self) -> TrainFiles:
        """The first member's files (its training curves are the ones 03 draws)."""
        return self.members[0].files

    @property
    def predictions_dir(self) -> Path:
        """The fused caches, beside the runs' own: ``output/predictions/fused/``."""
        return self.outputs.fused_predictions_dir

    @property
    def score_floor(self) -> float:
        """The fused cache holds every object scored at or above the highest member floor."""
        return max(m.score_floor for m in self.members)

    @property
    def score_threshold(self) -> float:
        """The fused score at which every detection a member keeps at its own test threshold stays: a member alone
        contributes its weight's share of its score (one of two at 0.4: 0.2), so the lowest such share. The verdict
        and 04's sweep then say which threshold is best on validation."""
        weights = self.weights or (1.0,) * len(self.members)
        lowest = min(m.score_threshold * w for m, w in zip(self.members, weights)) / sum(weights)
        return max(self.score_floor, lowest)

    def selection(self, threshold: float | None = None, class_thresholds=None, max_per_image: int = 100) -> Selection:
        """As :meth:`TrainedRun.selection`, at the members' lowest own threshold when ``threshold`` is None."""
        default = self.score_threshold if threshold is None else threshold
        return Selection.above_floor(default, self.score_floor, class_thresholds, max_per_image)

    def made_by(self) -> dict:
        """What ``submission_source.json`` records: every member (run, why, checkpoint) and the fusion's settings."""
        return {
            "run": self.name,
            "why": "RUN lists several runs: their predictions fused",
            "checkpoint": " + ".join(m.made_by()["checkpoint"] for m in self.members),
            "members": [m.made_by() for m in self.members],
            "fusion": {"iou_threshold": self.iou_threshold, "weights": self.weights, "format": fusion.FUSION_FORMAT},
        }


def load(
    outputs: Outputs,
    checkpoint: str = "best",
    run: str | Sequence[str] = "best",
    iou_threshold: float = fusion.DEFAULT_IOU,
    weights: Sequence[float] | None = None,
) -> TrainedRun | FusedRun:
    """One :class:`TrainedRun` for a string ``RUN`` (or a one-entry list), a :class:`FusedRun` for several, fused at
    mask IoU ``iou_threshold`` (``FUSION_IOU``) with ``weights`` (``FUSION_WEIGHTS``: one per run, None: equal)."""
    (name, which), *others = run_entries(run, checkpoint)
    first = TrainedRun.load(outputs, which, run=name)  # a single run: exactly TrainedRun.load
    if not others:
        return first
    members = (first, *(TrainedRun.load(outputs, which, first.record, run=name) for name, which in others))
    taken = [(m.name, m.checkpoint) for m in members]
    if len(set(taken)) < len(taken):
        raise TinyVocError(f"RUN lists the same run and checkpoint twice: {run!r}")
    fused = FusedRun(members, float(iou_threshold), tuple(fusion.checked_weights(weights, len(members))))
    print(f"Fusing {len(members)} runs: " + ", ".join(f"{m.name} ({m.checkpoint.name})" for m in members))
    return fused


def predict_split(run: TrainedRun | FusedRun, split: str = "test", tta: bool | None = None) -> Predictions:
    """A run's cached predictions of ``split`` (made where missing); for a fusion, its members' fused (cached).

    A fusion's cache is looked up first, from the members' cache keys alone: when it is current, no member's
    predictions are read and no model runs (a re-run of 03 or 04)."""
    if isinstance(run, TrainedRun):
        return cached_predictions.predict_split(run, split, tta=tta)
    keys = [cached_predictions.cache_slot(m, split, tta).key for m in run.members]
    path = fusion.cache_path(run.predictions_dir, split, keys, run.iou_threshold, run.weights)
    images = run.members[0].split(split)
    cached = reuse_cache(path, images, False, "fusion") if path is not None and path.exists() else None
    if cached is not None:
        return cached
    members = run.member_predictions(split, tta, again=True)
    return fusion.fuse(members, run.iou_threshold, cache_dir=run.predictions_dir, weights=run.weights)


@dataclass(frozen=True)
class Scored:
    """One member, or the fusion, on validation: at its own best threshold from the sweep, and at the score floor."""

    name: str
    threshold: float  # its best threshold on validation (AP50; ties to the lowest: evaluate.best_threshold)
    ap50: float
    ap: float
    floor: float  # the score floor, every cached detection kept
    floor_ap50: float
    floor_ap: float
    classes: list = field(repr=False, compare=False)  # its detections at ``threshold`` for the bootstrap

    @classmethod
    def of(cls, name: str, predictions: Predictions, selection: Selection) -> Scored:
        matching = Matching(predictions)
        sweep = threshold_sweep(matching, selection)
        best = best_threshold(sweep) if sweep else predictions.score_floor
        at_best = next((r for r in sweep if r["threshold"] == best), None) or matching.scores(selection.at(best))
        at_floor = matching.scores(selection.at(predictions.score_floor))
        classes = bootstrap.class_detections(matching, selection.at(best))
        return cls(name, best, at_best["AP50"], at_best["AP"], predictions.score_floor, at_floor["AP50"],
                   at_floor["AP"], classes)  # fmt: skip


@dataclass(frozen=True)
class FusionVerdict:
    """Each member and the fusion at its own best threshold (and at the floor), and whether the fusion's AP50 gain
    over its best member holds beyond the luck of the validation images (a paired bootstrap's 95% interval)."""

    members: list[Scored]
    fused: Scored
    difference: tuple[float, float, float]  # fusion less best member, AP50: (point, low, high)
    num_images: int

    @property
    def best_member(self) -> Scored:
        return max(self.members, key=lambda m: m.ap50)

    @property
    def fusion_wins(self) -> bool:
        """The whole 95% interval above zero: only then 04 recommends the fusion."""
        return self.difference[1] > 0

    def lines(self) -> list[str]:
        rows = [*self.members, self.fused]
        width = max(len(r.name) for r in rows)
        lines = [
            f"  {r.name:<{width}}  validation mask AP50 {r.ap50:.3f}, AP {r.ap:.3f} at its best threshold "
            f"{r.threshold:g} (at the floor {r.floor:g}: AP50 {r.floor_ap50:.3f}, AP {r.floor_ap:.3f})"
            for r in rows
        ]
        best = self.best_member
        point, low, high = self.difference
        gain = (f"The fusion less its best member ({best.name}): {point:+.3f} AP50, 95% interval {low:+.3f}.."
                f"{high:+.3f} over {self.num_images} validation images")  # fmt: skip
        if self.fusion_wins:
            verdict = f"{gain}: a clear win; submit the fusion."
        else:
            verdict = (f'{gain}: not a clear win; submit {best.name} alone (RUN = "{best.name}"), unless its '
                       "interval's upper end tempts you.")  # fmt: skip
        return [*lines, verdict]

    def __repr__(self) -> str:
        return "\n".join(self.lines())


def validation_scores(
    run: TrainedRun | FusedRun, val: Predictions | None, selection: Selection, tta: bool | None = None
) -> FusionVerdict | None:
    """For a fusion, its verdict on validation (:class:`FusionVerdict`): each member and the fusion ``val`` at its
    own best threshold, with the notebook's per-class thresholds and cap, all from the caches. None for a single
    run or without a validation split."""
    if not isinstance(run, FusedRun) or val is None:
        return None
    return judge(
        list(zip((m.name for m in run.members), run.member_predictions("val", tta))), (run.name, val), selection
    )


def judge(
    members: list[tuple[str, Predictions]], fused: tuple[str, Predictions], selection: Selection
) -> FusionVerdict:
    """The verdict on named validation predictions: each at its own best threshold, the fusion against the best
    member over the same bootstrap draws of the validation images."""
    scored = [Scored.of(name, predictions, selection) for name, predictions in members]
    fusion_scored = Scored.of(*fused, selection)
    best = max(scored, key=lambda m: m.ap50)
    images = len(fused[1].images.items) if fused[1].images is not None else len(fused[1].image_ids)
    difference = bootstrap.paired_difference(fusion_scored.classes, best.classes, images)
    return FusionVerdict(scored, fusion_scored, difference, images)


def table_row(verdict: FusionVerdict | None) -> tuple[list[str], float, float] | None:
    """The fusion's row for ``runs.table(outputs, fused=...)``: its members, validation AP50 and AP (at its best
    threshold)."""
    if verdict is None:
        return None
    return [m.name for m in verdict.members], verdict.fused.ap50, verdict.fused.ap


def compare(verdict: FusionVerdict) -> str:
    """The lines 04 prints: each member and the fusion at its best threshold, and whether the fusion clearly wins."""
    return repr(verdict)


IOU_SWEEP = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def iou_sweep(run: FusedRun, selection: Selection, tta: bool | None = None, ious=IOU_SWEEP) -> str:
    """04's table of the fusion IoU on validation: the fusion at each mask IoU (fused in memory, not cached), at its
    best threshold; the setting in use marked. Choose ``FUSION_IOU`` from it (ties: the one in use)."""
    from tabulate import tabulate

    members = run.member_predictions("val", tta)
    rows = []
    for iou in sorted({*ious, run.iou_threshold}):
        with contextlib.redirect_stdout(io.StringIO()):
            fused = fusion.fuse(members, iou, weights=run.weights)
        scored = Scored.of(f"{iou:g}", fused, selection)
        mark = "<- FUSION_IOU" if iou == run.iou_threshold else ""
        rows.append((f"{iou:g}", scored.ap50, scored.ap, scored.threshold, len(fused.detections), mark))
    headers = ("fusion IoU", "val AP50", "val AP", "best threshold", "detections", "")
    return tabulate(rows, headers=headers, floatfmt=".3f")
