"""Free space where the project writes, asked before the work that would fill it.

Colab's Drive is a mount that uploads later: when the account's 15 GB (shared with mail and photos)
is used up, writes there still seem to succeed and the files are never saved. Its ``statvfs``
reports the account's own storage (``df -h /content/drive/MyDrive``), so comparing what a run will
keep against it, before the run, catches a full Drive while nothing has been spent yet.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import TinyVocError
from .units import size


def free_bytes(path: str | os.PathLike) -> int | None:
    """Bytes free to this user on the filesystem of ``path`` (its nearest existing folder); None: it cannot tell."""
    folder = Path(os.path.abspath(path))
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        stats = os.statvfs(folder)
    except (OSError, AttributeError):  # AttributeError: no statvfs on this platform (Windows)
        return None
    if not stats.f_blocks:  # some FUSE mounts report nothing at all
        return None
    return stats.f_bavail * stats.f_frsize


def require_free(path: str | os.PathLike, needed: int, what: str) -> int | None:
    """Stop when ``needed`` bytes will not fit beside ``path``; return the free bytes (None: unknown, said in one line).

    ``what`` names what needs the space (``this run's checkpoints ...``). The message says both
    figures and what to do; on Drive, deleted files count until the bin is emptied.
    """
    free = free_bytes(path)
    if free is None:
        print(f"Free space on the filesystem of {path} cannot be told here; not checked ({what}: {size(needed)}).")
        return None
    if needed > free:
        raise TinyVocError(
            f"Not enough space for {what}: it needs {size(needed)} in {path}, and {size(free)} is free there. "
            "Nothing was written. Free space there (on Google Drive: empty the bin too, deleted files still count "
            "against the 15 GB), or choose another PROJECT_DIR, then run this again."
        )
    return free
