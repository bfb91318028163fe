"""``Selection``: which cached detections count, the one rule for what is drawn, scored and submitted.

A selection is a score threshold, optional per-class thresholds and a cap per image. The export
writes ``selection.apply(test detections)``, the validation AP scores ``selection.apply(val
detections)``, and the grids, the error gallery and the interactive view draw the same rows, so a
picture never shows a detection the submission lacks, or hides one it has.

Every selection keeps, within each image and class, a best-first prefix of that class's detections
(a threshold drops the lowest scores; the cap drops the lowest of the whole image). COCO matches each
image's detections per class greedily by descending score, so the matching of a prefix is a prefix
of the matching: ``evaluate.Matching`` matches the cache once and scores any selection from it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from ..core.errors import TinyVocError


@dataclass(frozen=True)
class Selection:
    """Detections scored at or above their class's threshold, at most ``max_per_image`` per image, best first."""

    threshold: float
    class_thresholds: tuple[tuple[int, float], ...] = field(default=())  # (dataset category id, threshold), sorted
    max_per_image: int = 100

    @classmethod
    def of(cls, threshold: float, class_thresholds: Mapping | None = None, max_per_image: int = 100) -> Selection:
        """From notebook parameters: ``class_thresholds`` maps dataset category ids (int or str keys) to thresholds."""
        try:
            pairs = tuple(sorted((int(k), float(v)) for k, v in (class_thresholds or {}).items()))
            made = cls(float(threshold), pairs, int(max_per_image))
        except (TypeError, ValueError) as exc:
            raise TinyVocError(
                f"SCORE_THRESH, CLASS_THRESHOLDS or MAX_PER_IMAGE is not a number ({exc}); e.g. SCORE_THRESH = 0.05, "
                "CLASS_THRESHOLDS = {15: 0.3}, MAX_PER_IMAGE = 100"
            ) from None
        for name, value in (("SCORE_THRESH", made.threshold), *((f"CLASS_THRESHOLDS[{k}]", v) for k, v in pairs)):
            if not 0.0 <= value <= 1.0:
                raise TinyVocError(f"{name} = {value} is not a score between 0 and 1")
        if made.max_per_image < 1:
            raise TinyVocError(f"MAX_PER_IMAGE = {made.max_per_image} keeps nothing; use 1 or more (100 is COCO's)")
        return made

    @classmethod
    def above_floor(
        cls, threshold: float, score_floor: float, class_thresholds: Mapping | None = None, max_per_image: int = 100
    ) -> Selection:
        """:meth:`of`, refusing thresholds below ``score_floor``: the cached predictions hold nothing under it."""
        chosen = cls.of(threshold, class_thresholds, max_per_image)
        if chosen.lowest < score_floor:
            raise TinyVocError(
                f"SCORE_THRESH / CLASS_THRESHOLDS go down to {chosen.lowest:g}, below the score floor "
                f"{score_floor:g} that the predictions are cached at; use {score_floor:g} or more"
            )
        return chosen

    def at(self, threshold: float) -> Selection:
        """The same per-class thresholds and cap at another score threshold (the slider, the sweep)."""
        return replace(self, threshold=float(threshold))

    @property
    def lowest(self) -> float:
        """The lowest score this selection can keep: the cache must reach down to it."""
        return min([self.threshold, *(t for _, t in self.class_thresholds)])

    def thresholds_for(self, category_ids: np.ndarray) -> np.ndarray:
        """Each row's threshold: its class's own, else :attr:`threshold`."""
        out = np.full(len(category_ids), self.threshold, dtype=float)
        for category_id, threshold in self.class_thresholds:
            out[category_ids == category_id] = threshold
        return out

    def keep(self, scores: np.ndarray, category_ids: np.ndarray, image_ids: np.ndarray) -> np.ndarray:
        """A boolean mask over rows given as columns: the one place where "score >= threshold" is written."""
        scores = np.asarray(scores, dtype=float)
        passing = np.flatnonzero(scores >= self.thresholds_for(np.asarray(category_ids)))
        image_ids = np.asarray(image_ids)
        order = passing[np.lexsort((-scores[passing], image_ids[passing]))]  # by image, best first
        ranked = image_ids[order]
        starts = np.r_[0, np.flatnonzero(ranked[1:] != ranked[:-1]) + 1]
        rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
        kept = np.zeros(len(scores), dtype=bool)
        kept[order[rank < self.max_per_image]] = True
        return kept

    def apply(self, detections: Sequence[dict], keys: tuple[str, ...] | None = None) -> list[dict]:
        """The kept rows, grouped by image id (ascending), best first in each; only ``keys`` when given."""
        columns = Columns.of(detections)
        kept = np.flatnonzero(self.keep(columns.scores, columns.category_ids, columns.image_ids))
        kept = kept[np.lexsort((-columns.scores[kept], columns.image_ids[kept]))]
        return [{k: detections[i][k] for k in keys} if keys else dict(detections[i]) for i in kept]

    def describe(self) -> str:
        """How the notebook prints it: ``score >= 0.05, class 15 >= 0.3, at most 100 per image``."""
        parts = [f"score >= {self.threshold:g}", *(f"class {c} >= {t:g}" for c, t in self.class_thresholds)]
        return ", ".join(parts) + f", at most {self.max_per_image} per image"


@dataclass(frozen=True)
class Columns:
    """The score, class and image of each detection as arrays, for selecting thousands of rows at once."""

    scores: np.ndarray
    category_ids: np.ndarray
    image_ids: np.ndarray

    @classmethod
    def of(cls, detections: Sequence[dict]) -> Columns:
        return cls(
            np.array([d["score"] for d in detections], dtype=float),
            np.array([d["category_id"] for d in detections], dtype=np.int64),
            np.array([d["image_id"] for d in detections], dtype=np.int64),
        )

    def keep(self, selection: Selection) -> np.ndarray:
        return selection.keep(self.scores, self.category_ids, self.image_ids)
