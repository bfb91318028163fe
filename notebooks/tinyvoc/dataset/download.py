"""Fetch the course's four files from Google Drive by file id, into the project's data folder, and check them.

A Drive *folder* download lists at most 50 files (gdown's limit), so ``train_images/`` fetched as a
folder comes back cut short. The course files are therefore fetched one by one by file id: the two
json files and the two image zips. Offline, gdown can sit in retries for minutes; a short
connection check first makes an offline or firewalled machine fail at once. The files are public
copies circulated in course repositories: they can vanish or change, so what arrives is checked
against what the course released (1349 train and 100 test images, 20 categories, and the exact
test image ids and file names, kept here as a sha256), and any difference stops with a message
saying how to put the files there by hand. Before downloading, the space the missing files take is
checked against the free space where they go (on Colab, the Drive account's).
"""

from __future__ import annotations

import hashlib
import json
import socket
import zipfile
from pathlib import Path

from ..core.coco_json import load_coco
from ..core.errors import TinyVocError
from ..core.paths import TEST_IMAGES, TEST_JSON, TRAIN_IMAGES, TRAIN_JSON
from ..core.space import require_free

DRIVE_HOST = ("drive.google.com", 443)
# public copies of the course files (as circulated in public course repositories)
COURSE_FILE_IDS = {
    TRAIN_JSON: "1-3pTCXBCCZDCzs-ARSpgkP9L7tetWzY2",
    TEST_JSON: "1-8LgT4DH8VdZXtyH9NCI_UA4vRA5Acs-",
    f"{TRAIN_IMAGES}.zip": "1-BbVj_ZwsxOnY043ZcqIY2IJVtYbl7RX",
    f"{TEST_IMAGES}.zip": "1-9thvdluXGxE_Shi83dsp9XMIjgbE9ZQ",
}
# The files' sizes, for the space check before a download. Measured on the course's files in ../shared/tinyvoc
# (test.json; the 100 test JPEGs, 12,075,895 bytes; the first 10 train images, their pascal_train.json entries
# 73,807 bytes) and scaled to the 1349 train images (118 KB per JPEG, the mean of those 110): estimates, +10%.
COURSE_SIZES = {
    TRAIN_JSON: 11_000_000,
    TEST_JSON: 8_572,  # exact
    f"{TRAIN_IMAGES}.zip": 176_000_000,
    f"{TEST_IMAGES}.zip": 13_300_000,
}
COURSE_COUNTS = {TRAIN_IMAGES: 1349, TEST_IMAGES: 100}  # images in each folder of the course's release
CATEGORIES = 20
# sha256 of json.dumps(sorted([id, file_name] for each image of the course's test.json))
TEST_IMAGES_SHA256 = "8d4875be40c664038c6ad735a67b893ced22190809fdd1812ad01966233b0c35"


def by_hand(dest: Path) -> str:
    return (
        f"Put the files there by hand: download pascal_train.json, test.json, train_images.zip and test_images.zip "
        f"from the course page and upload them to {dest} (on Colab: the Files pane or drive.google.com), "
        "then run this cell again. See data/README.md."
    )


def check_reachable(dest: Path, timeout: float = 10) -> None:
    """Fail within ``timeout`` seconds when Google Drive cannot be reached."""
    try:
        socket.create_connection(DRIVE_HOST, timeout=timeout).close()
    except OSError as exc:
        raise TinyVocError(f"Cannot reach {DRIVE_HOST[0]} ({exc}). {by_hand(dest)}") from exc


def image_list_signature(coco: dict) -> str:
    pairs = sorted([int(img["id"]), str(img["file_name"])] for img in coco["images"])
    return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()


def _zip_images(archive: Path) -> int:
    try:
        with zipfile.ZipFile(archive) as zf:
            return sum(1 for n in zf.namelist() if n.lower().endswith((".jpg", ".jpeg", ".png")))
    except zipfile.BadZipFile as exc:
        raise TinyVocError(f"{archive}: not a readable zip file ({exc}). {by_hand(archive.parent)}") from exc


def verify_course_files(folder: str | Path) -> None:
    """Stop with a message when the files in ``folder`` are not the course's release."""
    folder = Path(folder)
    problems = []
    train = load_coco(folder / TRAIN_JSON, need_annotations=True)
    test = load_coco(folder / TEST_JSON)
    if len(train["images"]) != COURSE_COUNTS[TRAIN_IMAGES]:
        problems.append(f"{TRAIN_JSON} lists {len(train['images'])} images, not {COURSE_COUNTS[TRAIN_IMAGES]}")
    if len(train["categories"]) != CATEGORIES or len(test["categories"]) != CATEGORIES:
        problems.append(f"the json files do not have the {CATEGORIES} categories")
    if image_list_signature(test) != TEST_IMAGES_SHA256:
        problems.append(f"{TEST_JSON}'s image ids and file names differ from the course's {TEST_JSON}")
    for name, expected in COURSE_COUNTS.items():
        archive = folder / f"{name}.zip"
        if archive.is_file() and (found := _zip_images(archive)) != expected:
            problems.append(f"{archive.name} holds {found} images, not {expected}")
    if problems:
        raise TinyVocError(
            f"The files in {folder} are not the course's Tiny VOC release: {'; '.join(problems)}. {by_hand(folder)}"
        )


def _gdown(file_id: str, target: Path) -> None:
    import gdown

    tmp = target.with_name(f".{target.name}.part")
    try:
        got = gdown.download(id=file_id, output=str(tmp), quiet=False)
    except Exception as exc:  # noqa: BLE001 - gdown raises many kinds (gone, quota, permission)
        got, reason = None, f"{type(exc).__name__}: {exc}"
    else:
        reason = "nothing came back"
    if not got or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        raise TinyVocError(
            f"Could not download {target.name} (Drive file id {file_id}): {reason}. {by_hand(target.parent)}"
        )
    tmp.replace(target)


def fetch_course_files(dest: str | Path, timeout: float = 10, downloader=_gdown) -> Path:
    """Download the missing course files into ``dest`` by Drive file id, then verify all four."""
    dest = Path(dest)
    missing = [name for name in COURSE_FILE_IDS if not (dest / name).is_file()]
    if missing:
        require_free(dest, sum(COURSE_SIZES[name] for name in missing), f"the course files ({', '.join(missing)})")
        check_reachable(dest, timeout)
        dest.mkdir(parents=True, exist_ok=True)
        for name in missing:
            print(f"downloading {name} into {dest} ...", flush=True)
            downloader(COURSE_FILE_IDS[name], dest / name)
    verify_course_files(dest)
    return dest
