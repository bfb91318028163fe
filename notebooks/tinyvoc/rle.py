"""Binary masks <-> the submission's compressed RLE (``{"size": [h, w], "counts": str}``).

pycocotools does the run-length coding in C on a Fortran-ordered uint8 array; its ``counts`` are
bytes, which JSON cannot hold, so they are decoded to ASCII text here, in this one place.
"""

from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_util


def encode_mask(mask: np.ndarray) -> dict:
    """Encode one HxW boolean/0-1 mask as ``{"size": [h, w], "counts": str}``."""
    rle = mask_util.encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def to_pycocotools(rle: dict) -> dict:
    """A submission RLE (``counts`` as str or bytes) as pycocotools' C functions take it (bytes)."""
    counts = rle["counts"]
    return {"size": list(rle["size"]), "counts": counts.encode("ascii") if isinstance(counts, str) else counts}


def decode_mask(rle: dict) -> np.ndarray:
    """Decode a compressed RLE (``counts`` as str or bytes) to an HxW uint8 mask."""
    return mask_util.decode(to_pycocotools(rle))
