"""What is attached to a Kaggle session: files found among its inputs, and the course files staged from them.

Kaggle shows an uploaded dataset as it likes: the two json files, and the images as folders (Kaggle
unzips an uploaded zip into a folder, sometimes with the zip's own top folder inside:
``train_images/train_images/``) or as zips. So the inputs are searched, not assumed, and a folder of
the four standard names is made on the session's scratch disk (outside ``/kaggle/working``, so it is
never saved) with ``local_data.stage``, the routine Colab's local copy uses: image folders are linked
there and read in place, zips are unpacked there. Nothing is ever written into an input.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ...core.coco_json import load_coco
from ...core.errors import TinyVocError
from ...core.paths import TEST_IMAGES, TEST_JSON, TRAIN_IMAGES, TRAIN_JSON, DataFiles
from .. import local_data
from .session import ATTACH_DATA, input_root, scratch_data_dir

STAGED_MARKER = ".staged-from-inputs.json"  # what the scratch folder was made from (local_data's own marker differs)
SEARCH_DEPTH = 4  # how deep under /kaggle/input the course files and earlier outputs are looked for


def folders(top: Path, depth: int = SEARCH_DEPTH):
    """Every folder under ``top`` down to ``depth`` levels, parents first, in a stable order (links followed: the
    depth bounds a loop)."""
    level = [top]
    for _ in range(depth + 1):
        following = []
        for folder in level:
            yield folder
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError:
                continue
            following += [Path(e.path) for e in entries if e.is_dir()]
        level = following


def input_name(path: Path, inputs: Path) -> str:
    """The attached input a path belongs to (its first folder under ``/kaggle/input``)."""
    try:
        return path.relative_to(inputs).parts[0]
    except (ValueError, IndexError):
        return str(path)


def find_input_file(name: str, inputs: Path | None = None) -> Path | None:
    """The first file called ``name`` in the attached inputs (e.g. pretrained weights added to a dataset), or None."""
    inputs = input_root() if inputs is None else Path(inputs)
    if not inputs.is_dir():
        return None
    return next((f / name for f in folders(inputs) if (f / name).is_file()), None)


@dataclass(frozen=True)
class CourseFiles:
    """The four course files as found in the inputs; each image entry is a folder of images or a zip."""

    train_json: Path
    test_json: Path
    train_images: Path
    test_images: Path

    def sources(self) -> dict[str, Path]:
        return {TRAIN_JSON: self.train_json, TEST_JSON: self.test_json, TRAIN_IMAGES: self.train_images,
                TEST_IMAGES: self.test_images}  # fmt: skip


def _first_file_name(json_path: Path) -> str:
    images = load_coco(json_path)["images"]
    if not images:
        raise TinyVocError(f"{json_path} lists no images")
    return images[0]["file_name"]


def _image_source(json_path: Path, name: str, inputs: Path) -> Path | None:
    """The folder holding the images ``json_path`` lists (``name/`` or ``name/name/``, as Kaggle unzips an upload),
    or ``name.zip``: looked for beside the json first, then anywhere in the inputs."""
    first = _first_file_name(json_path)
    near = [json_path.parent] + [f for f in folders(_top_input(json_path, inputs)) if f != json_path.parent]
    everywhere = near + [f for f in folders(inputs) if f not in near]
    for folder in everywhere:
        for candidate in (folder / name, folder / name / name):
            if (candidate / first).is_file():
                return candidate
        if (folder / f"{name}.zip").is_file():
            return folder / f"{name}.zip"
    return None


def _top_input(path: Path, inputs: Path) -> Path:
    try:
        return inputs / path.relative_to(inputs).parts[0]
    except (ValueError, IndexError):
        return path.parent


def find_course_files(inputs: Path | None = None) -> CourseFiles | None:
    """The course files in the attached inputs, or None when no input holds the two json files.

    The first folder (in name order) holding both ``pascal_train.json`` and ``test.json`` wins; its images
    are the folder or zip whose content holds the first image the json lists. Json files without their
    images stop with a message naming what is missing.
    """
    inputs = input_root() if inputs is None else Path(inputs)
    if not inputs.is_dir():
        return None
    for folder in folders(inputs):
        if (folder / TRAIN_JSON).is_file() and (folder / TEST_JSON).is_file():
            found = {}
            for images, json_name in local_data.IMAGE_FOLDERS.items():
                source = _image_source(folder / json_name, images, inputs)
                if source is None:
                    raise TinyVocError(
                        f"{folder / json_name} is attached, but no attached input holds the images it lists "
                        f"({images}/ with {_first_file_name(folder / json_name)}, or {images}.zip). {ATTACH_DATA}."
                    )
                found[images] = source
            return CourseFiles(folder / TRAIN_JSON, folder / TEST_JSON, found[TRAIN_IMAGES], found[TEST_IMAGES])
    return None


def stage_course_files(found: CourseFiles, local: Path | None = None) -> DataFiles:
    """A folder of the four standard names on the scratch disk: json files copied, image folders linked (read in
    place), zips unpacked; checked once (every listed image present). Returns its :class:`DataFiles`."""
    local = scratch_data_dir() if local is None else Path(local)
    return local_data.stage(found.sources(), local, marker=STAGED_MARKER, link_folders=True)
