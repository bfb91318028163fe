"""Training profiles: detectron2 YAML files (``configs/``), one name or path picks a complete, commented recipe.

* ``reference.yaml``: the original course solution, hyper-parameter for hyper-parameter.
* ``strong.yaml``: the same X-101-32x8d backbone and ImageNet weights with what public results on this
  test set show works (multi-scale training, cosine schedule, longer training, low test threshold,
  flip + multi-scale TTA). The default on a GPU.
* ``smoke.yaml``: a CPU profile that learns the sample dataset in minutes (R18-FPN with BN from random
  weights; slim heads; 128 px images).

Each file names the model-zoo config it starts from in ``_BASE_``; the reasons for our values are
comments in the files. A user's own file anywhere (on Colab, typically on Drive) builds on a built-in
one with ``_BASE_: strong.yaml``: :func:`recipe_files` resolves a ``_BASE_`` as a built-in profile's
name first, then a model-zoo path, then a path relative to the file that names it (fvcore's own
``_BASE_`` handling knows only the last). What depends on this dataset and machine (datasets, classes,
channel order, output folder, seed, device and mixed precision, ``pretrained=False``) is not recipe:
:func:`build_config` applies it in code, after the files.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from ..core.errors import TinyVocError
from ..core.image_reader import LOADER_FORMAT
from ..runtime import colab, kaggle

CONFIGS = Path(__file__).parent / "configs"  # package data (pyproject.toml)
PROFILES = ("smoke", "reference", "strong")
GPU_PROFILES = ("reference", "strong")
BASE_KEY = "_BASE_"


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def hosted_runtime() -> str | None:
    """``"Colab"`` or ``"Kaggle"`` where the notebooks run on a hosted runtime (which trains on its GPU), else None."""
    return "Colab" if colab.on_colab() else "Kaggle" if kaggle.on_kaggle() else None


# Where a hosted runtime's GPU is switched on (the words of each site's menus).
GPU_SETTING = {
    "Colab": "Runtime > Change runtime type > T4 GPU > Save",
    "Kaggle": "the notebook's Settings > Accelerator > GPU T4 x2 (a phone-verified account)",
}


def no_gpu_message(where: str) -> str:
    """Why ``PROFILE = "auto"`` stops on a hosted runtime without a GPU, and the two ways on."""
    return (
        f'PROFILE = "auto" found no GPU on this {where} runtime (torch.cuda.is_available() is False: the runtime '
        "type is CPU, or the free GPU quota is used up for now). Nothing was trained. Turn the GPU on: "
        f"{GPU_SETTING[where]}, then run the notebooks again from 00 (a new runtime starts empty). To test the "
        'pipeline on this CPU instead, set PROFILE = "smoke": a 128-pixel model from random weights, not one to submit.'
    )


def is_file_profile(profile: str) -> bool:
    """A path to the user's own YAML file rather than a built-in profile's name."""
    return str(profile).lower().endswith((".yaml", ".yml"))


def built_in_file(name: str) -> Path | None:
    """``strong`` or ``strong.yaml`` -> the package's file; None for any other name."""
    stem = Path(str(name)).name
    stem = stem[: -len(".yaml")] if stem.endswith(".yaml") else stem
    return CONFIGS / f"{stem}.yaml" if stem in PROFILES and str(name) in (stem, f"{stem}.yaml") else None


def _zoo_file(name: str) -> Path | None:
    from detectron2 import model_zoo

    try:
        return Path(model_zoo.get_config_file(name))
    except RuntimeError:  # not a model-zoo config
        return None


