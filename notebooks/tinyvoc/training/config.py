"""The training config, built in one place and frozen, and its portable text (what resume compares)."""

from __future__ import annotations

from pathlib import Path

from ..core.errors import TinyVocError
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


def linear_scaling(base_lr: float, warmup_iters: int, profile_batch: int, batch: int) -> tuple[float, int]:
    """BASE_LR and warmup for ``batch`` images per iteration, from a recipe tuned for ``profile_batch``.

    The linear scaling rule (Goyal et al., 2017, "ImageNet in 1 hour"; detectron2's
    ``auto_scale_workers``): the learning rate grows with the batch, and the warmup keeps its number
    of images, so it takes fewer iterations.
    """
    scale = batch / profile_batch
    return base_lr * scale, max(1, round(warmup_iters / scale))


def _set_batch(cfg, profile: str, ims_per_batch) -> None:
    """``IMS_PER_BATCH`` (the total over all workers) in place of the profile's, with its LR and warmup scaled."""
    batch, own = int(ims_per_batch), int(cfg.SOLVER.IMS_PER_BATCH)
    if batch < 1:
        raise TinyVocError(f"IMS_PER_BATCH must be a positive number of images (0: the profile's {own}), not {batch}")
    if batch == own:
        return
    lr, warmup = linear_scaling(cfg.SOLVER.BASE_LR, cfg.SOLVER.WARMUP_ITERS, own, batch)
    print(
        f"Batch {batch} images per iteration instead of the {profile} profile's {own}: BASE_LR {cfg.SOLVER.BASE_LR:g} "
        f"-> {lr:.4g}, warmup {cfg.SOLVER.WARMUP_ITERS} -> {warmup} iterations (linear scaling rule)"
    )
    cfg.SOLVER.IMS_PER_BATCH, cfg.SOLVER.BASE_LR, cfg.SOLVER.WARMUP_ITERS = batch, lr, warmup


def check_batch(batch: int, workers: int) -> None:
    """Stop unless the total batch splits evenly over the workers (detectron2 asserts it deep in its loader)."""
    if batch % workers:
        fits = [n for n in range(1, batch + 1) if batch % n == 0]
        raise TinyVocError(
            f"a batch of {batch} images (IMS_PER_BATCH, the total over all workers) cannot be split evenly over "
            f"{workers} workers: set IMS_PER_BATCH to a multiple of {workers} (e.g. {workers * -(-batch // workers)}) "
            f"or use {', '.join(map(str, fits))} workers"
        )


def train_config(
    outputs: Outputs,
    profile: str = "auto",
    max_iter: int | None = None,
    overrides: list | None = None,
    *,
    record: DatasetRecord,
    allow_cpu: bool = False,
    pretrained: bool = True,
    ims_per_batch: int | None = None,
    world_size: int = 1,
):
    """The profile resolved into a frozen detectron2 config for this dataset, with local weights
    (or, with ``pretrained=False``, none: see :func:`profiles.build_config`); returns ``(profile, cfg)``.

    The one place a training config is built: the profile's recipe, this dataset's splits and
    classes, the batch (``ims_per_batch``, see :func:`linear_scaling`), ``max_iter`` and ``overrides``.
    A time budget's plan then makes a planned copy (:meth:`budget.Plan.applied_to`); nothing changes
    a config after it is frozen here.

    The batch rule: ``SOLVER.IMS_PER_BATCH`` is the total over all ``world_size`` workers (detectron2's
    meaning), so 1 or N workers train the same recipe and the config does not depend on the worker
    count: a run started on 2 workers resumes on 1.
    """
    profile = resolve_profile(profile, allow_cpu=allow_cpu)
    cfg = build_config(profile, len(record.class_names), str(outputs.train.dir), pretrained=pretrained)
    if not record.val_split:
        cfg.DATASETS.TEST = ()
        cfg.TEST.EVAL_PERIOD = 0
    if ims_per_batch:
        _set_batch(cfg, profile, ims_per_batch)
    if max_iter:
        cfg.SOLVER.MAX_ITER = int(max_iter)
        cfg.SOLVER.STEPS = tuple(s for s in cfg.SOLVER.STEPS if s < max_iter)
    if overrides:
        cfg.merge_from_list([str(x) for x in overrides])
    check_batch(int(cfg.SOLVER.IMS_PER_BATCH), world_size)
    cfg.MODEL.WEIGHTS = fetch(cfg.MODEL.WEIGHTS)
    cfg.freeze()
    return profile, cfg
