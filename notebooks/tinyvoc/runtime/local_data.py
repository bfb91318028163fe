"""The dataset on this runtime's local disk: staged once per runtime from where it is stored, then checked.

On Colab the project folder lives on Google Drive, and reading 1349 small JPEGs through the Drive
mount for every epoch is slow. So each runtime copies the two json files and unpacks
``train_images.zip`` / ``test_images.zip`` (or copies the folders) onto its local disk once, and
checks that every image each json lists is there. A marker records what was staged, so running
another notebook's start cell in the same runtime takes no time. Off Colab the data folder is used
where it is; zips found there are unpacked in place, and the same marker spares the next notebook the check.

:func:`stage` is that one routine (copy the json files, unpack zips, copy or link image folders, check,
mark); Kaggle's inputs are staged with it too (``runtime.kaggle.inputs``), linking the folders instead of
copying them, as Kaggle's inputs are already on the machine's disk.
"""

from __future__ import annotations

import json
import os
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


def _stored_sources(folder: Path) -> dict[str, Path]:
    """The four files in ``folder`` under their standard names: each image entry its zip when there is one, else
    its folder."""
    zips = {name: folder / f"{name}.zip" for name in IMAGE_FOLDERS}
    return {**{name: folder / name for name in JSONS},
            **{name: z if z.is_file() else folder / name for name, z in zips.items()}}  # fmt: skip


def _signature(sources: dict[str, Path]) -> dict:
    """What a marker records of ``sources``: each file's path, size and time, each folder's path and entry count."""
    sig = {}
    for name, path in sources.items():
        if path.is_dir():
            sig[name] = [str(path), sum(1 for _ in os.scandir(path))]
        else:
            st = path.stat()
            sig[name] = [str(path), st.st_size, st.st_mtime_ns]
    return sig


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


def _link_entries(source: Path, target: Path) -> None:
    """A real folder whose entries link to ``source``'s: read in place, while the folder itself stays under the
    data folder (the dataset record stores paths relative to it, and resolving a linked folder would leave it)."""
    target.mkdir()
    for entry in os.scandir(source):
        (target / entry.name).symlink_to(entry.path)


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


def _marked(marker: Path, sig: dict) -> bool:
    return marker.is_file() and json.loads(marker.read_text()) == sig


def stage(
    sources: dict[str, Path], local: Path, *, marker: str = MARKER, link_folders: bool = False, where: str = ""
) -> DataFiles:
    """The four ``sources`` (standard name -> file, folder or zip) as a data folder ``local``: json files copied,
    zips unpacked, image folders copied (``link_folders``: linked entry by entry, read in place); every listed image
    checked; the sources recorded in ``marker``, so a second call with unchanged sources does nothing. ``where``
    names ``local`` in the closing line."""
    local, mark, sig = Path(local), Path(local) / marker, _signature(sources)
    if _marked(mark, sig):
        return DataFiles.in_folder(local)
    started = time.perf_counter()
    local.mkdir(parents=True, exist_ok=True)
    mark.unlink(missing_ok=True)
    for name, source in sources.items():
        target = local / name
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.is_dir():
            shutil.rmtree(target)
        if source.is_dir() and link_folders:
            _link_entries(source, target)
        elif source.is_dir():
            print(f"copying {source} to {target} ...", flush=True)
            shutil.copytree(source, target)
        elif source.suffix == ".zip":
            print(f"unpacking {source} to {target} ...", flush=True)
            _unzip(source, target)
        else:
            copy_file(source, target)
        print(f"  {name}: {source}" + (" (read in place)" if source.is_dir() and link_folders else ""), flush=True)
    counts = verify_images(local)
    mark.write_text(json.dumps(sig))
    print(
        f"data ready{where}: {local} ({counts[TRAIN_IMAGES]} train, {counts[TEST_IMAGES]} test images, "
        f"{time.perf_counter() - started:.0f} s)",
        flush=True,
    )
    return DataFiles.in_folder(local)


def stage_folder(source: Path, target: Path, *, copy: bool) -> Path:
    """Your own dataset (a folder or a ``.zip``) as the folder ``target`` on this runtime: a zip unpacked, a folder
    copied (``copy``: from Google Drive, read slowly) or linked entry by entry (read in place: local disk, Kaggle's
    read-only inputs). The marker records the source, so the next notebook's call with the same source does nothing.
    Returns ``target``."""
    source, target = Path(source), Path(target)
    if not source.exists():
        raise TinyVocError(f"DATASET {source}: no such folder or .zip file. Nothing was written.")
    if source.is_file() and source.suffix.lower() != ".zip":
        raise TinyVocError(f"DATASET {source}: a file that is not a .zip; give the export's folder or its zip.")
    sig = _signature({"dataset": source})
    if _marked(target / MARKER, sig):
        return target
    started = time.perf_counter()
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_file():
        print(f"unpacking {source} to {target} ...", flush=True)
        _unzip(source, target)
    elif copy:
        print(f"copying {source} to {target} ...", flush=True)
        shutil.copytree(source, target)
    else:
        _link_entries(source, target)
    (target / MARKER).write_text(json.dumps(sig))
    how = "read in place" if source.is_dir() and not copy else f"{time.perf_counter() - started:.0f} s"
    print(f"dataset staged: {source} -> {target} ({how})", flush=True)
    return target


def make_local(stored: Path, local: Path) -> DataFiles:
    """Copy/unpack the data from ``stored`` (the project folder) to ``local``; check; skip when already done."""
    stored, local = Path(stored), Path(local)
    if not present(stored):
        raise TinyVocError(f"{stored}: no Tiny VOC files (pascal_train.json, test.json, train_images, test_images)")
    if stored.resolve() != local.resolve():
        return stage(_stored_sources(stored), local, where=" on local disk")
    for name in IMAGE_FOLDERS:  # read in place: zips unpacked beside themselves
        if not (local / name).is_dir():
            print(f"unpacking {name}.zip in {local} ...", flush=True)
            _unzip(local / f"{name}.zip", local / name)
    sig = _signature({name: local / name for name in (*JSONS, *IMAGE_FOLDERS)})
    if not _marked(local / MARKER, sig):  # checked once per change
        verify_images(local)
        (local / MARKER).write_text(json.dumps(sig))
    return DataFiles.in_folder(local)
