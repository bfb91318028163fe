"""Test double of ``google.colab.drive``: ``mount`` exposes a temporary folder standing for Google Drive.

The folder is named by ``TINYVOC_FAKE_DRIVE`` (it holds ``MyDrive/``); without it, mounting fails
the way a refused authorisation does. Like Colab's, it refuses a mount point that already holds files.

A dropped mount, as Colab's Drive drops mid-run: after :func:`drop`, every file opened, created,
renamed or removed under the mount point fails with ``[Errno 107] Transport endpoint is not
connected`` until ``mount(..., force_remount=True)``, as on Colab. ``TINYVOC_FAKE_DRIVE_DROP_AT``
names a file (a substring of its path): the first time this process opens such a file under the
mount point, the mount drops (the Colab simulation uses it inside a runtime's kernel).
"""

import builtins
import errno
import io
import os

_state = {"dropped": False, "mount": None, "drop_at": os.environ.get("TINYVOC_FAKE_DRIVE_DROP_AT"), "drops": 0}


def mount(mountpoint, force_remount=False, timeout_ms=120000, readonly=False):
    drive = os.environ.get("TINYVOC_FAKE_DRIVE")
    if not drive:
        raise ValueError("mount failed")  # what Colab raises when the user does not allow access
    _state["mount"] = os.path.abspath(mountpoint)
    if _state["drop_at"]:
        _install_faults()
    if os.path.islink(mountpoint):
        if force_remount:
            os.unlink(mountpoint)
            _state["dropped"] = False
        else:
            print(f"Drive already mounted at {mountpoint}; to attempt to forcibly remount, call force_remount=True.")
            return
    if os.path.isdir(mountpoint) and os.listdir(mountpoint):
        raise ValueError("Mountpoint must not already contain files")
    if os.path.isdir(mountpoint):
        os.rmdir(mountpoint)
    os.makedirs(os.path.dirname(os.path.abspath(mountpoint)), exist_ok=True)
    os.symlink(drive, mountpoint)
    print(f"Mounted at {mountpoint}")


def drop() -> None:
    """The mount stops answering until it is mounted again with ``force_remount=True``."""
    _state["dropped"] = True
    _state["drops"] += 1


def _under_mount(path) -> bool:
    if _state["mount"] is None or isinstance(path, int):
        return False
    return os.path.abspath(os.fsdecode(path)).startswith(_state["mount"] + os.sep)  # the mount point itself answers


def is_dropped(path) -> bool:
    """Whether an operation on ``path`` fails now: the mount dropped and ``path`` is under it."""
    return _state["dropped"] and _under_mount(path)


def _failing(function):
    def call(path, *args, **kwargs):
        drop_at = _state["drop_at"]
        if drop_at and not _state["drops"] and _under_mount(path) and drop_at in os.fsdecode(path):
            drop()
            print(f"(test double: Drive dropped at {os.fsdecode(path)})", flush=True)
        if is_dropped(path):
            raise OSError(errno.ENOTCONN, os.strerror(errno.ENOTCONN), os.fsdecode(path))
        return function(path, *args, **kwargs)

    return call


def _install_faults() -> None:
    """Route this process's file functions through the drop check (once)."""
    if getattr(builtins.open, "_drive_double", False):
        return
    for module, name in ((builtins, "open"), (io, "open"), (os, "open"), (os, "replace"), (os, "unlink")):
        wrapped = _failing(getattr(module, name))
        wrapped._drive_double = True
        setattr(module, name, wrapped)
