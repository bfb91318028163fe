"""The profiles as YAML files: today's configs key for key, a user's own file on top, and a training step each."""

import pytest
import torch

from tinyvoc.core.errors import TinyVocError
from tinyvoc.training.profiles import PROFILES, build_config, family, load_recipe, resolve_profile

from ._legacy_profiles import legacy_build_config


def test_auto_picks_by_accelerator():
    assert resolve_profile("auto", has_gpu=False) == "smoke"
    assert resolve_profile("auto", has_gpu=True) == "strong"
    assert resolve_profile("reference", has_gpu=True) == "reference"


def test_auto_on_a_colab_runtime_without_a_gpu_stops_before_training(on_colab, drive, tmp_path):
    """Colab without a GPU (runtime type CPU, quota spent): no quiet smoke model trained on the real data."""
    from tinyvoc.core.paths import Outputs
    from tinyvoc.training import runs
    from tinyvoc.training.train import train

    with pytest.raises(TinyVocError, match=r'PROFILE = "auto" found no GPU on this Colab runtime.*T4 GPU'):
        runs.Recipe.given("auto")  # 02's training cell, before anything is written
    outputs = Outputs.at(tmp_path / "output")
    with pytest.raises(TinyVocError, match='set PROFILE = "smoke"'):
        train(outputs, "auto", max_iter=1)
    assert not outputs.runs_dir.exists()  # stopped before training: no run, no folder
    assert runs.Recipe.given("smoke").profile == "smoke"  # named by hand, the CPU profile still runs
    assert resolve_profile("auto", has_gpu=True) == "strong"
    assert resolve_profile("auto", has_gpu=False, allow_cpu=True) == "smoke"  # checking OPTS, not training


def test_auto_on_kaggle_without_a_gpu_names_the_accelerator_setting(monkeypatch):
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    with pytest.raises(TinyVocError, match="Kaggle runtime.*Accelerator > GPU T4 x2"):
        resolve_profile("auto", has_gpu=False)
    assert resolve_profile("auto", has_gpu=False, hosted=None) == "smoke"  # off Colab and Kaggle: the sample's CPU run


def test_gpu_profile_on_cpu_is_a_clear_error():
    with pytest.raises(TinyVocError, match="needs a GPU.*PROFILE='smoke'"):
        resolve_profile("strong", has_gpu=False)
    assert resolve_profile("strong", has_gpu=False, allow_cpu=True) == "strong"
    with pytest.raises(TinyVocError, match="unknown profile"):
        resolve_profile("fast", has_gpu=False)


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("has_gpu", [True, False])
@pytest.mark.parametrize("pretrained", [True, False])
def test_the_yaml_profiles_give_the_configs_the_python_builders_gave_key_for_key(profile, has_gpu, pretrained):
    """The builders as they were before the move (tests/training/_legacy_profiles.py) against the YAML files."""
    old = legacy_build_config(profile, 20, "/out/train", has_gpu=has_gpu, pretrained=pretrained)
    new = build_config(profile, 20, "/out/train", has_gpu=has_gpu, pretrained=pretrained)
    assert new.dump() == old.dump()  # every key, its value and its type (tuple stays tuple) alike


def _user_file(tmp_path, name, text):
    drive = tmp_path / "MyDrive" / "tinyvoc"
    drive.mkdir(parents=True, exist_ok=True)
    path = drive / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("profile", PROFILES)
def test_a_users_file_builds_on_each_built_in_profile_from_any_folder(profile, tmp_path):
    path = _user_file(
        tmp_path,
        "my_recipe.yaml",
        f"_BASE_: {profile}.yaml\nSOLVER:\n  BASE_LR: 0.0123\nINPUT:\n  MIN_SIZE_TRAIN: [96, 112]\n",
    )
    resolved = resolve_profile(str(path), has_gpu=True)
    assert resolved == str(path.resolve()) and family(resolved) == profile
    cfg, built_in = load_recipe(resolved), load_recipe(profile)
    assert cfg.SOLVER.BASE_LR == 0.0123 and cfg.INPUT.MIN_SIZE_TRAIN == (96, 112)
    assert cfg.SOLVER.MAX_ITER == built_in.SOLVER.MAX_ITER and cfg.MODEL.RESNETS.DEPTH == built_in.MODEL.RESNETS.DEPTH


def test_a_users_file_may_build_on_another_of_theirs_or_on_the_model_zoo(tmp_path):
    _user_file(tmp_path, "base.yaml", "_BASE_: smoke.yaml\nSOLVER:\n  MAX_ITER: 77\n")
    child = _user_file(tmp_path, "child.yaml", "_BASE_: base.yaml\nSOLVER:\n  BASE_LR: 0.01\n")
    cfg = load_recipe(str(child))
    assert (cfg.SOLVER.MAX_ITER, cfg.SOLVER.BASE_LR, cfg.MODEL.RESNETS.DEPTH) == (77, 0.01, 18)
    assert resolve_profile(str(child), has_gpu=False) == str(child.resolve())  # smoke's family trains on a CPU
    zoo = _user_file(tmp_path, "zoo.yaml", "_BASE_: COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.yaml\n")
    assert family(str(zoo)) is None and load_recipe(str(zoo)).MODEL.RESNETS.DEPTH == 50
    with pytest.raises(TinyVocError, match="needs a GPU"):
        resolve_profile(str(zoo), has_gpu=False)


@pytest.mark.parametrize(
    "text, message",
    [
        ("_BASE_: strong.yaml\nSOLVER:\n  BASE_LRR: 0.1\n",
         r"unknown config key 'SOLVER.BASE_LRR' in .*bad.yaml; did you mean SOLVER.BASE_LR\?"),
        ("_BASE_: strong.yaml\nSOLVER:\n  MAX_ITER: lots\n", r"bad.yaml: .*SOLVER.MAX_ITER"),
        ("_BASE_: nowhere.yaml\n", r"config file .*nowhere.yaml not found.*named in .*bad.yaml"),
        ("_BASE_: bad.yaml\n", "builds on itself"),
        ("SOLVER: [1, 2\n", "is not valid YAML"),
    ],
)  # fmt: skip
def test_a_users_file_with_a_mistake_stops_naming_the_file_and_the_key(tmp_path, text, message):
    path = _user_file(tmp_path, "bad.yaml", text)
    with pytest.raises(TinyVocError, match=message):
        load_recipe(str(path))


def test_a_missing_users_file_is_named():
    with pytest.raises(TinyVocError, match="config file /nowhere/mine.yaml not found"):
        resolve_profile("/nowhere/mine.yaml", has_gpu=True)


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