def _read_yaml(path: Path) -> dict:
    import yaml

    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise TinyVocError(f"cannot read the config file {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise TinyVocError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise TinyVocError(f"{path} must hold config keys (KEY: value lines), not a {type(data).__name__}")
    return data


def recipe_files(profile: str) -> list[tuple[Path, dict | None]]:
    """The chain of files a profile is made of, the model-zoo file first: ``[(path, keys or None), ...]``.

    A model-zoo file comes with ``None`` (detectron2 merges it, its own ``_BASE_`` included); each of
    ours with its keys, ``_BASE_`` removed. A file that is missing, or a ``_BASE_`` loop, stops here.
    """
    path = built_in_file(profile) or Path(str(profile)).expanduser()
    chain: list[tuple[Path, dict | None]] = []
    seen: list[Path] = []
    while True:
        if not path.is_file():
            raise TinyVocError(
                f"config file {path} not found; PROFILE takes auto, {', '.join(PROFILES)} or the path of a .yaml file"
                + (f" (named in {seen[-1]})" if seen else "")
            )
        if path.resolve() in seen:
            raise TinyVocError(f"{path} builds on itself: the _BASE_ chain {' -> '.join(map(str, seen))} loops")
        seen.append(path.resolve())
        keys = _read_yaml(path)
        chain.insert(0, (path, keys))
        base = keys.pop(BASE_KEY, None)
        if base is None:
            return chain
        base = Path(str(base)).expanduser()
        own = built_in_file(str(base))
        zoo = None if own or base.is_absolute() else _zoo_file(str(base))
        if zoo is not None:
            chain.insert(0, (zoo, None))
            return chain
        path = own or (base if base.is_absolute() else path.parent / base)


def family(profile: str) -> str | None:
    """The built-in profile a profile is or builds on (``smoke``, ``reference``, ``strong``); None when
    a user's file starts from a model-zoo file alone. The family decides CPU or GPU rules and defaults."""
    for path, _ in recipe_files(profile):
        if path.parent == CONFIGS and path.stem in PROFILES:
            return path.stem
    return None


def resolve_profile(
    name: str, has_gpu: bool | None = None, allow_cpu: bool = False, hosted: str | None | bool = True
) -> str:
    """Turn ``auto`` into ``strong`` on a GPU and ``smoke`` on CPU; refuse GPU profiles on CPU.

    On Colab and Kaggle (``hosted``: True asks :func:`hosted_runtime`; a name or None says) ``auto`` without a
    GPU stops with :func:`no_gpu_message` instead: there it means the GPU is off or its quota spent, and a quiet
    ``smoke`` would train a toy model on the real data that 04 then submits. ``smoke`` named by hand still runs;
    ``allow_cpu`` (checking keys, not training) resolves as off those sites.

    A ``.yaml`` path is the user's own recipe: returned as an absolute path, after checking that its
    ``_BASE_`` chain resolves; it needs a GPU unless it builds on ``smoke``.
    """
    has_gpu = cuda_available() if has_gpu is None else has_gpu
    name = str(name or "auto").strip()
    if is_file_profile(name) and built_in_file(name) is None:
        path = str(Path(name).expanduser().resolve())
        gpu = family(path) != "smoke"
    else:
        path = name.lower()
        if path == "auto":
            where = hosted_runtime() if hosted is True else hosted
            if not has_gpu and where and not allow_cpu:
                raise TinyVocError(no_gpu_message(where))
            return "strong" if has_gpu else "smoke"
        if path not in PROFILES:
            raise TinyVocError(
                f"unknown profile {name!r}; choose one of auto, {', '.join(PROFILES)}, or give the path of a .yaml file"
            )
        gpu = path in GPU_PROFILES
    if gpu and not has_gpu and not allow_cpu:
        raise TinyVocError(
            f"profile {name!r} trains X-101 and needs a GPU, and none is visible (torch.cuda.is_available() "
            "is False). On Colab: Runtime > Change runtime type > T4 GPU. On CPU use PROFILE='smoke' (or a file with "
            "_BASE_: smoke.yaml)."
        )
    return path


def config_keys(cfg, prefix: str = "") -> list[str]:
    """Every leaf key of a config, dotted (``SOLVER.BASE_LR``)."""
    keys = []
    for key, value in cfg.items():
        dotted = f"{prefix}{key}"
        keys.extend(config_keys(value, dotted + ".") if isinstance(value, dict) else [dotted])
    return keys


def unknown_key_message(key: str, cfg, where: str) -> str:
    """``unknown config key 'SOLVER.BASE_LRR' in OPTS; did you mean SOLVER.BASE_LR?``"""
    close = difflib.get_close_matches(key, config_keys(cfg), n=1, cutoff=0.75)
    hint = f"; did you mean {close[0]}?" if close else " (detectron2's keys: detectron2/config/defaults.py)"
    return f"unknown config key {key!r} in {where}{hint}"


def merge_keys(cfg, keys: dict, where: str) -> None:
    """Merge a YAML file's keys into ``cfg``; an unknown key or a wrong type names the file and the key."""
    from detectron2.config import CfgNode

    try:
        cfg.merge_from_other_cfg(CfgNode(keys))
    except KeyError as exc:
        key = str(exc.args[0]).rsplit(": ", 1)[-1]
        raise TinyVocError(unknown_key_message(key, cfg, where)) from None
    except (ValueError, AssertionError) as exc:
        raise TinyVocError(f"{where}: {exc}") from None


def load_recipe(profile: str):
    """The profile's files merged onto detectron2's defaults: the recipe alone, nothing computed."""
    from detectron2.config import get_cfg

    cfg = get_cfg()
    for path, keys in recipe_files(profile):
        if keys is None:
            cfg.merge_from_file(str(path))
        else:
            merge_keys(cfg, keys, str(path))
    return cfg


def build_config(
    profile: str,
    num_classes: int,
    output_dir: str,
    *,
    has_gpu: bool | None = None,
    seed: int = 42,
    pretrained: bool = True,
):
    """Return a detectron2 CfgNode for ``profile`` (resolved, not ``auto``): the recipe, then this run's facts.

    ``pretrained=False`` (an explicit choice, never a fallback) starts the X-101 profiles from random
    weights with trainable BatchNorm, for machines that cannot download the ImageNet weights (the GPU
    check): the yaml's FrozenBN diverges without pretrained statistics. It measures speed and memory,
    not the accuracy a user gets.
    """
    from ..dataset.registry import TRAIN, VAL

    has_gpu = cuda_available() if has_gpu is None else has_gpu
    cfg = load_recipe(profile)
    cfg.DATASETS.TRAIN = (TRAIN,)
    cfg.DATASETS.TEST = (VAL,)
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = num_classes
    cfg.INPUT.FORMAT = LOADER_FORMAT  # the order detection_utils.read_image gives the loader and the predictor
    cfg.OUTPUT_DIR = str(output_dir)
    cfg.SEED = seed
    if family(profile) != "smoke":  # smoke is a CPU recipe; the others train on what this machine has
        cfg.MODEL.DEVICE = "cuda" if has_gpu else "cpu"
        cfg.SOLVER.AMP.ENABLED = has_gpu  # mixed precision on GPU by default
        if not pretrained:
            cfg.MODEL.WEIGHTS = ""
            cfg.MODEL.RESNETS.NORM = "naiveSyncBN"  # as smoke: BN over all workers, BatchNorm2d itself on one
            cfg.MODEL.BACKBONE.FREEZE_AT = 0
    return cfg


def describe_weights(cfg, profile: str) -> str:
    """One line for the notebook and the run record: where the backbone's weights come from."""
    from .weights import is_coco

    if is_coco(cfg.MODEL.WEIGHTS):
        classes = cfg.MODEL.ROI_HEADS.NUM_CLASSES
        return (
            f"pretrained on COCO: {Path(cfg.MODEL.WEIGHTS).name} (Mask R-CNN X-101-32x8d-FPN 3x), its class heads "
            f"(box classifier, box regressor, mask predictor) re-initialised for {classes} classes"
        )
    if cfg.MODEL.WEIGHTS:
        return f"pretrained: {Path(cfg.MODEL.WEIGHTS).name}"
    if profile == "smoke":
        return "random init (the smoke profile learns the sample from scratch)"
    if not is_file_profile(profile):
        return "random init (PRETRAINED = False): no pretrained weights; not the accuracy a real run gets"
    return "random init (MODEL.WEIGHTS is empty, or PRETRAINED = False)"
