"""A run's recipe and name: what a training call was asked for, and the folder name it gives (``output/runs/<name>/``).

A student changes the recipe to see what helps; each recipe keeps its own run, named after it by
:meth:`Recipe.auto_name` (``smoke``, ``strong+BASE_LR=0.01+MAX_ITER=5000``) or by the user
(:func:`check_name`). The recipe is saved in the run's ``recipe.json`` with the dataset it learns.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from ..core.atomic import write_json
from ..core.errors import TinyVocError
from ..core.paths import UNSAFE_IN_NAMES, TrainFiles, safe_name_part
from ..dataset.record import DatasetRecord
from .profiles import is_file_profile, resolve_profile

NAME_LIMIT = 64  # longer auto names are cut and end in a hash of the whole name: stable, still readable
RESERVED = ("auto", "best", "latest", "fused")  # fused: the fusion of runs has its caches in predictions/fused/
_clean = safe_name_part


@dataclass(frozen=True)
class Recipe:
    """What a training call was asked for: the profile (a built-in name or a YAML path) and the settings beside it."""

    profile: str
    opts: tuple = ()
    max_iter: int | None = None
    ims_per_batch: int | None = None
    time_budget_h: float | None = None
    pretrained: bool = True
    weights: str = "auto"  # notebook 02's WEIGHTS as given (weights.choose resolves "auto" with the dataset record)
    changes: tuple = ()  # the config lines in which the run differs from its profile (config.config_changes)
    dataset: str = ""  # the dataset it learns (``DatasetRecord.name``); "" in a recipe from before runs knew it
    fingerprint: str = ""  # that dataset's classes and split (``DatasetRecord.fingerprint``): what a run belongs to

    def settings(self) -> list[tuple[str, str]]:
        """The settings given beside the profile, as ``(short key, value)``: OPTS keys by their last part."""
        pairs = [(str(k).rsplit(".", 1)[-1], str(v)) for k, v in zip(self.opts[::2], self.opts[1::2])]
        if self.max_iter:
            pairs.append(("MAX_ITER", str(self.max_iter)))
        if self.ims_per_batch:
            pairs.append(("IMS_PER_BATCH", str(self.ims_per_batch)))
        if self.time_budget_h is not None:
            pairs.append(("TIME_BUDGET_H", f"{self.time_budget_h:g}"))
        if not self.pretrained:
            pairs.append(("PRETRAINED", "False"))
        if self.weights != "auto":
            pairs.append(("WEIGHTS", self.weights))
        return pairs

    @classmethod
    def given(
        cls,
        profile: str = "auto",
        opts=(),
        max_iter=0,
        ims_per_batch=0,
        time_budget_h=None,
        pretrained=True,
        weights="auto",
    ) -> Recipe:
        """The recipe of 02's settings as a training call reads them: the profile resolved (``auto``: strong on a
        GPU, smoke on a CPU; a YAML file by its absolute path) and 0, "the profile's own", as None."""
        max_iter, ims_per_batch = int(max_iter or 0) or None, int(ims_per_batch or 0) or None
        weights = str(weights or "auto").strip().lower()
        return cls(
            resolve_profile(profile), tuple(opts or ()), max_iter, ims_per_batch, time_budget_h, pretrained, weights
        )

    @property
    def profile_name(self) -> str:
        return Path(self.profile).stem if is_file_profile(self.profile) else self.profile

    def auto_name(self) -> str:
        """The run's name: the profile or YAML stem, then ``+KEY=VALUE`` for each setting; hashed when long."""
        name = "+".join([_clean(self.profile_name), *(f"{_clean(k)}={_clean(v)}" for k, v in self.settings())])
        if len(name) > NAME_LIMIT:
            digest = hashlib.sha1(name.encode()).hexdigest()[:8]
            name = f"{name[: NAME_LIMIT - 9].rstrip('+=,.-')}-{digest}"
        return name

    def describe(self) -> str:
        """``smoke, OPTS SOLVER.BASE_LR 0.01, MAX_ITER 20``: the recipe as the notebook's settings say it."""
        parts = [self.profile_name]
        if self.opts:
            parts.append("OPTS " + " ".join(str(o) for o in self.opts))
        parts += [f"{k} {v}" for k, v in self.settings()[len(self.opts) // 2 :]]
        return ", ".join(parts)

    def on(self, record: DatasetRecord) -> Recipe:
        """This recipe on ``record``'s dataset: a run trained from it belongs to that dataset."""
        return replace(self, dataset=record.name, fingerprint=record.fingerprint)

    def save(self, files: TrainFiles) -> None:
        write_json(files.recipe, {**asdict(self), "opts": [str(o) for o in self.opts]}, indent=2)

    @classmethod
    def load(cls, files: TrainFiles) -> Recipe | None:
        try:
            data = json.loads(files.recipe.read_text())
            data = {k: v for k, v in data.items() if k in {f.name for f in fields(cls)}}
            return cls(**{**data, "opts": tuple(data.get("opts", ())), "changes": tuple(data.get("changes", ()))})
        except (OSError, ValueError, TypeError):
            return None


def check_name(name: str) -> str:
    """A run name given by the user, or a clear error: one folder name, of characters safe everywhere."""
    name = str(name).strip()
    if not name or name in (".", "..") or name.startswith(".") or UNSAFE_IN_NAMES.search(name) or len(name) > 100:
        raise TinyVocError(
            f"RUN {name!r} is not a usable run name: use letters, digits and . _ , = + - (at most 100, not "
            'starting with a dot), e.g. RUN = "lr0.01"; or RUN = "auto" to name the run after its recipe'
        )
    if name.lower() in RESERVED:
        raise TinyVocError(f"RUN {name!r} is a reserved word, not a run name; choose another name")
    return name


def is_auto(run) -> bool:
    """``RUN = "auto"`` (or empty): the run is named after its recipe."""
    return str(run or "auto").strip().lower() == "auto"


def wanted(run: str, recipe: Recipe) -> str:
    """The run a training call asks for by name: ``run`` itself, or with ``"auto"`` the recipe's name.

    Reads and writes nothing, so 02 can say before training which run Kaggle's attached outputs should
    bring in (``kaggle.bring_in_for_training``); :func:`choose` then picks the folder (a numbered variant
    of this name, or a folder holding the same recipe under another name, is found there).
    """
    return recipe.auto_name() if is_auto(run) else str(run)
