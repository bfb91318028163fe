"""Pre-labels for Label Studio in its own task format: ``prelabels/<split>.label-studio.json`` and the labelling
config ``prelabels/label-studio.xml`` beside it.

Why not Label Studio's COCO route: it imports tasks, not COCO, and its converter (``label-studio-converter import
coco``, tried with 0.0.59) keeps only each annotation's first polygon, so a mask in two parts loses one, and it
stops with a ``KeyError`` at the first mask written as RLE (a mask with a hole), losing the whole file. Written
here instead, from the same pre-label annotations: one task per image, the detections as *predictions* (Label
Studio shows them to correct and keeps each one's ``score``), one polygon region per part. Label Studio's polygons
cannot hold a hole, and its COCO export leaves brush regions out (1.23.2: "Unknown label type"), so a mask with a
hole comes in as its outline, the hole filled: what a Label Studio user draws, and what comes back out in COCO.

The image URLs are :data:`IMAGE_ROOT_URL` + the file name as the split json has it: Label Studio's local-files
serving (``LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true``, ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT`` = the folder
holding the images), as the converter's default assumes; ``docs/your-data.md`` says how to serve them otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np

from ..core.atomic import write_bytes, write_json
from ..dataset.record import ClassMap
from .polygons import Outline

IMAGE_ROOT_URL = "/data/local-files/?d="
POLYGONS = "label"  # the config's control name the regions refer to
PERCENT_DECIMALS = 3  # Label Studio places regions in percent of the image: 0.001% of 10,000 px is 0.1 px


def tasks_path(prelabels: Path) -> Path:
    """``prelabels/<split>.label-studio.json`` beside ``prelabels/<split>.json``."""
    return Path(prelabels).with_suffix(".label-studio.json")


def config_path(prelabels: Path) -> Path:
    """``prelabels/label-studio.xml``: one config for every split's tasks (it names only the classes)."""
    return Path(prelabels).parent / "label-studio.xml"


def write_label_studio(images: Sequence[dict], traced: Sequence[tuple[dict, Outline]], class_map: ClassMap,
                       prelabels: Path, model_version: str) -> Path:  # fmt: skip
    """The tasks of ``images`` (each with its pre-label annotations and their outlines, ``traced``) and the
    config, beside ``prelabels``."""
    by_image: dict = {}
    for annotation, outline in traced:
        by_image.setdefault(annotation["image_id"], []).append((annotation, outline))
    tasks = [label_studio_task(image, by_image.get(image["id"], []), class_map, model_version) for image in images]
    write_config(class_map, prelabels)
    return write_json(tasks_path(prelabels), tasks)


def write_config(class_map: ClassMap, prelabels: Path) -> Path:
    return write_bytes(config_path(prelabels), label_config(class_map).encode())


def label_studio_task(image: dict, traced: Sequence[tuple[dict, Outline]], class_map: ClassMap, model_version: str):
    """One image's task: its URL and its pre-label annotations as one prediction, a region for each polygon of
    each annotation's outline (``traced``: ``prelabels.traced_annotations``)."""
    width, height = image["width"], image["height"]
    base = {"to_name": "image", "original_width": width, "original_height": height, "image_rotation": 0}
    scale = 100 / np.array([width, height], dtype=float)
    results = []
    for number, (annotation, outline) in enumerate(traced, start=1):  # region ids need only be unique in the task
        name, score = class_map.name_of(annotation["category_id"]), annotation["score"]
        for part, polygon in enumerate(outline.points):
            points = np.round(polygon * scale, PERCENT_DECIMALS).tolist()
            value = {"points": points, "closed": True, "polygonlabels": [name]}
            results.append({**base, "id": f"{number}-{part}", "from_name": POLYGONS, "type": "polygonlabels",
                            "value": value, "score": score})  # fmt: skip
    scores = [annotation["score"] for annotation, _ in traced]
    prediction = {"model_version": model_version, "score": round(float(np.mean(scores)), 5) if scores else 0.0,
                  "result": results}  # fmt: skip
    return {"data": {"image": IMAGE_ROOT_URL + image["file_name"]}, "predictions": [prediction]}


def label_config(class_map: ClassMap) -> str:
    """The labelling config the tasks need: the image and polygon labels, one label per class."""
    labels = "\n".join(f"    <Label value={quoteattr(name)}/>" for name in class_map.names)
    return (
        "<View>\n"
        '  <Image name="image" value="$image" zoom="true"/>\n'
        f'  <PolygonLabels name="{POLYGONS}" toName="image" strokeWidth="2">\n{labels}\n  </PolygonLabels>\n'
        "</View>\n"
    )
