"""What every notebook does first, and the choices that depend on where it runs.

Notebooks 01-04 can each open in a fresh Colab runtime (each notebook gets its own), so each
one makes sure detectron2 is importable (seconds when it is, ~20 s when it must be installed)
and that the dataset is registered in this kernel, before doing its own job.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .dataset import DataFiles
from .errors import TinyVocError
from .paths import DEFAULT_DATA_DIR, Outputs


def start(output_dir: str = "") -> Outputs:
    """Check the environment and return the output layout (``output/`` or ``output_dir``)."""
    if importlib.util.find_spec("detectron2") is None:
        from .install import ensure_detectron2

        print(ensure_detectron2())
    from detectron2.utils.logger import setup_logger

    setup_logger(name="detectron2", abbrev_name="d2")
    outputs = Outputs.at(output_dir or None)
    print(f"outputs: {outputs.root}")
    return outputs


def locate_data(dataset: str = "auto", data_dir: str = "", download_url: str = "") -> tuple[DataFiles, str]:
    """Pick the dataset: ``tinyvoc`` (real files in ``data_dir``), ``sample`` (generated), or ``auto``.

    ``auto`` uses the real files when ``pascal_train.json`` is in the data folder, else the sample,
    and says so, so nobody trains on the sample by accident without being told. With
    ``download_url`` (the course's Drive folder) missing real files are downloaded first.
    """
    from .sample_data import make_sample_dataset

    folder = Path(data_dir) if data_dir else DEFAULT_DATA_DIR
    real = DataFiles.in_folder(folder)
    if download_url and dataset != "sample":
        from .download import download_course_data

        download_course_data(download_url, folder)
    if dataset == "auto":
        dataset = "tinyvoc" if real.train_json.exists() else "sample"
        if dataset == "sample":
            print(f"No pascal_train.json in {folder}: using the built-in sample dataset. See data/README.md.")
    if dataset == "sample":
        return DataFiles.in_folder(make_sample_dataset(DEFAULT_DATA_DIR / "sample")), "sample"
    if dataset != "tinyvoc":
        raise TinyVocError(f"unknown DATASET {dataset!r}; use 'auto', 'tinyvoc' or 'sample'")
    missing = real.missing()
    if missing:
        raise TinyVocError(
            "Tiny VOC files not found: " + ", ".join(map(str, missing)) + ". Put pascal_train.json, test.json, "
            "train_images/ and test_images/ in data/ (or set DATA_DIR to their folder); see data/README.md."
        )
    return real, "tinyvoc"


def default_score_threshold(outputs: Outputs) -> float:
    """The trained profile's own test threshold (0.4 reference, 0.01 strong, 0.05 smoke)."""
    from .training import load_trained_config

    return float(load_trained_config(outputs).MODEL.ROI_HEADS.SCORE_THRESH_TEST)
