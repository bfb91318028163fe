"""The package's pip wrapper and wheel tooling: run pip, hash a file, write a wheel.

Two jobs make wheels by hand: ``detectron2_install`` rewrites ``sal-detectron2`` as a pure-Python wheel,
and ``wheelhouse`` repacks an installed distribution for Kaggle's offline installs. Both need the same
RECORD (every file's urlsafe-base64 sha256 and size, the RECORD itself unhashed) and the same atomic
write, so a wheel is either whole or absent; pip refuses a wheel whose RECORD does not match.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import subprocess
import sys
import zipfile
from pathlib import Path

from ..core.atomic import atomic_path
from ..core.errors import TinyVocError


def pip(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    """Run this interpreter's pip (the package's one pip wrapper); stop when it gives no answer."""
    cmd = [sys.executable, "-m", "pip", *args]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise TinyVocError(f"`{' '.join(cmd)}` gave no answer within {timeout:.0f} s (no network?)") from exc


def sha256_of(path: Path) -> str:
    """The file's sha256 as hex, read in blocks (wheels and weights can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def write_wheel(files: dict[str, bytes], dist_info: str, target: Path) -> Path:
    """Write ``files`` (archive name -> bytes, RECORD excluded) as the wheel ``target``, with its RECORD, atomically."""
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for name, data in files.items():
        writer.writerow([name, _record_hash(data), len(data)])
    writer.writerow([f"{dist_info}/RECORD", "", ""])
    with atomic_path(target) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr(f"{dist_info}/RECORD", record.getvalue())
    return Path(target)
