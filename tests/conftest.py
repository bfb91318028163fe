"""Shared test setup: the helper package on sys.path, and where the real Tiny VOC files are."""

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "notebooks"))

SHARED = REPO.parent / "shared" / "tinyvoc"


@pytest.fixture(scope="session")
def shared_tinyvoc() -> Path:
    """The course's real files beside the repo; tests that need them skip (with the reason) when absent."""
    if not (SHARED / "test.json").exists():
        pytest.skip(f"real Tiny VOC files not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def trained_sample(tmp_path_factory):
    """An output folder with the sample registered and a briefly trained smoke model (no validation)."""
    from tinyvoc import training
    from tinyvoc.dataset import DataFiles, prepare_dataset
    from tinyvoc.paths import Outputs
    from tinyvoc.sample_data import make_sample_dataset

    sample = make_sample_dataset(tmp_path_factory.mktemp("sample"))
    outputs = Outputs.at(tmp_path_factory.mktemp("trained"))
    prepare_dataset(DataFiles.in_folder(sample), outputs, "sample", val_fraction=0.2, seed=0)
    training.train(outputs, "smoke", max_iter=40, overrides=["TEST.EVAL_PERIOD", 0])
    return outputs
