"""Pre-labels for Label Studio in its own task format: ``prelabels/<split>.label-studio.json`` and the labelling
config ``prelabels/label-studio.xml`` beside it.

Why not Label Studio's COCO route: it imports tasks, not COCO, and its converter (``label-studio-converter import
coco``, tried with 0.0.59) keeps only each annotation's first polygon, so a mask in two parts loses one, and it
stops with a ``KeyError`` at the first mask written as RLE (a mask with a hole), losing the whole file. Written
here instead, from the same pre-label annotations: one task per image, the detections as *predictions* (Label
Studio shows them to correct and keeps each one's ``score``), one polygon region per part. Label Studio's polygons
cannot hold a hole, and its COCO export leaves brush regions out (1.23.2: "Unknown label type"), so a mask with a
hole comes in as its outline, the hole filled: what a Label Studio user draws, and what comes back out in COCO.

The image URLs are :data:`IMAGE_ROOT_URL` + the file name as the split json has it (URL-quoted): Label Studio's
local-files serving (``LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true``, ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT`` =
the folder holding the images), as the converter's default assumes; ``docs/your-data.md`` says how to serve them
otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote
from xml.sax.saxutils import quoteattr

import numpy as np

from ..core.atomic import write_bytes
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
    return write_bytes(tasks_path(prelabels), ("[" + ", ".join(tasks) + "]").encode())


def write_config(class_map: ClassMap, prelabels: Path) -> Path:
    return write_bytes(config_path(prelabels), label_config(class_map).encode())


def label_studio_task(image: dict, traced: Sequence[tuple[dict, Outline]], class_map: ClassMap, model_version: str):
    """One image's task, as JSON text: its URL and its pre-label annotations as one prediction, a region for each
    polygon of each annotation's outline (``traced``: ``prelabels.traced_annotations``).

    Text, not ``json.dumps`` of dicts: the points are most of the file (2.5 million numbers for 10,000 detections
    in ``benchmarks/bench_prediction_outputs.py``), and printing them at :data:`PERCENT_DECIMALS` with one
    %-format per polygon takes half the time of the encoder's shortest-repr floats, which kept all the prediction
    outputs over their 5 s. ``tests/submission/test_prediction_outputs.py`` reads the text back as JSON."""
    width, height = image["width"], image["height"]
    scale = 100 / np.array([width, height], dtype=float)
    fixed = (f'"from_name": "{POLYGONS}", "to_name": "image", "type": "polygonlabels", "original_width": {width}, '
             f'"original_height": {height}, "image_rotation": 0')  # fmt: skip
    regions = []
    for number, (annotation, outline) in enumerate(traced, start=1):  # region ids need only be unique in the task
        label, score = json.dumps([class_map.name_of(annotation["category_id"])]), json.dumps(annotation["score"])
        for part, polygon in enumerate(outline.points):
            value = f'{{"points": {_points(polygon * scale)}, "closed": true, "polygonlabels": {label}}}'
            regions.append(f'{{"id": "{number}-{part}", {fixed}, "score": {score}, "value": {value}}}')
    scores = [annotation["score"] for annotation, _ in traced]
    mean = round(float(np.mean(scores)), 5) if scores else 0.0
    prediction = f'{{"model_version": {json.dumps(model_version)}, "score": {mean}, "result": [{", ".join(regions)}]}}'
    url = IMAGE_ROOT_URL + quote(image["file_name"].replace("\\", "/"))  # a space or '&' in a name stays in it
    return f'{{"data": {{"image": {json.dumps(url)}}}, "predictions": [{prediction}]}}'


def _points(xy: np.ndarray) -> str:
    """``N x 2`` percentages as Label Studio's ``[[x, y], ...]``."""
    return _points_format(len(xy)) % tuple(xy.ravel().tolist())


@lru_cache(maxsize=512)
def _points_format(count: int) -> str:
    point = f"[%.{PERCENT_DECIMALS}f,%.{PERCENT_DECIMALS}f]"
    return "[" + ",".join([point] * count) + "]"


def label_config(class_map: ClassMap) -> str:
    """The labelling config the tasks need: the image and polygon labels, one label per class."""
    labels = "\n".join(f"    <Label value={quoteattr(name)}/>" for name in class_map.names)
    return (
        "<View>\n"
        '  <Image name="image" value="$image" zoom="true"/>\n'
        f'  <PolygonLabels name="{POLYGONS}" toName="image" strokeWidth="2">\n{labels}\n  </PolygonLabels>\n'
        "</View>\n"
    )
