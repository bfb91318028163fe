"""Atomic file writes: a crash mid-write never leaves a half-written artifact in place.

Every JSON, checkpoint and figure the pipeline writes goes through here: the data lands in a
temporary file in the same folder, is flushed to disk, then renamed over the target in one step.
A write that fails because the folder stopped answering (a dropped Drive) may not be able to remove
its temporary file either; such files are remembered and removed by the next write into that folder,
so a write retried after the mount came back (``core.faults.retry``) leaves no stray file.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

_UNREMOVED: set[Path] = set()  # temporary files whose removal failed (the folder did not answer)


def _remove_unremoved(folder: Path) -> None:
    for tmp in [p for p in _UNREMOVED if p.parent == folder]:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            continue
        _UNREMOVED.discard(tmp)


@contextmanager
def atomic_path(target: str | os.PathLike, sync: bool = True):
    """Yield a temporary path beside ``target``; rename it over ``target`` only on success.

    ``sync=False`` skips the flush to disk before the rename: still never a half-written file in sight, but after a
    power cut the file may be empty. For the hundreds of small per-image files of ``deliverables`` (mask PNGs,
    overlays), which the next run writes again, where one flush each cost a third of the time on a busy disk."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_unremoved(target.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make outputs unreadable to others
    try:
        yield Path(tmp)
        if sync:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        try:
            Path(tmp).unlink(missing_ok=True)
        except OSError:
            _UNREMOVED.add(Path(tmp))


def write_json(target: str | os.PathLike, obj, indent: int | None = None) -> Path:
    """Write ``obj`` as JSON to ``target`` atomically and return the path.

    ``json.dumps``, not ``json.dump``: ``dump`` streams through the pure-Python encoder, 5-8x slower on a 40 MB
    COCO file (benchmarks/bench_own_data.py); the text is held once in memory instead.
    """
    with atomic_path(target) as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=indent))
    return Path(target)


def write_bytes(target: str | os.PathLike, data: bytes, sync: bool = True) -> Path:
    """Write ``data`` to ``target`` atomically and return the path (``sync``: see :func:`atomic_path`)."""
    with atomic_path(target, sync) as tmp:
        Path(tmp).write_bytes(data)
    return Path(target)


def copy_file(source: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Copy ``source`` to ``target`` atomically (a copy cut short by a full disk or a dropped Drive leaves none).

    The modification time comes along: prediction caches are keyed by a checkpoint's size and time, so a checkpoint
    copied into another session (Kaggle's bring-in) keeps the caches made for it valid.
    """
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)
        stat = os.stat(source)
        os.utime(tmp, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    return Path(target)
