"""Colab, detected and handled in one place: is this a Colab runtime, where Drive mounts, is it mounted.

Colab gives every notebook its own runtime; only Google Drive survives from one to the next. A
path under the mount point while Drive is not mounted is a trap: writing there creates ordinary
local folders that vanish at the disconnect (and make a later ``drive.mount`` fail because the
mount point is not empty). So every path under the mount point is checked before anything is
written there. The mount point is read from ``TINYVOC_DRIVE_MOUNT`` (default ``/content/drive``),
which lets the tests stand a temporary folder in for Drive.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from ..core.errors import TinyVocError

MOUNT_ENV = "TINYVOC_DRIVE_MOUNT"
DEFAULT_MOUNT = "/content/drive"


def on_colab() -> bool:
    """True inside a Colab runtime (where ``google.colab`` is importable)."""
    try:
        return importlib.util.find_spec("google.colab") is not None
    except (ImportError, ValueError):
        return False


def mount_point() -> Path:
    return Path(os.environ.get(MOUNT_ENV) or DEFAULT_MOUNT)


def my_drive() -> Path:
    """The user's Drive root once mounted (``/content/drive/MyDrive``)."""
    return mount_point() / "MyDrive"


def under_mount(path: str | os.PathLike) -> bool:
    path, mount = Path(os.path.abspath(path)), Path(os.path.abspath(mount_point()))
    return path == mount or mount in path.parents


def local_data_dir() -> Path:
    """Where a Colab runtime keeps its local copy of the data: beside the mount point, on the VM's own disk."""
    return Path(os.path.abspath(mount_point())).parent / "tinyvoc-data"


def drive_mounted() -> bool:
    return my_drive().is_dir()


def mount() -> None:
    """Mount Google Drive at the mount point (Colab asks the user to allow it); stop if that fails."""
    if drive_mounted():
        return
    from google.colab import drive

    drive.mount(str(mount_point()))
    if not drive_mounted():
        raise TinyVocError(f"Google Drive did not mount at {mount_point()} (no {my_drive()} after drive.mount).")


def remount() -> None:
    """Mount Drive again after it dropped (``force_remount``: the old mount answers nothing); stop if it is not back."""
    from google.colab import drive

    drive.mount(str(mount_point()), force_remount=True)
    if not drive_mounted():
        raise TinyVocError(f"Google Drive did not mount again at {mount_point()}.")


def remounter(path: str | os.PathLike):
    """What brings ``path`` back after its mount dropped: :func:`remount` for a Colab Drive path, else None."""
    return remount if on_colab() and under_mount(path) else None


def require_mounted(path: str | os.PathLike, what: str = "This folder") -> None:
    """Stop before writing under the Drive mount point while Drive is not mounted."""
    if under_mount(path) and not drive_mounted():
        raise TinyVocError(
            f"{what} {path} is on Google Drive ({mount_point()}), but Drive is not mounted. Nothing was written: "
            "files put there now would sit on the runtime's own disk and vanish at the disconnect. Run the "
            "notebook's first two cells (they mount Drive on Colab), or choose a PROJECT_DIR that is not on Drive."
        )


def download(path: str | os.PathLike) -> None:
    """Have the browser save ``path`` to the user's computer (``google.colab.files.download``); Colab only."""
    from google.colab import files

    files.download(str(path))
