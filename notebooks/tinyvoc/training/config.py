"""The training config, built in one place and frozen, and its portable text (what resume compares)."""

from __future__ import annotations

from pathlib import Path

from ..core.paths import Outputs
from ..dataset.record import DatasetRecord
from .profiles import build_config, resolve_profile
from .weights import fetch


def config_signature(cfg) -> str:
    """The config as saved and compared on resume, without this runtime's paths (a new runtime may resume)."""
    portable = cfg.clone()
    portable.defrost()
    portable.OUTPUT_DIR = ""
    portable.MODEL.WEIGHTS = Path(cfg.MODEL.WEIGHTS).name
    return portable.dump()


def train_config(
    outputs: Outputs,
    profile: str = "auto",
    max_iter: int | None = None,
    overrides: list | None = None,
    *,
    record: DatasetRecord,
    allow_cpu: bool = False,
    pretrained: bool = True,
):
    """The profile resolved into a frozen detectron2 config for this dataset, with local weights
    (or, with ``pretrained=False``, none: see :func:`profiles.build_config`); returns ``(profile, cfg)``.

    The one place a training config is built: the profile's recipe, this dataset's splits and
    classes, ``max_iter`` and ``overrides``. A time budget's plan then makes a planned copy
    (:meth:`budget.Plan.applied_to`); nothing changes a config after it is frozen here.
    """
    profile = resolve_profile(profile, allow_cpu=allow_cpu)
    cfg = build_config(profile, len(record.class_names), str(outputs.train.dir), pretrained=pretrained)
    if not record.val_split:
        cfg.DATASETS.TEST = ()
        cfg.TEST.EVAL_PERIOD = 0
    if max_iter:
        cfg.SOLVER.MAX_ITER = int(max_iter)
        cfg.SOLVER.STEPS = tuple(s for s in cfg.SOLVER.STEPS if s < max_iter)
    if overrides:
        cfg.merge_from_list([str(x) for x in overrides])
    cfg.MODEL.WEIGHTS = fetch(cfg.MODEL.WEIGHTS)
    cfg.freeze()
    return profile, cfg
