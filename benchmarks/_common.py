"""Shared setup for the benchmarks: the helper package on sys.path and a model on the real test images."""

from __future__ import annotations

import resource
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "notebooks"))
SHARED = REPO.parent / "shared" / "tinyvoc"

from tinyvoc.dataset import DataFiles  # noqa: E402


def real_files() -> DataFiles:
    """The course's 100 test images and 10 annotated training images (../shared/tinyvoc)."""
    if not (SHARED / "test.json").exists():
        sys.exit(f"benchmark needs the real Tiny VOC files at {SHARED}")
    return DataFiles(
        SHARED / "pascal_train_first10.json", SHARED / "train_images", SHARED / "test.json", SHARED / "test_images"
    )


def smoke_model_outputs(workdir: Path, iterations: int = 2):
    """An output folder with the real files registered and a smoke model trained for a few iterations.

    Its weights are nearly random, so it emits many low-score detections: a realistic load for
    prediction, mask encoding and export, which is what these benchmarks time.
    """
    from tinyvoc import training
    from tinyvoc.dataset import prepare_dataset
    from tinyvoc.paths import Outputs

    outputs = Outputs.at(workdir)
    prepare_dataset(real_files(), outputs, "tinyvoc", val_fraction=0.2, seed=0)
    training.train(outputs, "smoke", max_iter=iterations, overrides=["TEST.EVAL_PERIOD", 0])
    return outputs


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
