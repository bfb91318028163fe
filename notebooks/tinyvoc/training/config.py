"""The training config, built in one place and frozen, and its portable text (what resume compares)."""

from __future__ import annotations

from pathlib import Path

from ..core.errors import TinyVocError
from ..core.paths import Outputs
from ..dataset.record import DatasetRecord
from .profiles import build_config, load_recipe, resolve_profile, unknown_key_message
from .weights import choose, fetch


def config_signature(cfg) -> str:
    """The config as saved and compared on resume, without this runtime's paths (a new runtime may resume)."""
    portable = cfg.clone()
    portable.defrost()
    portable.OUTPUT_DIR = ""
    portable.MODEL.WEIGHTS = Path(cfg.MODEL.WEIGHTS).name
    return portable.dump()


_KINDS = {
    float: "a number with a decimal point (e.g. 0.01 or 1.0)",
    int: "a whole number",
    bool: "True or False",
    str: "text",
    tuple: "a tuple, e.g. (512, 640) or (800,)",
    list: "a list, e.g. [512, 640]",
}


def apply_opts(cfg, opts, where: str = "OPTS") -> None:
    """Merge detectron2's ``KEY VALUE ...`` list into ``cfg``, each pair checked first.

    An odd number of items, a key detectron2 does not have (with the nearest one when close), or a
    value of another type than the key takes stop with a message naming the key; detectron2's own
    ``merge_from_list`` would stop with a bare assertion or a type-mismatch traceback. Values are
    text as on a command line (``"0.01"``, ``"(512, 640)"``) or Python values (papermill passes lists).
    """
    opts = [str(item) for item in (opts or [])]
    if len(opts) % 2:
        raise TinyVocError(
            f"{where} takes KEY VALUE pairs, e.g. ['SOLVER.BASE_LR', '0.01']; of its {len(opts)} items the last, "
            f"{opts[-1]!r}, has no value"
        )
    for key, value in zip(opts[0::2], opts[1::2]):
        node, *path = [cfg, *key.split(".")]
        for part in path[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and isinstance(node.get(path[-1]), dict):
            raise TinyVocError(f"{where}: {key} is a group of keys, not one; give one of them, e.g. {key}.<NAME>")
        if not isinstance(node, dict) or path[-1] not in node:
            raise TinyVocError(unknown_key_message(key, cfg, where))
        current = node[path[-1]]
        try:
            cfg.merge_from_list([key, value])
        except (ValueError, AssertionError, KeyError, SyntaxError):
            kind = _KINDS.get(type(current), type(current).__name__)
            raise TinyVocError(f"{where}: {key} takes {kind} (now {current!r}), not {value!r}") from None


def check_opts(profile: str, opts) -> None:
    """Stop on bad ``opts`` before anything runs (the command line checks before it starts the notebooks)."""
    apply_opts(load_recipe(resolve_profile(profile, allow_cpu=True)), opts)


def config_changes(before, after) -> list[str]:
    """``SOLVER.BASE_LR: 0.005 -> 0.01``, one line per key whose value differs, in the config's order."""
    from .profiles import config_keys

    def value(cfg, key):
        for part in key.split("."):
            cfg = cfg[part]
        return cfg

    lines = []
    for key in config_keys(after):
        old, new = value(before, key), value(after, key)
        if old != new:
            lines.append(f"{key}: {old!r} -> {new!r}")
    return lines


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


def train_config(*args, **kwargs):
    """:func:`configured`, saying the lines in which the config differs from its profile; ``(profile, cfg)``."""
    profile, cfg, changes = configured(*args, **kwargs)
    if changes:
        print(f"This run's config differs from profile {profile} in:\n  " + "\n  ".join(changes))
    return profile, cfg


def configured(
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
    output_dir: str | Path | None = None,
    weights: str = "auto",
):
    """The profile resolved into a frozen detectron2 config for this dataset, with local weights
    (or, with ``pretrained=False``, none: see :func:`profiles.build_config`); returns ``(profile, cfg, changes)``.
    ``weights``: notebook 02's ``WEIGHTS`` (ImageNet, or COCO's Mask R-CNN for your own data: :func:`weights.choose`).

    The one place a training config is built: the profile's recipe, this dataset's splits and
    classes, the batch (``ims_per_batch``, see :func:`linear_scaling`), ``max_iter`` and ``overrides``
    (detectron2's ``KEY VALUE`` list, notebook 02's ``OPTS``: see :func:`apply_opts`). ``changes`` are the
    lines in which the result differs from the profile (:func:`config_changes`), which :func:`train_config`
    prints so a student sees what they changed.
    A time budget's plan then makes a planned copy (:meth:`budget.Plan.applied_to`); nothing changes
    a config after it is frozen here.

    The batch rule: ``SOLVER.IMS_PER_BATCH`` is the total over all ``world_size`` workers (detectron2's
    meaning), so 1 or N workers train the same recipe and the config does not depend on the worker
    count: a run started on 2 workers resumes on 1.

    ``output_dir``: the run's folder (``OUTPUT_DIR``); by default ``output/runs``, as when the run is not
    chosen yet (``training.runs``: its name depends on this config; the config's signature does not
    depend on the folder).
    """
    profile = resolve_profile(profile, allow_cpu=allow_cpu)
    output_dir = str(output_dir or outputs.runs_dir)
    recipe = build_config(profile, len(record.class_names), output_dir, pretrained=pretrained)
    if not record.val_split:
        recipe.DATASETS.TEST = ()
        recipe.TEST.EVAL_PERIOD = 0
    cfg = recipe.clone()
    # the data's fact, not the recipe's: RLE masks need "bitmask" (polygon fails in detectron2's mapper); set before
    # OPTS, so it shows among the changes and an explicit INPUT.MASK_FORMAT in OPTS still wins
    cfg.INPUT.MASK_FORMAT = record.mask_format
    # 01's KEEP_EMPTY_IMAGES: images without objects train as negatives instead of being left out (detectron2's way)
    cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS = not record.keep_empty_images
    cfg.MODEL.WEIGHTS = choose(cfg, weights, is_course=record.is_course, pretrained=pretrained)  # a change shown too
    if ims_per_batch:
        _set_batch(cfg, profile, ims_per_batch)
    if max_iter:
        cfg.SOLVER.MAX_ITER = int(max_iter)
        cfg.SOLVER.STEPS = tuple(s for s in cfg.SOLVER.STEPS if s < max_iter)
    apply_opts(cfg, overrides)
    changes = config_changes(recipe, cfg)
    check_batch(int(cfg.SOLVER.IMS_PER_BATCH), world_size)
    cfg.MODEL.WEIGHTS = fetch(cfg.MODEL.WEIGHTS)
    cfg.freeze()
    return profile, cfg, changes
