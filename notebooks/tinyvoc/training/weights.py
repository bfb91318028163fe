"""Fetch pretrained weights once, with a timeout, so an offline machine fails fast and clearly.

detectron2 would download ``detectron2://`` URLs itself, but with no timeout it can hang for
minutes offline and then fail deep inside a checkpoint loader. Here the file is fetched to a
cache first (atomically, with progress) and the config points at the local copy. On Kaggle with Internet off
the file is taken from an attached input that holds it (``runtime.kaggle``).

Which weights (notebook 02's ``WEIGHTS``, :func:`choose`): the profile's ImageNet backbone, or the model zoo's
Mask R-CNN X-101-32x8d-FPN trained on COCO (:data:`COCO_WEIGHTS`), whose every layer but the class-specific heads
transfers to any dataset. ``"auto"`` takes ImageNet for the course's data (the course allows ImageNet weights only)
and COCO for your own: on a few hundred images a detector pretrained on detection learns far faster than a
backbone pretrained on classification. The COCO heads' outputs are COCO's 80 classes: they are dropped when the
file is loaded (:func:`without_class_heads`), always, also when your dataset happens to have 80 classes too (then
detectron2 would load them silently, their shapes fitting, and start your classes as COCO's).
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

from ..core.atomic import atomic_path
from ..core.errors import TinyVocError
from ..core.paths import USER_CACHE
from ..runtime import kaggle

D2_PREFIX = "detectron2://"
D2_BASE_URL = "https://dl.fbaipublicfiles.com/detectron2/"
CACHE_DIR = Path(os.environ.get("TINYVOC_WEIGHTS_CACHE") or USER_CACHE / "weights")
CHOICES = ("auto", "imagenet", "coco")  # notebook 02's WEIGHTS (core/settings.py)
COCO_WEIGHTS = "detectron2://COCO-InstanceSegmentation/mask_rcnn_X_101_32x8d_FPN_3x/139653917/model_final_2d9806.pkl"
IMAGENET_URL_PART = "ImageNetPretrained/"  # the model zoo's ImageNet backbones (the X-101 profiles' MODEL.WEIGHTS)
IMAGENET_FILES = ("X-101-32x8d.pkl", "R-50.pkl", "R-101.pkl", "X-152-32x8d-IN5k.pkl")  # their names, once fetched
# the layers whose shapes and meaning are the classes': COCO's 80 (+ background) in the COCO file
CLASS_HEADS = (
    "roi_heads.box_predictor.cls_score.",
    "roi_heads.box_predictor.bbox_pred.",
    "roi_heads.mask_head.predictor.",
)


def url_for(weights: str) -> str:
    return D2_BASE_URL + weights[len(D2_PREFIX) :] if weights.startswith(D2_PREFIX) else weights


def fetch(weights: str, cache_dir: Path = CACHE_DIR, timeout: float = 30) -> str:
    """Return a local path for ``weights`` (a path, an http(s) URL or a ``detectron2://`` name)."""
    if not weights or not (weights.startswith(D2_PREFIX) or weights.startswith(("http://", "https://"))):
        if weights and not Path(weights).exists():
            raise TinyVocError(f"weights file {weights} not found")
        return weights
    url = url_for(weights)
    target = Path(cache_dir) / url.rsplit("/", 1)[-1]
    if target.exists():
        return str(target)
    attached = kaggle.find_input_file(target.name) if kaggle.on_kaggle() else None
    if attached:  # Kaggle with Internet off: the file added to an attached dataset, read in place
        print(f"pretrained weights: {attached} (attached input)")
        return str(attached)
    print(f"downloading {url} -> {target}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, atomic_path(target) as tmp:
            total = int(resp.headers.get("Content-Length") or 0)
            done, step = 0, 0
            with open(tmp, "wb") as out:
                while block := resp.read(1 << 20):
                    out.write(block)
                    done += len(block)
                    if total and done * 10 // total > step:
                        step = done * 10 // total
                        print(f"  {done / 2**20:.0f} / {total / 2**20:.0f} MiB")
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        kaggle_way = f"; on Kaggle, add {target.name} to an attached dataset" if kaggle.on_kaggle() else ""
        raise TinyVocError(
            f"Could not download pretrained weights from {url}: {exc}. This needs internet (Colab has it). "
            f"Offline, copy the file to {target} and run again{kaggle_way}."
        ) from exc
    return str(target)


def is_coco(path) -> bool:
    """Whether ``path`` (a URL, or the local copy :func:`fetch` returned) is the COCO Mask R-CNN file."""
    return bool(path) and Path(str(path)).name == Path(COCO_WEIGHTS).name


def source(path) -> str:
    """``"coco"``, ``"imagenet"``, ``"random"`` (no weights) or the file's name: what the runs table shows."""
    if not path:
        return "random"
    if is_coco(path):
        return "coco"
    name = Path(str(path)).name
    return "imagenet" if IMAGENET_URL_PART in str(path) or name in IMAGENET_FILES else name


def fits_coco(cfg) -> bool:
    """Whether ``cfg``'s model is the COCO file's: Mask R-CNN on a ResNeXt-101 32x8d FPN backbone."""
    resnets = cfg.MODEL.RESNETS
    return (
        cfg.MODEL.META_ARCHITECTURE == "GeneralizedRCNN"
        and bool(cfg.MODEL.MASK_ON)
        and cfg.MODEL.BACKBONE.NAME == "build_resnet_fpn_backbone"
        and (resnets.DEPTH, resnets.NUM_GROUPS, resnets.WIDTH_PER_GROUP) == (101, 32, 8)
    )


def choose(cfg, weights: str = "auto", *, is_course: bool, pretrained: bool = True) -> str:
    """``MODEL.WEIGHTS`` for notebook 02's ``WEIGHTS`` (``cfg``: the profile's config, its weights the recipe's).

    ``"imagenet"``: the profile's own ImageNet weights. ``"coco"``: :data:`COCO_WEIGHTS` (the model must be its
    X-101-32x8d Mask R-CNN, :func:`fits_coco`). ``"auto"``: ImageNet on the course's data (``is_course``), COCO on
    your own when the profile starts from the ImageNet X-101 (strong, reference, a file built on them); any other
    profile keeps its own weights (smoke's random init, a YAML file's MODEL.WEIGHTS). ``pretrained=False`` is random
    init (``profiles.build_config`` emptied MODEL.WEIGHTS): a WEIGHTS other than auto beside it contradicts it.
    """
    asked = str(weights or "auto").strip().lower()
    if asked not in CHOICES:
        raise TinyVocError(f"WEIGHTS takes {', '.join(CHOICES)}, not {weights!r}")
    own = str(cfg.MODEL.WEIGHTS)
    if not pretrained:
        if asked != "auto":
            raise TinyVocError(
                f'WEIGHTS = "{asked}" and PRETRAINED = False contradict each other: PRETRAINED = False starts from '
                'random weights. Set PRETRAINED = True to use these weights, or WEIGHTS = "auto" for random init.'
            )
        return own
    imagenet = IMAGENET_URL_PART in own
    if asked == "auto":
        asked = "coco" if not is_course and imagenet and fits_coco(cfg) else ""
    if asked == "imagenet" and not imagenet:
        kept = f"MODEL.WEIGHTS {own}" if own else "random init (MODEL.WEIGHTS is empty)"
        raise TinyVocError(
            f'WEIGHTS = "imagenet": this profile has no ImageNet weights to start from, it starts from {kept}. '
            'Leave WEIGHTS = "auto" to keep that, or train strong or reference (ImageNet X-101).'
        )
    if asked == "coco":
        if not fits_coco(cfg):
            r = cfg.MODEL.RESNETS
            raise TinyVocError(
                f'WEIGHTS = "coco" is the model zoo\'s Mask R-CNN X-101-32x8d-FPN trained on COCO; this profile builds '
                f"another model (ResNet depth {r.DEPTH}, {r.NUM_GROUPS}x{r.WIDTH_PER_GROUP}d, mask head "
                f"{'on' if cfg.MODEL.MASK_ON else 'off'}). Train strong or reference (or a file built on them), "
                'or leave WEIGHTS = "auto".'
            )
        return COCO_WEIGHTS
    return own


def course_warning(weights: str, is_course: bool) -> str | None:
    """What 02 says when COCO weights are asked for on the course's data: allowed, but not within its rules."""
    if is_course and str(weights or "").strip().lower() == "coco":
        return (
            'Note: WEIGHTS = "coco" on the course\'s data. The course allows ImageNet weights only, so this run does '
            'not follow its rules (WEIGHTS = "auto" or "imagenet" does); it trains as asked.'
        )
    return None


def without_class_heads(state: dict) -> tuple[dict, list[str]]:
    """``state`` (a checkpoint's ``model``) without the class-specific heads (:data:`CLASS_HEADS`), and their keys.

    The model then keeps its own freshly initialised heads, sized for this dataset's classes.
    """
    dropped = sorted(k for k in state if k.startswith(CLASS_HEADS))
    return {k: v for k, v in state.items() if k not in dropped}, dropped
