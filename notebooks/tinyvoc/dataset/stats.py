"""Dataset statistics: what is in each split, so imbalances are seen before training.

Object sizes use COCO's buckets (small < 32x32 px, medium < 96x96, large above), measured on the
rasterised mask, because that is how COCO AP_small/medium/large count them.
"""

from __future__ import annotations

from collections import Counter

from pycocotools import mask as mask_util

from ..core.atomic import write_json
from ..core.coco_json import load_coco
from ..core.paths import Outputs
from .record import DatasetRecord

SIZE_BUCKETS = (("small", 32**2), ("medium", 96**2), ("large", float("inf")))


def _mask_area(ann: dict, height: int, width: int) -> float:
    seg = ann["segmentation"]
    if isinstance(seg, dict):
        rle = seg if isinstance(seg.get("counts"), (str, bytes)) else mask_util.frPyObjects(seg, height, width)
    else:
        rle = mask_util.merge(mask_util.frPyObjects(seg, height, width))
    return float(mask_util.area(rle))


def split_statistics(coco: dict, class_names: dict[int, str]) -> dict:
    """Counts for one COCO split: per class (images, instances), instances per image, size buckets."""
    sizes = {im["id"]: (im["height"], im["width"]) for im in coco["images"]}
    anns = [a for a in coco.get("annotations", []) if a["image_id"] in sizes]
    per_image = Counter(a["image_id"] for a in anns)
    buckets = Counter()
    for a in anns:
        area = _mask_area(a, *sizes[a["image_id"]])
        buckets[next(name for name, limit in SIZE_BUCKETS if area < limit)] += 1
    return {
        "images": len(sizes),
        "instances": len(anns),
        "instances_per_class": {
            name: sum(1 for a in anns if a["category_id"] == cid) for cid, name in class_names.items()
        },
        "images_per_class": {
            name: len({a["image_id"] for a in anns if a["category_id"] == cid}) for cid, name in class_names.items()
        },
        "instances_per_image": dict(sorted(Counter(per_image.get(i, 0) for i in sizes).items())),
        "sizes": {name: buckets.get(name, 0) for name, _ in SIZE_BUCKETS},
    }


def dataset_statistics(record: DatasetRecord, outputs: Outputs) -> dict:
    """Statistics of the train and validation splits, saved to ``output/dataset_stats.json``."""
    names = dict(zip(record.category_ids, record.class_names))
    stats = {"train": split_statistics(load_coco(record.train_split), names)}
    if record.val_split:
        stats["val"] = split_statistics(load_coco(record.val_split), names)
    write_json(outputs.dataset_stats, stats, indent=2)
    return stats


def format_statistics(stats: dict) -> str:
    """Per-class table (instances / images per split) and the size buckets, as text."""
    from tabulate import tabulate

    splits = list(stats)
    classes = list(stats[splits[0]]["instances_per_class"])
    rows = [
        [name] + [f"{stats[s]['instances_per_class'][name]} / {stats[s]['images_per_class'][name]}" for s in splits]
        for name in classes
    ]
    rows.append(["all"] + [f"{stats[s]['instances']} / {stats[s]['images']}" for s in splits])
    table = tabulate(rows, headers=["class"] + [f"{s} instances / images" for s in splits])
    sizes = "; ".join(f"{s}: " + ", ".join(f"{k} {v}" for k, v in stats[s]["sizes"].items()) for s in splits)
    return f"{table}\n\nobject sizes (COCO buckets) - {sizes}"
