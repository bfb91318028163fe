"""Fetch pretrained weights once, with a timeout, so an offline machine fails fast and clearly.

detectron2 would download ``detectron2://`` URLs itself, but with no timeout it can hang for
minutes offline and then fail deep inside a checkpoint loader. Here the file is fetched to a
cache first (atomically, with progress) and the config points at the local copy. On Kaggle with Internet off
the file is taken from an attached input that holds it (``runtime.kaggle``).
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

from ..core.atomic import atomic_path
from ..core.errors import TinyVocError
from ..core.paths import USER_CACHE
from ..runtime import kaggle

D2_PREFIX = "detectron2://"
D2_BASE_URL = "https://dl.fbaipublicfiles.com/detectron2/"
CACHE_DIR = Path(os.environ.get("TINYVOC_WEIGHTS_CACHE") or USER_CACHE / "weights")


def url_for(weights: str) -> str:
    return D2_BASE_URL + weights[len(D2_PREFIX) :] if weights.startswith(D2_PREFIX) else weights


def fetch(weights: str, cache_dir: Path = CACHE_DIR, timeout: float = 30) -> str:
    """Return a local path for ``weights`` (a path, an http(s) URL or a ``detectron2://`` name)."""
    if not weights or not (weights.startswith(D2_PREFIX) or weights.startswith(("http://", "https://"))):
        if weights and not Path(weights).exists():
            raise TinyVocError(f"weights file {weights} not found")
        return weights
    url = url_for(weights)
    target = Path(cache_dir) / url.rsplit("/", 1)[-1]
    if target.exists():
        return str(target)
    attached = kaggle.find_input_file(target.name) if kaggle.on_kaggle() else None
    if attached:  # Kaggle with Internet off: the file added to an attached dataset, read in place
        print(f"pretrained weights: {attached} (attached input)")
        return str(attached)
    print(f"downloading {url} -> {target}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, atomic_path(target) as tmp:
            total = int(resp.headers.get("Content-Length") or 0)
            done, step = 0, 0
            with open(tmp, "wb") as out:
                while block := resp.read(1 << 20):
                    out.write(block)
                    done += len(block)
                    if total and done * 10 // total > step:
                        step = done * 10 // total
                        print(f"  {done / 2**20:.0f} / {total / 2**20:.0f} MiB")
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        kaggle_way = f"; on Kaggle, add {target.name} to an attached dataset" if kaggle.on_kaggle() else ""
        raise TinyVocError(
            f"Could not download pretrained weights from {url}: {exc}. This needs internet (Colab has it). "
            f"Offline, copy the file to {target} and run again{kaggle_way}."
        ) from exc
    return str(target)
