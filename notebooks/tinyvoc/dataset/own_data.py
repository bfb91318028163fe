"""Your own COCO export, made into the files the rest of the pipeline reads: staged, its names resolved, its classes.

``DATASET`` may name a folder or a ``.zip`` (on Drive, under ``/kaggle/input/``, or local). It is staged on this
runtime's disk (``runtime.local_data.stage_folder``), its layout recognised (``layouts``), and each of its jsons
rewritten once into ``.tinyvoc/<part>/<its own file name>`` inside the staged folder (the check names the file
as you know it), where the dataset check,
the split and detectron2 read them. The originals are never changed. Rewriting does three things:

- **Every ``file_name`` resolves by one rule**, relative to the staged folder. Backslashes become slashes, and
  ``.``, ``..`` and drive letters are dropped (Label Studio writes ``..\\..\\label-studio\\media\\upload\\4\\x.jpg``).
  Then the first that exists wins: the name under the part's image folder (``images/``, Roboflow's split
  folder), under the json's folder, under the dataset's top folder; else the one image file anywhere in the
  dataset whose path ends with the longest tail of the name. Two files with that tail stop, naming both. A
  name that resolves nowhere is kept as written, and the check reports the missing file.
- **Classes are the categories that own annotations.** One that owns none (Roboflow's dataset-name category 0,
  labelme's ``_background_``) is named in a warning and left out, with whatever the validation or test json
  labels with it; two categories with one name stop, naming both ids. Ids stay the dataset's own.
- **Crowd regions train as objects** when ``CROWD_AS_OBJECTS`` is on (CVAT exports every mask drawn as a
  brush as ``iscrowd: 1``, which detectron2 ignores in training).

``TEST_IMAGES`` (a folder of images, no json) gets a test json written for it: every image, sorted, recursive,
ids 1..N, sizes read from the files as the loader turns them (EXIF).
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..core.atomic import write_json
from ..core.paths import DataFiles
from ..runtime import colab, local_data
from .check import ERROR, WARNING, Problem
from .layouts import Layout, Part, find_layout

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
NORMALIZED = ".tinyvoc"  # inside the staged folder: the rewritten jsons (never the user's own files)
DATASETS = "datasets"  # under the runtime's data folder: one staged folder per dataset


@dataclass
class Prepared:
    """The staged dataset: its files as the pipeline reads them, what was found, and what the rewrite said."""

    files: DataFiles
    layout: Layout
    problems: list[Problem] = field(default_factory=list)


def dataset_name(origin: str | os.PathLike) -> str:
    """The dataset's name: its folder's, or its zip's without ``.zip`` (``my-cats.zip`` -> ``my-cats``)."""
    path = Path(origin)
    return (path.stem if path.suffix.lower() == ".zip" else path.name) or "dataset"


def staged_folder(origin: str | os.PathLike, data_dir: Path, suffix: str = "") -> Path:
    return Path(data_dir) / DATASETS / (dataset_name(origin) + suffix)


def stage(origin: str | os.PathLike, data_dir: Path, suffix: str = "") -> Path:
    """``origin`` on this runtime's disk: copied from Drive, unpacked from a zip, else read in place."""
    origin = Path(origin)
    return local_data.stage_folder(origin, staged_folder(origin, data_dir, suffix), copy=colab.under_mount(origin))


def prepare(
    origin: str | os.PathLike,
    data_dir: Path,
    *,
    test_images: str | os.PathLike | None = None,
    crowd_as_objects: bool = False,
) -> Prepared:
    """Stage ``origin`` (and ``test_images``), find its layout, write the rewritten jsons; nothing is trained on yet."""
    root = stage(origin, data_dir)
    layout = find_layout(root)
    problems: list[Problem] = []
    index = _image_index(root)
    parts = {"train": layout.train, "val": layout.val, "test": layout.test}
    loaded = {name: _load(part.json) for name, part in parts.items() if part is not None}
    out = root / NORMALIZED
    categories: list[dict] = []  # the classes, as the rewritten jsons and a TEST_IMAGES json list them
    if loaded.get("train") is None:  # unreadable: the check reports it on the file itself
        train_json = layout.train.json
        written = {}
    else:
        categories, dropped = _categories(loaded["train"], layout.train.json, problems)
        written = {}
        for name, coco in loaded.items():
            if coco is None:
                written[name] = parts[name].json
                continue
            coco = _rewritten(coco, parts[name], root, index, categories, dropped, crowd_as_objects, problems)
            written[name] = write_json(out / name / parts[name].json.name, coco)  # its own name: what messages say
        train_json = written["train"]
    test_root = root
    for name in ("train", "val", "test"):  # a part written by an earlier staging of another layout
        for old in (out / name).glob("*.json") if name not in written else ():
            old.unlink()
    if test_images is not None:
        test_root = stage(test_images, data_dir, "-test")
        written["test"] = write_json(out / "test" / "test.json", test_json_for(test_root, categories, problems))
    files = DataFiles(
        train_json=Path(train_json),
        train_images=root,
        test_json=written.get("test"),
        test_images=test_root if "test" in written else None,
        val_json=written.get("val"),
    )
    return Prepared(files, layout, problems)


def _load(path: Path) -> dict | None:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return None
    ok = isinstance(data, dict) and isinstance(data.get("images"), list) and isinstance(data.get("categories"), list)
    return data if ok else None


