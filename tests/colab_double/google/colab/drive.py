"""Test double of ``google.colab.drive``: ``mount`` exposes a temporary folder standing for Google Drive.

The folder is named by ``TINYVOC_FAKE_DRIVE`` (it holds ``MyDrive/``); without it, mounting fails
the way a refused authorisation does. Like Colab's, it refuses a mount point that already holds files.
"""

import os


def mount(mountpoint, force_remount=False, timeout_ms=120000, readonly=False):
    drive = os.environ.get("TINYVOC_FAKE_DRIVE")
    if not drive:
        raise ValueError("mount failed")  # what Colab raises when the user does not allow access
    if os.path.islink(mountpoint):
        if force_remount:
            os.unlink(mountpoint)
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
