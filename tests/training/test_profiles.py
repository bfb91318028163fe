"""Profile resolution, and that every profile's config builds a model that can take a training step."""

import pytest
import torch

from tinyvoc.core.errors import TinyVocError
from tinyvoc.training.profiles import PROFILES, build_config, resolve_profile


def test_auto_picks_by_accelerator():
    assert resolve_profile("auto", has_gpu=False) == "smoke"
    assert resolve_profile("auto", has_gpu=True) == "strong"
    assert resolve_profile("reference", has_gpu=True) == "reference"


def test_gpu_profile_on_cpu_is_a_clear_error():
    with pytest.raises(TinyVocError, match="needs a GPU.*PROFILE='smoke'"):
        resolve_profile("strong", has_gpu=False)
    assert resolve_profile("strong", has_gpu=False, allow_cpu=True) == "strong"
    with pytest.raises(TinyVocError, match="unknown profile"):
        resolve_profile("fast", has_gpu=False)


def test_reference_profile_is_the_original_recipe(tmp_path):
    cfg = build_config("reference", 20, str(tmp_path), has_gpu=True)
    assert cfg.MODEL.RESNETS.DEPTH == 101 and cfg.MODEL.RESNETS.NUM_GROUPS == 32
    assert cfg.MODEL.RESNETS.WIDTH_PER_GROUP == 8
    assert cfg.MODEL.WEIGHTS == "detectron2://ImageNetPretrained/FAIR/X-101-32x8d.pkl"
    assert (cfg.SOLVER.IMS_PER_BATCH, cfg.SOLVER.BASE_LR, cfg.SOLVER.MAX_ITER) == (2, 0.0003, 10000)
    assert cfg.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE == 128
    assert cfg.MODEL.ROI_HEADS.NUM_CLASSES == 20
    assert cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST == 0.4
    assert cfg.INPUT.FORMAT == "BGR"
    assert cfg.SOLVER.AMP.ENABLED


def test_strong_profile_choices(tmp_path):
    cfg = build_config("strong", 20, str(tmp_path), has_gpu=True)
    assert len(cfg.INPUT.MIN_SIZE_TRAIN) > 1 and cfg.INPUT.RANDOM_FLIP == "horizontal"
    assert cfg.SOLVER.LR_SCHEDULER_NAME == "WarmupCosineLR"
    assert cfg.SOLVER.MAX_ITER > 10000
    assert 0.005 <= cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST <= 0.05
    assert cfg.TEST.DETECTIONS_PER_IMAGE == 100 and cfg.TEST.AUG.ENABLED and cfg.TEST.AUG.FLIP


def _tiny_batch(num_classes):
    from detectron2.structures import BitMasks, Boxes, Instances

    batch = []
    for k in range(2):
        image = torch.randint(0, 255, (3, 64, 80), dtype=torch.uint8).float()
        inst = Instances((64, 80))
        inst.gt_boxes = Boxes(torch.tensor([[10.0, 10.0, 40.0, 50.0]]))
        inst.gt_classes = torch.tensor([k % num_classes])
        mask = torch.zeros(1, 64, 80, dtype=torch.bool)
        mask[0, 10:50, 10:40] = True
        inst.gt_masks = BitMasks(mask)
        batch.append({"image": image, "instances": inst, "height": 64, "width": 80})
    return batch


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_builds_and_takes_two_training_steps_on_cpu(profile, tmp_path):
    from detectron2.modeling import build_model
    from detectron2.solver import build_optimizer
    from detectron2.utils.events import EventStorage

    cfg = build_config(profile, 3, str(tmp_path), has_gpu=False)
    cfg.MODEL.WEIGHTS = ""  # random weights: config validity, not accuracy
    cfg.MODEL.DEVICE = "cpu"
    torch.manual_seed(0)
    model = build_model(cfg)
    model.train()
    optimizer = build_optimizer(cfg, model)
    before = [p.detach().clone() for p in model.parameters() if p.requires_grad][-1]
    with EventStorage():
        for _ in range(2):
            losses = model(_tiny_batch(3))
            total = sum(losses.values())
            assert torch.isfinite(total)
            optimizer.zero_grad()
            total.backward()
            optimizer.step()
    assert {"loss_cls", "loss_box_reg", "loss_mask", "loss_rpn_cls", "loss_rpn_loc"} <= set(losses)
    after = [p for p in model.parameters() if p.requires_grad][-1]
    assert not torch.equal(before, after.detach())
