"""The run or runs notebooks 03 and 04 use: ``RUN = "best"`` (or a name) is one run, a list is their fusion.

``RUN = ["strong", "my_recipe:final"]`` fuses the runs' cached test and validation predictions
(``fusion.fuse``: no model runs where a member's cache is current) into one ``Predictions`` per split,
which selection, evaluation, the sweep, the views and the export take exactly as a single run's. Each
entry may end in ``:best`` or ``:final`` (that member's checkpoint; else ``CHECKPOINT``). A one-entry list
is that run, unfused. The notebooks call :func:`load` and :func:`predict_split` whichever it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import TinyVocError
from ..core.paths import Outputs, TrainFiles, run_entries
from ..dataset.record import DatasetRecord
from . import cached_predictions, fusion
from .cache_file import Predictions, reuse_cache
from .selection import Selection
from .trained_run import TrainedRun


@dataclass(frozen=True)
class FusedRun:
    """Several trained runs whose predictions are fused; stands in for a :class:`TrainedRun` in 03 and 04."""

    members: tuple[TrainedRun, ...]
    iou_threshold: float = fusion.DEFAULT_IOU
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
        return self.outputs.predictions_dir / "fused"

    @property
    def score_floor(self) -> float:
        """The fused cache holds every object scored at or above the highest member floor."""
        return max(m.score_floor for m in self.members)

    @property
    def score_threshold(self) -> float:
        """The lowest of the members' own test thresholds (fused scores only go down where members disagree)."""
        return min(m.score_threshold for m in self.members)

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
            "fusion": {"iou_threshold": self.iou_threshold, "format": fusion.FUSION_FORMAT},
        }


def load(
    outputs: Outputs,
    checkpoint: str = "best",
    run: str | Sequence[str] = "best",
    iou_threshold: float = fusion.DEFAULT_IOU,
) -> TrainedRun | FusedRun:
    """One :class:`TrainedRun` for a string ``RUN`` (or a one-entry list), a :class:`FusedRun` for several."""
    (name, which), *others = run_entries(run, checkpoint)
    first = TrainedRun.load(outputs, which, run=name)  # a single run: exactly TrainedRun.load
    if not others:
        return first
    members = (first, *(TrainedRun.load(outputs, which, first.record, run=name) for name, which in others))
    taken = [(m.name, m.checkpoint) for m in members]
    if len(set(taken)) < len(taken):
        raise TinyVocError(f"RUN lists the same run and checkpoint twice: {run!r}")
    fused = FusedRun(members, iou_threshold)
    print(f"Fusing {len(members)} runs: " + ", ".join(f"{m.name} ({m.checkpoint.name})" for m in members))
    return fused


def predict_split(run: TrainedRun | FusedRun, split: str = "test", tta: bool | None = None) -> Predictions:
    """A run's cached predictions of ``split`` (made where missing); for a fusion, its members' fused (cached).

    A fusion's cache is looked up first, from the members' cache keys alone: when it is current, no member's
    predictions are read and no model runs (a re-run of 03 or 04)."""
    if isinstance(run, TrainedRun):
        return cached_predictions.predict_split(run, split, tta=tta)
    keys = [cached_predictions.cache_slot(m, split, tta).key for m in run.members]
    path = fusion.cache_path(run.predictions_dir, split, keys, run.iou_threshold)
    images = run.members[0].split(split)
    cached = reuse_cache(path, images, False, "fusion") if path is not None and path.exists() else None
    if cached is not None:
        return cached
    return fusion.fuse(run.member_predictions(split, tta, again=True), run.iou_threshold, cache_dir=run.predictions_dir)


def validation_scores(
    run: TrainedRun | FusedRun,
    val: Predictions | None,
    selection: Selection,
    tta: bool | None = None,
    metrics: dict | None = None,
) -> list[tuple[str, float, float]] | None:
    """For a fusion: the validation mask (name, AP50, AP) of each member and, last, of the fusion ``val``, at
    ``selection`` (all from the caches; ``metrics``: the fusion's ``evaluate_cached`` result when the notebook
    has it already). None for a single run or without a validation split."""
    if not isinstance(run, FusedRun) or val is None:
        return None
    from .evaluate import evaluate_cached

    rows = []
    for member, predictions in zip(run.members, run.member_predictions("val", tta)):
        segm = evaluate_cached(predictions, selection)["segm"]
        rows.append((member.name, segm["AP50"], segm["AP"]))
    segm = (metrics or evaluate_cached(val, selection))["segm"]
    rows.append((run.name, segm["AP50"], segm["AP"]))
    return rows


def table_row(scores: list[tuple[str, float, float]] | None) -> tuple[list[str], float, float] | None:
    """The fusion's row for ``runs.table(outputs, fused=...)``: its members, validation AP50 and AP."""
    if scores is None:
        return None
    *members, (_, ap50, ap) = scores
    return [name for name, _, _ in members], ap50, ap


def compare(rows: list) -> str:
    """The lines 04 prints: each member's validation AP50/AP, the fusion's, and whether it beats its best member."""
    *members, (name, ap50, ap) = rows
    width = max(len(n) for n, _, _ in rows)
    lines = [f"  {n:<{width}}  validation mask AP50 {a50:.3f}, AP {a:.3f}" for n, a50, a in rows]
    best_name, best_ap50, _ = max(members, key=lambda r: r[1])
    if ap50 > best_ap50:
        verdict = f"The fusion beats its best member ({best_name}) on validation AP50 by {ap50 - best_ap50:+.3f}."
    else:
        verdict = (f"The fusion does not beat its best member ({best_name}, AP50 {best_ap50:.3f}) on validation: "
                   f'submit that run alone (RUN = "{best_name}") unless AP matters more.')  # fmt: skip
    return "\n".join([*lines, verdict])
