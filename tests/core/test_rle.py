"""RLE encoding must round-trip through pycocotools exactly, on odd sizes, and be JSON-safe."""

import json

import numpy as np
import pytest
from pycocotools import mask as mask_util

from tinyvoc.core.rle import decode_mask, decode_masks, encode_mask


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


def test_decode_masks_equals_pycocotools_for_one_images_masks():
    rng = np.random.default_rng(3)
    shape = (37, 53)
    masks = [np.zeros(shape, bool), np.ones(shape, bool), rng.random(shape) > 0.5, rng.random(shape) > 0.97]
    masks[2][:20, :30] = True  # long runs beside short ones, and runs that wrap from one column to the next
    rles = [encode_mask(m) for m in masks]
    decoded = decode_masks(rles)
    expected = mask_util.decode([{"size": r["size"], "counts": r["counts"].encode()} for r in rles])
    assert decoded.shape == (*shape, 4) and decoded.dtype == bool and decoded.flags.f_contiguous
    assert np.array_equal(decoded, expected.astype(bool))
    assert np.array_equal(decode_masks([{**rles[2], "counts": rles[2]["counts"].encode()}])[:, :, 0], masks[2])


def test_decode_masks_refuses_strings_that_are_not_of_the_size():
    good = encode_mask(np.ones((4, 5), bool))
    for bad in ({**good, "size": [4, 6]}, {**good, "counts": good["counts"][:-1] + "z"}):
        with pytest.raises(ValueError, match="do not decode to 4 x 5"):
            decode_masks([good, bad])