def _image_index(root: Path) -> dict[str, list[PurePosixPath]]:
    """Every image file under ``root`` (links followed), by file name: paths relative to ``root``."""
    index: dict[str, list[PurePosixPath]] = defaultdict(list)
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__MACOSX")
        relative = PurePosixPath(Path(folder).relative_to(root).as_posix())
        for name in sorted(files):
            if name.lower().endswith(IMAGE_SUFFIXES):
                index[name].append(relative / name)
    return index


def name_parts(file_name: str) -> tuple[str, ...]:
    """A ``file_name`` as path parts: backslashes as slashes, no ``.``, ``..``, empty parts or drive letters."""
    parts = file_name.replace("\\", "/").split("/")
    return tuple(p for p in parts if p not in ("", ".", "..") and not (len(p) == 2 and p[1] == ":"))


def resolve(file_name: str, part: Part, root: Path, index: dict) -> tuple[str | None, list[str]]:
    """(the name relative to ``root``, []) by the module's rule; (None, [both candidates]) when two files fit;
    (None, []) when none does."""
    parts = name_parts(file_name)
    if not parts:
        return None, []
    for base in (part.base, part.json.parent, root):
        candidate = base.joinpath(*parts)
        if candidate.is_file():
            try:
                return candidate.relative_to(root).as_posix(), []
            except ValueError:
                continue
    candidates = index.get(parts[-1], [])
    for k in range(len(parts), 0, -1):
        matches = [c for c in candidates if c.parts[-k:] == parts[-k:]]
        if len(matches) == 1:
            return str(matches[0]), []
        if matches:
            return None, [str(m) for m in matches[:2]]
    return None, []


def _categories(train: dict, json_path: Path, problems: list[Problem]) -> tuple[list[dict], set]:
    """The train json's categories that own annotations; the ids left out. Same-name categories are an error."""
    used = Counter(a.get("category_id") for a in train.get("annotations") or [] if isinstance(a, dict))
    categories = [c for c in train["categories"] if isinstance(c, dict)]
    kept = [c for c in categories if used[c.get("id")]]
    dropped = [c for c in categories if not used[c.get("id")]]
    if dropped and kept:
        names = ", ".join(f"{c.get('id')} {c.get('name')!r}" for c in dropped)
        message = (
            f"{len(dropped)} of {len(categories)} categories own no annotation and are left out of the classes: "
            f"{names} (Roboflow's dataset-name category, labelme's _background_ ...)"
        )
        problems.append(Problem(WARNING, str(json_path), "", message))
    ids_by_name = defaultdict(list)
    for c in kept:
        ids_by_name[c.get("name")].append(c.get("id"))
    for name, ids in ids_by_name.items():
        if len(ids) > 1:
            message = (
                f"categories {', '.join(map(str, ids))} have one name {name!r}: the model could not tell them apart "
                "in any figure or export; rename one, or give their annotations one category id"
            )
            problems.append(Problem(ERROR, str(json_path), f"category {ids[0]}", message))
    return (kept if kept else categories), {c.get("id") for c in dropped} if kept else set()


def _rewritten(coco, part, root, index, categories, dropped, crowd_as_objects, problems) -> dict:
    """``coco`` with its names resolved, the train categories, annotations of left-out categories dropped."""
    unresolved, ambiguous, renamed = [], [], 0
    images = []
    for image in coco["images"]:
        if not isinstance(image, dict) or not isinstance(image.get("file_name"), str):
            images.append(image)  # the check names what is wrong with it
            continue
        found, both = resolve(image["file_name"], part, root, index)
        if found is None:
            (ambiguous if both else unresolved).append((image, both))
            found = "/".join(name_parts(image["file_name"])) or image["file_name"]
        renamed += found != image["file_name"]
        images.append({**image, "file_name": found})
    for image, both in ambiguous[:5]:
        message = (
            f"file_name {image['file_name']!r} fits two files, {both[0]} and {both[1]}; give the path from the "
            f"export's folder in the json, or keep one of the files"
        )
        problems.append(Problem(ERROR, str(part.json), f"image {image.get('id')}", message))
    if len(ambiguous) > 5:
        message = f"... and {len(ambiguous) - 5} more file_names that fit two files"
        problems.append(Problem(ERROR, str(part.json), "", message))
    annotations = coco.get("annotations")
    if isinstance(annotations, list):
        kept = [a for a in annotations if not (isinstance(a, dict) and a.get("category_id") in dropped)]
        if crowd_as_objects:
            kept = [{**a, "iscrowd": 0} if isinstance(a, dict) and a.get("iscrowd") else a for a in kept]
        annotations = kept
    result = {**coco, "images": images, "categories": categories}
    if annotations is not None:
        result["annotations"] = annotations
    return result


def test_json_for(folder: Path, categories: list[dict], problems: list[Problem]) -> dict:
    """A test json for every image under ``folder`` (sorted, recursive): ids 1..N, sizes as the loader reads them."""
    from PIL import Image, UnidentifiedImageError

    images, unreadable = [], []
    index = _image_index(folder)
    for relative in sorted(p for paths in index.values() for p in paths):
        try:
            with Image.open(folder / relative) as img:
                width, height = img.size
                if img.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # the loader turns it: sides swap
                    width, height = height, width
        except (OSError, UnidentifiedImageError, ValueError):
            unreadable.append(str(relative))
            continue
        images.append({"id": len(images) + 1, "file_name": str(relative), "width": width, "height": height})
    if unreadable:
        message = f"{len(unreadable)} files could not be read as images and are left out (e.g. {unreadable[0]})"
        problems.append(Problem(WARNING, str(folder), "", message))
    if not images:
        problems.append(Problem(ERROR, str(folder), "", "TEST_IMAGES holds no image (.jpg, .png, ...)"))
    return {"images": images, "categories": categories}
