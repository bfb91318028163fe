"""The training config: built once, frozen, and compared on resume without this runtime's paths."""

from tinyvoc.training.config import config_signature
from tinyvoc.training.profiles import build_config


def test_the_training_config_compared_on_resume_has_no_runtime_path():
    one, two = build_config("smoke", 3, "/runtime-1/out/train"), build_config("smoke", 3, "/runtime-2/out/train")
    assert config_signature(one) == config_signature(two)
    assert "/runtime-" not in config_signature(one)
