"""The dataset on this runtime's local disk: unpacked once per runtime from the project folder, then checked.

On Colab the project folder lives on Google Drive, and reading 1349 small JPEGs through the Drive
mount for every epoch is slow. So each runtime copies the two json files and unpacks
``train_images.zip`` / ``test_images.zip`` (or copies the folders) onto its local disk once, and
checks that every image each json lists is there. A marker records what was copied, so running
another notebook's start cell in the same runtime takes no time. Off Colab the data folder is used
where it is; zips found there are unpacked in place, and the same marker spares the next notebook the check.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import zipfile
from pathlib import Path

from ..core.atomic import copy_file
from ..core.coco_json import load_coco
from ..core.errors import TinyVocError
from ..core.paths import TEST_IMAGES, TEST_JSON, TRAIN_IMAGES, TRAIN_JSON, DataFiles

JSONS = (TRAIN_JSON, TEST_JSON)
IMAGE_FOLDERS = {TRAIN_IMAGES: TRAIN_JSON, TEST_IMAGES: TEST_JSON}  # each image folder and the json listing it
MARKER = ".copied-from.json"


def present(folder: Path) -> bool:
    """True when ``folder`` holds the two json files and, for each image folder, the folder or its zip."""
    folder = Path(folder)
    return all((folder / name).is_file() for name in JSONS) and all(
        (folder / name).is_dir() or (folder / f"{name}.zip").is_file() for name in IMAGE_FOLDERS
    )


def _signature(stored: Path) -> dict:
    sig = {}
    for entry in (*JSONS, *(f"{n}.zip" for n in IMAGE_FOLDERS), *IMAGE_FOLDERS):
        path = stored / entry
        if path.is_file():
            st = path.stat()
            sig[entry] = [st.st_size, st.st_mtime_ns]
        elif path.is_dir():
            sig[entry] = sum(1 for _ in path.iterdir())
    return {"from": str(stored), "entries": sig}


def _unzip(archive: Path, target: Path) -> None:
    """Unpack ``archive`` into ``target`` (whether the zip holds a top folder or the files themselves)."""
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as exc:
        raise TinyVocError(f"{archive}: not a readable zip file ({exc}); is the upload complete?") from exc
    with zf, tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}-") as tmp:
        zf.extractall(tmp)
        entries = [p for p in Path(tmp).iterdir() if not p.name.startswith(("__MACOSX", "."))]
        top = entries[0] if len(entries) == 1 and entries[0].is_dir() else Path(tmp)
        if target.exists():
            shutil.rmtree(target)
        shutil.move(str(top), str(target))


def verify_images(folder: Path) -> dict[str, int]:
    """Every image each json lists must be in its folder; returns the image count of each folder."""
    counts = {}
    for images, json_name in IMAGE_FOLDERS.items():
        coco = load_coco(folder / json_name)
        names = [img["file_name"] for img in coco["images"]]
        missing = [n for n in names if not (folder / images / n).is_file()]
        if missing:
            raise TinyVocError(
                f"{folder / images}: {len(missing)} of the {len(names)} images listed in {json_name} are missing "
                f"(e.g. {missing[0]}). Put the complete {images}.zip (or {images}/) in the project's data folder."
            )
        counts[images] = len(names)
    return counts


def make_local(stored: Path, local: Path) -> DataFiles:
    """Copy/unpack the data from ``stored`` (the project folder) to ``local``; check; skip when already done."""
    stored, local = Path(stored), Path(local)
    if not present(stored):
        raise TinyVocError(f"{stored}: no Tiny VOC files (pascal_train.json, test.json, train_images, test_images)")
    started = time.perf_counter()
    marker = local / MARKER
    if stored.resolve() == local.resolve():
        for name in IMAGE_FOLDERS:
            if not (local / name).is_dir():
                print(f"unpacking {name}.zip in {local} ...", flush=True)
                _unzip(local / f"{name}.zip", local / name)
        signature = _signature(local)
        if not (marker.is_file() and json.loads(marker.read_text()) == signature):  # checked once per change
            verify_images(local)
            marker.write_text(json.dumps(signature))
        return DataFiles.in_folder(local)
    signature = _signature(stored)
    if marker.is_file() and json.loads(marker.read_text()) == signature:
        return DataFiles.in_folder(local)
    local.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    for name in JSONS:
        copy_file(stored / name, local / name)
    for name in IMAGE_FOLDERS:
        print(f"copying {name} from {stored} to this runtime's disk ...", flush=True)
        if (stored / f"{name}.zip").is_file():
            _unzip(stored / f"{name}.zip", local / name)
        else:
            if (local / name).exists():
                shutil.rmtree(local / name)
            shutil.copytree(stored / name, local / name)
    counts = verify_images(local)
    marker.write_text(json.dumps(signature))
    print(
        f"data ready on local disk: {local} ({counts['train_images']} train, {counts['test_images']} test images, "
        f"{time.perf_counter() - started:.0f} s)"
    )
    return DataFiles.in_folder(local)
