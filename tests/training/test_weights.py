"""Pretrained weights: fetched once, with a timeout; offline fails fast and clearly, leaving nothing behind. Which
weights (WEIGHTS): ImageNet for the course, COCO's Mask R-CNN for your own data, its class heads started fresh."""

import time

import pytest

from tinyvoc.core.errors import TinyVocError
from tinyvoc.core.paths import Outputs
from tinyvoc.dataset.record import DatasetRecord
from tinyvoc.training import runs, weights
from tinyvoc.training.config import configured
from tinyvoc.training.profiles import build_config, describe_weights


def test_weights_download_offline_fails_fast(tmp_path):
    started = time.monotonic()
    with pytest.raises(TinyVocError, match="Could not download pretrained weights.*Offline, copy the file"):
        weights.fetch("http://127.0.0.1:9/X-101-32x8d.pkl", cache_dir=tmp_path, timeout=5)
    assert time.monotonic() - started < 30
    assert not list(tmp_path.iterdir()), "no partial file may be left behind"
    assert weights.url_for("detectron2://ImageNetPretrained/FAIR/X-101-32x8d.pkl") == (
        "https://dl.fbaipublicfiles.com/detectron2/ImageNetPretrained/FAIR/X-101-32x8d.pkl"
    )
    local = tmp_path / "w.pth"
    local.write_bytes(b"x")
    assert weights.fetch(str(local)) == str(local)
    with pytest.raises(TinyVocError, match="not found"):
        weights.fetch(str(tmp_path / "missing.pth"))


# --- WEIGHTS: ImageNet for the course's data, COCO's Mask R-CNN (its class heads dropped) for your own ---------------

ZOO_KEYS = {  # a few of the COCO file's keys, with its shapes where they name the classes (80 + background)
    "backbone.bottom_up.stem.conv1.weight": (4, 3, 3, 3),
    "roi_heads.box_head.fc1.weight": (6, 4),
    "roi_heads.box_predictor.cls_score.weight": (81, 6),
    "roi_heads.box_predictor.cls_score.bias": (81,),
    "roi_heads.box_predictor.bbox_pred.weight": (320, 6),
    "roi_heads.box_predictor.bbox_pred.bias": (320,),
    "roi_heads.mask_head.predictor.weight": (80, 4, 1, 1),
    "roi_heads.mask_head.predictor.bias": (80,),
}


def _zoo_like_model(classes: int):
    """A module whose parameter names are the zoo's, its class heads sized for ``classes`` (80: COCO's own shapes)."""
    from torch import nn

    def node(**children):
        module = nn.Module()
        for name, child in children.items():
            module.add_module(name, child)
        return module

    return node(
        backbone=node(bottom_up=node(stem=node(conv1=nn.Conv2d(3, 4, 3, bias=False)))),
        roi_heads=node(
            box_head=node(fc1=nn.Linear(4, 6, bias=False)),
            box_predictor=node(cls_score=nn.Linear(6, classes + 1), bbox_pred=nn.Linear(6, 4 * classes)),
            mask_head=node(predictor=nn.Conv2d(4, classes, 1)),
        ),
    )


@pytest.fixture
def coco_file(tmp_path, monkeypatch):
    """A small file in the model zoo's format (``{"model": numpy arrays, "__author__": ...}``) standing for the COCO
    Mask R-CNN, under its name, and ``weights.COCO_WEIGHTS`` pointing at it (no network)."""
    import pickle

    import numpy as np

    rng = np.random.default_rng(0)
    state = {key: rng.standard_normal(shape).astype(np.float32) for key, shape in ZOO_KEYS.items()}
    path = tmp_path / "zoo" / "model_final_2d9806.pkl"
    path.parent.mkdir()
    path.write_bytes(pickle.dumps({"model": state, "__author__": "Detectron2 Model Zoo"}))
    monkeypatch.setattr(weights, "COCO_WEIGHTS", str(path))
    return path, state


