"""The training config: built once, frozen, and compared on resume without this runtime's paths; the batch rule."""

import pytest

from tinyvoc.core.errors import TinyVocError
from tinyvoc.core.paths import DataFiles, Outputs
from tinyvoc.dataset.record import DatasetRecord, prepare_dataset
from tinyvoc.training.config import config_signature, linear_scaling, train_config
from tinyvoc.training.profiles import build_config


def test_the_training_config_compared_on_resume_has_no_runtime_path():
    one, two = build_config("smoke", 3, "/runtime-1/out/train"), build_config("smoke", 3, "/runtime-2/out/train")
    assert config_signature(one) == config_signature(two)
    assert "/runtime-" not in config_signature(one)


@pytest.fixture(scope="module")
def outputs(sample, tmp_path_factory):
    outputs = Outputs.at(tmp_path_factory.mktemp("out"))
    prepare_dataset(DataFiles.in_folder(sample), outputs, "sample", val_fraction=0.2, seed=0)
    return outputs


def _config(outputs, **kwargs):
    return train_config(outputs, "smoke", record=DatasetRecord.load(outputs), **kwargs)[1]


def test_the_batch_is_the_total_over_all_workers_and_the_config_does_not_depend_on_their_number(outputs):
    one, two = _config(outputs), _config(outputs, world_size=2)
    assert one.SOLVER.IMS_PER_BATCH == two.SOLVER.IMS_PER_BATCH == 4  # the profile's, with 1 or 2 workers
    assert config_signature(one) == config_signature(two)  # a run started on 2 workers resumes on 1


def test_another_total_batch_scales_lr_and_warmup_linearly_and_says_so(outputs, capsys):
    assert linear_scaling(0.02, 50, 4, 8) == (0.04, 25) and linear_scaling(0.005, 1000, 4, 2) == (0.0025, 2000)
    cfg = _config(outputs, ims_per_batch=8, world_size=2)
    assert (cfg.SOLVER.IMS_PER_BATCH, cfg.SOLVER.BASE_LR, cfg.SOLVER.WARMUP_ITERS) == (8, 0.04, 25)
    assert "BASE_LR 0.02 -> 0.04, warmup 50 -> 25 iterations (linear scaling rule)" in capsys.readouterr().out
    same = _config(outputs, ims_per_batch=4)
    assert config_signature(same) == config_signature(_config(outputs)) and capsys.readouterr().out == ""


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(world_size=3), r"a batch of 4 images .* cannot be split evenly over 3 workers: set IMS_PER_BATCH to a "
         r"multiple of 3 \(e\.g\. 6\) or use 1, 2, 4 workers"),
        (dict(ims_per_batch=6, world_size=4), "a batch of 6 images .* over 4 workers"),
        (dict(ims_per_batch=-2), "IMS_PER_BATCH must be a positive number of images"),
    ],
)  # fmt: skip
def test_a_batch_the_workers_cannot_split_stops_with_what_to_do(outputs, kwargs, message):
    with pytest.raises(TinyVocError, match=message):
        _config(outputs, **kwargs)


def test_images_without_objects_train_as_negatives_only_when_01_kept_them(outputs):
    from dataclasses import replace

    record = DatasetRecord.load(outputs)
    assert _config(outputs).DATALOADER.FILTER_EMPTY_ANNOTATIONS  # detectron2's way: left out
    kept = train_config(outputs, "smoke", record=replace(record, keep_empty_images=True))[1]
    assert not kept.DATALOADER.FILTER_EMPTY_ANNOTATIONS
