"""RLE encoding must round-trip through pycocotools exactly, on odd sizes, and be JSON-safe."""

import json

import numpy as np
import pytest
from pycocotools import mask as mask_util

from tinyvoc.core.rle import decode_mask, encode_mask


@pytest.mark.parametrize("shape", [(37, 53), (1, 1), (333, 500), (101, 7)])
def test_round_trip_matches_pycocotools_decode(shape):
    rng = np.random.default_rng(sum(shape))
    mask = rng.random(shape) > 0.6
    mask[: shape[0] // 2, : shape[1] // 3] = True  # a solid block so runs are long as well as short
    rle = encode_mask(mask)
    assert rle["size"] == [shape[0], shape[1]]
    assert isinstance(rle["counts"], str)
    json.dumps(rle)  # must be serialisable as is
    decoded = mask_util.decode({"size": rle["size"], "counts": rle["counts"].encode("ascii")})
    assert decoded.shape == shape
    assert np.array_equal(decoded.astype(bool), mask)
    assert np.array_equal(decode_mask(rle).astype(bool), mask)


def test_empty_and_full_masks():
    for mask in (np.zeros((13, 17), bool), np.ones((13, 17), bool)):
        assert np.array_equal(decode_mask(encode_mask(mask)).astype(bool), mask)
    assert mask_util.area({"size": [13, 17], "counts": encode_mask(np.ones((13, 17))).get("counts").encode()}) == 221
