"""Optional download of the course's data from its Google Drive folder (on Colab).

Offline, gdown can sit in retries for minutes; a 10-second connection check first makes an
offline or firewalled machine fail at once, with a message saying where to put the files.
"""

from __future__ import annotations

import socket
import zipfile
from pathlib import Path

from .errors import TinyVocError

DRIVE_HOST = ("drive.google.com", 443)
EXPECTED = ("pascal_train.json", "test.json", "train_images", "test_images")


def _where_to_put(dest: Path) -> str:
    return f"Download the course files yourself and put {', '.join(EXPECTED)} in {dest} (see data/README.md)."


def check_reachable(dest: Path, timeout: float = 10) -> None:
    """Fail within ``timeout`` seconds when Google Drive cannot be reached."""
    try:
        socket.create_connection(DRIVE_HOST, timeout=timeout).close()
    except OSError as exc:
        raise TinyVocError(f"Cannot reach {DRIVE_HOST[0]} ({exc}). {_where_to_put(dest)}") from exc


def download_course_data(url: str, dest: str | Path, timeout: float = 10) -> Path:
    """Fetch the Drive folder at ``url`` into ``dest`` (unzipping archives); skip if already there."""
    dest = Path(dest)
    if (dest / "pascal_train.json").exists() and (dest / "test.json").exists():
        print(f"Course data already in {dest}; not downloading.")
        return dest
    if not url:
        raise TinyVocError(f"No COURSE_DATA_URL given. {_where_to_put(dest)}")
    check_reachable(dest, timeout)
    import gdown

    dest.mkdir(parents=True, exist_ok=True)
    files = gdown.download_folder(url, output=str(dest), quiet=False, remaining_ok=True)
    if not files:
        raise TinyVocError(f"Nothing was downloaded from {url}. {_where_to_put(dest)}")
    for archive in dest.glob("*.zip"):
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(dest)
    missing = [name for name in EXPECTED if not (dest / name).exists()]
    if missing:
        raise TinyVocError(f"The download lacks {', '.join(missing)}. {_where_to_put(dest)}")
    return dest