@pytest.mark.parametrize("classes", [80, 3])
def test_the_coco_files_class_heads_start_fresh_also_when_their_shapes_fit(coco_file, tmp_path, classes):
    """80 classes: every shape fits and detectron2 would load COCO's heads as your classes; they are dropped."""
    import shutil

    import torch

    from tinyvoc.training.engine import AtomicCheckpointer

    path, state = coco_file
    torch.manual_seed(1)
    model = _zoo_like_model(classes)
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    AtomicCheckpointer(model, str(tmp_path / "run")).resume_or_load(str(path), resume=False)
    loaded = model.state_dict()
    for key in ("backbone.bottom_up.stem.conv1.weight", "roi_heads.box_head.fc1.weight"):
        assert torch.equal(loaded[key], torch.from_numpy(state[key])), key  # the rest of COCO's model transfers
    heads = [k for k in ZOO_KEYS if k.startswith(weights.CLASS_HEADS)]
    assert len(heads) == 6
    for key in heads:
        assert torch.equal(loaded[key], fresh[key]), key  # initialised for these classes, not COCO's
    if classes == 80:  # the same file under another name is someone's own model: loaded whole, as detectron2 does
        other = shutil.copy(path, tmp_path / "my_model.pkl")
        AtomicCheckpointer(model, str(tmp_path / "run")).resume_or_load(str(other), resume=False)
        assert all(torch.equal(model.state_dict()[k], torch.from_numpy(state[k])) for k in heads)


def _record(source: str, classes: int = 3) -> DatasetRecord:
    names = [f"class{i}" for i in range(classes)]
    return DatasetRecord(source, {}, "train.json", None, 0.0, 0, list(range(1, classes + 1)), names)


def test_auto_takes_imagenet_for_the_course_and_coco_for_your_own_data(coco_file, tmp_path, capsys):
    path, _ = coco_file
    profile, cfg, changes = configured(Outputs.at(tmp_path), "strong", record=_record("mine"), allow_cpu=True)
    assert cfg.MODEL.WEIGHTS == str(path) and weights.source(cfg.MODEL.WEIGHTS) == "coco"
    assert f"MODEL.WEIGHTS: 'detectron2://ImageNetPretrained/FAIR/X-101-32x8d.pkl' -> '{path}'" in changes
    assert describe_weights(cfg, profile).endswith("class heads (box classifier, box regressor, mask predictor) "
                                                   "re-initialised for 3 classes")  # fmt: skip
    strong = build_config("strong", 3, str(tmp_path), has_gpu=False)
    imagenet = "detectron2://ImageNetPretrained/FAIR/X-101-32x8d.pkl"
    for source in ("tinyvoc", "sample"):  # the course: the profile's ImageNet weights, as before WEIGHTS existed
        assert weights.choose(strong, "auto", is_course=_record(source).is_course) == imagenet
    assert weights.choose(strong, "imagenet", is_course=False) == imagenet
    assert weights.choose(strong, " COCO ", is_course=True) == str(path)  # allowed, with a note
    assert "The course allows ImageNet weights only" in weights.course_warning("coco", True)
    assert weights.course_warning("coco", False) is None and weights.course_warning("auto", True) is None
    assert weights.source(imagenet) == "imagenet" and weights.source("") == "random"
    # your own data on smoke keeps its random init; PRETRAINED = False keeps meaning random init
    smoke = build_config("smoke", 3, str(tmp_path))
    assert weights.choose(smoke, "auto", is_course=False) == ""
    assert weights.choose(build_config("strong", 3, str(tmp_path), pretrained=False), "auto", is_course=False) == ""


@pytest.mark.parametrize(
    "profile, asked, pretrained, message",
    [
        ("strong", "coco", False, 'WEIGHTS = "coco" and PRETRAINED = False contradict'),
        ("smoke", "coco", True, 'WEIGHTS = "coco" is the model zoo.s Mask R-CNN X-101-32x8d-FPN .*ResNet depth 18'),
        ("smoke", "imagenet", True, "no ImageNet weights to start from, it starts from random init"),
        ("strong", "resnet", True, "WEIGHTS takes auto, imagenet, coco, not 'resnet'"),
    ],
)
def test_weights_that_cannot_be_had_stop_with_why(tmp_path, profile, asked, pretrained, message):
    cfg = build_config(profile, 3, str(tmp_path), has_gpu=False, pretrained=pretrained)
    with pytest.raises(TinyVocError, match=message):
        weights.choose(cfg, asked, is_course=False, pretrained=pretrained)


def test_the_recipe_names_the_weights_asked_for():
    assert runs.Recipe("strong", weights="coco").auto_name() == "strong+WEIGHTS=coco"
    assert runs.Recipe("strong").auto_name() == "strong"  # "auto", the default: the course's names are unchanged
