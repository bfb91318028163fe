"""Registering the splits with detectron2: explicitly, by whoever needs the catalog, once per kernel.

Notebook 01 registers to check that detectron2 reads every split with the record's class names;
training registers because detectron2's data loaders look datasets up by name. Inference needs no
catalog (the class names come from the dataset record), so notebooks 03 and 04 register nothing.
Registering again replaces the earlier entries, so a changed split or path takes effect.
"""

from __future__ import annotations

from pathlib import Path

from ..core.errors import TinyVocError
from .record import DatasetRecord

TRAIN, VAL, TEST = "tinyvoc_train", "tinyvoc_val", "tinyvoc_test"


def register(name: str, json_file: str | Path, image_root: str | Path) -> None:
    """Register (or re-register) one COCO file with detectron2; safe to call again in the same kernel.

    detectron2 refuses a second registration of a name, and keeps stale metadata; removing both
    first makes re-running a cell work and lets a changed path take effect.
    """
    from detectron2.data import DatasetCatalog, MetadataCatalog
    from detectron2.data.datasets import load_coco_json

    json_file, image_root = str(json_file), str(image_root)
    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
    if name in MetadataCatalog.list():
        MetadataCatalog.remove(name)
    DatasetCatalog.register(name, lambda: load_coco_json(json_file, image_root, name))
    MetadataCatalog.get(name).set(json_file=json_file, image_root=image_root, evaluator_type="coco")


def register_all(record: DatasetRecord) -> dict[str, int]:
    """Register train/val/test splits from the record; return the number of images in each."""
    from detectron2.data import DatasetCatalog, MetadataCatalog

    files = record.data_files
    splits = {TRAIN: record.train_split, TEST: str(files.test_json)}
    if record.val_split:
        splits[VAL] = record.val_split
    sizes = {}
    for name, json_file in splits.items():
        register(name, json_file, files.test_images if name == TEST else files.train_images)
        sizes[name] = len(DatasetCatalog.get(name))  # loads once: fills thing_classes and the id mapping
        meta = MetadataCatalog.get(name)
        if list(meta.thing_classes) != record.class_names:
            raise TinyVocError(f"{json_file}: class names {meta.thing_classes} differ from {record.class_names}")
    return sizes
