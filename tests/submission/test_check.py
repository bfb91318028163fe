"""Tests for the submission validator, on a small synthetic test set and on the course's real files.

The synthetic set (odd image sizes such as 37x53, masks made with pycocotools) runs everywhere; the
same checks run again on ``../shared/tinyvoc`` when it exists, on copies in ``tmp_path``.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_util
import pytest

from tinyvoc import cli
from tinyvoc.core.errors import TinyVocError
from tinyvoc.core.rle import rle_problems
from tinyvoc.submission.check import MAX_ERRORS, validate_submission

VOC_NAMES = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
IMAGES = {5: (37, 53), 9: (20, 31), 12: (37, 53), 40: (64, 48)}  # id -> (height, width); 12 gets nothing
# (image_id, category_id, score) of the synthetic submission
DETECTIONS = [(5, 1, 0.9), (5, 15, 0.75), (9, 15, 0.5), (40, 3, 1.0), (40, 15, 0), (5, 20, 0.01)]


def rle(height: int, width: int, seed: int) -> dict:
    """A compressed RLE with a str counts, as a submission holds it, of a noisy random blob."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((height, width), dtype=np.uint8)
    top, left = rng.integers(0, height // 2 + 1), rng.integers(0, width // 2 + 1)
    mask[top : top + rng.integers(1, height + 1), left : left + rng.integers(1, width + 1)] = 1
    mask[rng.random((height, width)) < 0.05] ^= 1
    encoded = mask_util.encode(np.asfortranarray(mask))
    return {"size": [int(s) for s in encoded["size"]], "counts": encoded["counts"].decode("ascii")}


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def synthetic(tmp_path) -> tuple[list[dict], Path]:
    """A small valid submission and the test json it belongs to."""
    test = {
        "images": [{"id": i, "file_name": f"{i}.jpg", "height": h, "width": w} for i, (h, w) in IMAGES.items()],
        "categories": [{"id": i + 1, "name": n, "supercategory": n} for i, n in enumerate(VOC_NAMES)],
    }
    entries = [
        {"image_id": i, "category_id": c, "segmentation": rle(*IMAGES[i], seed=k), "score": s}
        for k, (i, c, s) in enumerate(DETECTIONS)
    ]
    return entries, write_json(tmp_path / "test.json", test)


@pytest.fixture
def real(shared_tinyvoc, tmp_path) -> tuple[list[dict], Path]:
    """The real peer submission and test.json, copied so no test can touch ``../shared``."""
    shutil.copy(shared_tinyvoc / "test.json", tmp_path / "test.json")
    peer = shared_tinyvoc / "peer_submissions" / "peer_a.json"
    if not peer.exists():
        pytest.skip(f"real peer submission not found at {peer}")
    return json.loads(peer.read_text()), tmp_path / "test.json"


@pytest.fixture(params=["synthetic", "real"])
def case(request) -> tuple[list[dict], Path]:
    """Each required case runs on both sets; the real one skips when ``../shared/tinyvoc`` is absent."""
    return request.getfixturevalue(request.param)


def only_error(report) -> str:
    assert not report.ok
    assert len(report.errors) == 1, report.errors
    return report.errors[0]


# --- the required cases, on both the synthetic and the real files ---


def test_valid_submission_is_accepted(case, tmp_path):
    entries, test_json = case
    report = validate_submission(write_json(tmp_path / "submission.json", entries), test_json)
    assert report.ok, report.errors
    assert report.errors == []
    assert report.num_instances == report.num_entries == len(entries)
    assert "VALID" in report.summary()


def test_peer_submission_counts(real, tmp_path):
    entries, test_json = real
    report = validate_submission(write_json(tmp_path / "peer_a.json", entries), test_json)
    assert report.ok, report.errors
    assert report.num_instances == 125
    assert len(report.per_image) == 69
    assert len(report.images_without_detections) == 31
    assert report.summary().splitlines()[0].endswith("VALID: 125 instances on 69 of 100 test images")


def test_missing_segmentation(case):
    entries, test_json = case
    del entries[1]["segmentation"]
    error = only_error(validate_submission(entries, test_json))
    assert error == f"entry 1 (image_id {entries[1]['image_id']}): missing key(s) 'segmentation'"


def test_zero_based_category_ids(case):
    entries, test_json = case
    for entry in entries:
        entry["category_id"] -= 1
    report = validate_submission(entries, test_json)
    assert not report.ok
    first = next(i for i, e in enumerate(entries) if e["category_id"] == 0)
    assert report.errors[0] == (
        f"entry {first} (image_id {entries[first]['image_id']}): category_id 0 is not a category in "
        "test.json; category ids must be the dataset's ids (1..20 here), not 0-based indices; map model "
        "class indices through the dataset's categories"
    )
    assert all("not 0-based indices" in e for e in report.errors)


def test_category_ids_shifted_up(synthetic):
    entries, test_json = synthetic
    for entry in entries:
        entry["category_id"] += 1
    error = only_error(validate_submission(entries, test_json))  # only 20 -> 21 is unknown
    assert "category_id 21 is not a category in test.json" in error
    assert "look shifted up by one" in error


def test_unknown_category_without_shift(synthetic):
    entries, test_json = synthetic
    entries[0]["category_id"] = 77
    error = only_error(validate_submission(entries, test_json))
    assert error == "entry 0 (image_id 5): category_id 77 is not a category in test.json; known ids are 1..20"


def test_bytes_counts(case):
    entries, test_json = case
    entries[2]["segmentation"]["counts"] = entries[2]["segmentation"]["counts"].encode("ascii")
    error = only_error(validate_submission(entries, test_json))
    assert error.startswith(f"entry 2 (image_id {entries[2]['image_id']}): ")
    assert "counts must be a str (decode bytes with .decode('ascii'))" in error


def test_list_counts_is_uncompressed_rle(synthetic):
    entries, test_json = synthetic
    entries[0]["segmentation"]["counts"] = [100, 20, 1841]
    error = only_error(validate_submission(entries, test_json))
    assert "counts must be a str (decode bytes with .decode('ascii'))" in error
    assert "uncompressed RLE" in error


def test_wrong_rle_size(case):
    entries, test_json = case
    height, width = entries[0]["segmentation"]["size"]
    entries[0]["segmentation"] = rle(height + 1, width, seed=3)  # decodable, but for another size
    error = only_error(validate_submission(entries, test_json))
    assert error == (
        f"entry 0 (image_id {entries[0]['image_id']}): segmentation size does not match the image: "
        f"expected [{height}, {width}] (height, width from test.json), got [{height + 1}, {width}]"
    )


def test_swapped_rle_size(synthetic):
    entries, test_json = synthetic
    entries[0]["segmentation"] = rle(53, 37, seed=3)
    assert "height and width look swapped" in only_error(validate_submission(entries, test_json))


def test_unknown_image_id(case):
    entries, test_json = case
    entries[3]["image_id"] = 999999
    error = only_error(validate_submission(entries, test_json))
    assert error.startswith("entry 3 (image_id 999999): image_id 999999 is not an image in test.json")
    assert "not its position" not in error


def test_image_position_instead_of_id(synthetic):
    entries, test_json = synthetic
    entries[0]["image_id"] = 0
    error = only_error(validate_submission(entries, test_json))
    assert "image_id 0 is not an image in test.json" in error
    assert "use each image's 'id' from test.json, not its position in the list" in error


def test_nan_score_in_file(case, tmp_path):
    entries, test_json = case
    entries[4]["score"] = float("nan")
    path = write_json(tmp_path / "submission.json", entries)  # json writes NaN, which json reads back
    assert "NaN" in path.read_text()
    error = only_error(validate_submission(path, test_json))
    assert error == f"entry 4 (image_id {entries[4]['image_id']}): score must be a finite number in [0, 1], got nan"


def test_truncated_file(case, tmp_path):
    entries, test_json = case
    text = json.dumps(entries)
    path = tmp_path / "cut.json"
    path.write_text(text[: len(text) * 2 // 3])
    report = validate_submission(path, test_json)
    error = only_error(report)
    assert error.startswith(f"{path}: not valid JSON at line 1, column ")
    assert "was it cut off" in error
    assert report.num_instances == 0


# --- more entry checks, on the synthetic set ---


def test_score_above_one(synthetic):
    entries, test_json = synthetic
    entries[0]["score"] = 1.5
    error = only_error(validate_submission(entries, test_json))
    assert error == "entry 0 (image_id 5): score 1.5 is outside [0, 1]; scores must be confidences between 0 and 1"


@pytest.mark.parametrize("score", [math.inf, -math.inf])
def test_infinite_score(synthetic, score):
    entries, test_json = synthetic
    entries[0]["score"] = score
    assert "score must be a finite number in [0, 1]" in only_error(validate_submission(entries, test_json))


def test_scores_zero_and_one_and_ints_are_valid(synthetic):
    entries, test_json = synthetic
    entries[0]["score"], entries[1]["score"], entries[2]["score"] = 0, 1, 0.0
    assert validate_submission(entries, test_json).ok


def test_extra_key(synthetic):
    entries, test_json = synthetic
    entries[5]["bbox"] = [1, 2, 3, 4]
    error = only_error(validate_submission(entries, test_json))
    assert error.startswith("entry 5 (image_id 5): unexpected key(s) 'bbox'; only image_id, category_id")


def test_bool_image_id(synthetic):
    entries, test_json = synthetic
    entries[0]["image_id"] = True
    assert only_error(validate_submission(entries, test_json)) == ("entry 0: image_id must be an int, got bool True")


def test_bool_score(synthetic):
    entries, test_json = synthetic
    entries[0]["score"] = True
    assert "score must be a number in [0, 1], got bool True" in only_error(validate_submission(entries, test_json))


def test_string_and_numpy_ids(synthetic):
    entries, test_json = synthetic
    entries[0]["image_id"] = "5"
    entries[1]["category_id"] = np.int64(15)
    report = validate_submission(entries, test_json)
    assert report.errors == [
        "entry 0: image_id must be an int, got str '5'",
        "entry 1 (image_id 5): category_id must be an int, got numpy.int64 np.int64(15)",
    ]


def test_polygon_segmentation(synthetic):
    entries, test_json = synthetic
    entries[0]["segmentation"] = [[1, 1, 10, 1, 10, 10]]
    assert "got a list (polygons?)" in only_error(validate_submission(entries, test_json))


@pytest.mark.parametrize(
    ("counts", "message"),
    [
        ("", "segmentation counts is empty"),
        ("!!!", "characters outside '0'..'o'"),
        ("zzzz", "characters outside '0'..'o'"),  # pycocotools decodes this one to garbage
        ("é", "non-ASCII characters"),
        ("1P", "ends in the middle of a number"),
        ("0000000", "add up to 0 pixels, but size [37, 53] has 1961"),
        ("l57", "add up to 195 pixels"),  # pycocotools fills the missing pixels with uninitialised memory
        ("PPPPPPPPP1", "not a valid compressed RLE string"),
    ],
)
def test_undecodable_counts(synthetic, counts, message):
    entries, test_json = synthetic
    entries[0]["segmentation"]["counts"] = counts
    error = only_error(validate_submission(entries, test_json))
    assert error.startswith("entry 0 (image_id 5): segmentation counts ")
    assert message in error


def test_counts_of_another_size(synthetic):
    entries, test_json = synthetic
    entries[0]["segmentation"]["counts"] = rle(36, 53, seed=0)["counts"]
    error = only_error(validate_submission(entries, test_json))
    assert "add up to 1908 pixels, but size [37, 53] has 1961" in error


def test_segmentation_without_counts_or_bad_size(synthetic):
    entries, test_json = synthetic
    del entries[0]["segmentation"]["counts"]
    entries[1]["segmentation"]["size"] = [37]
    report = validate_submission(entries, test_json)
    assert "missing 'counts'" in report.errors[0]
    assert "size must be [height, width] as two positive ints, got [37]" in report.errors[1]


def test_entry_not_an_object_and_several_errors_per_entry(synthetic):
    entries, test_json = synthetic
    entries[0] = [5, 1]
    entries[1].update(image_id=1234, score=2)
    report = validate_submission(entries, test_json)
    assert report.errors[0].startswith("entry 0: expected an object with keys image_id, category_id")
    assert [e.split(": ", 1)[1].split(" ")[0:2] for e in report.errors[1:]] == [
        ["image_id", "1234"],
        ["score", "2"],
    ]
    assert report.num_instances == len(entries) - 2


def test_top_level_not_a_list(synthetic, tmp_path):
    _, test_json = synthetic
    path = write_json(tmp_path / "coco.json", {"images": [], "annotations": []})
    error = only_error(validate_submission(path, test_json))
    assert error == (
        f"{path}: the top level must be a JSON list of detections, got dict; write the list of detections "
        "itself, not a COCO file with 'annotations'"
    )


def test_empty_list_is_valid(synthetic, tmp_path):
    _, test_json = synthetic
    report = validate_submission(write_json(tmp_path / "empty.json", []), test_json)
    assert report.ok
    assert report.num_instances == 0
    assert report.images_without_detections == sorted(IMAGES)
    assert "valid but EMPTY" in report.summary()


def test_counts_per_image_and_class(synthetic):
    entries, test_json = synthetic
    report = validate_submission(entries, test_json)
    assert report.path == "<in-memory>"
    assert report.per_image == {5: 3, 9: 1, 40: 2}
    assert report.per_class == {1: 1, 3: 1, 15: 3, 20: 1}
    assert report.images_without_detections == [12]
    summary = report.summary()
    assert "VALID: 6 instances on 3 of 4 test images" in summary
    assert "per class: aeroplane(1) 1, bird(3) 1, person(15) 3, tvmonitor(20) 1" in summary
    assert "1 test images without detections: 12" in summary


def test_invalid_entries_are_not_counted(synthetic):
    entries, test_json = synthetic
    entries[2]["score"] = -0.1  # the only detection on image 9
    report = validate_submission(entries, test_json)
    assert report.per_image == {5: 3, 40: 2}
    assert report.images_without_detections == [9, 12]
    assert report.num_instances == 5 and report.num_entries == 6


def test_errors_are_capped_and_counted(synthetic):
    entries, test_json = synthetic
    bad = [dict(entries[0], score=2.0) for _ in range(MAX_ERRORS + 500)]
    report = validate_submission(bad, test_json)
    assert len(report.errors) == MAX_ERRORS
    assert report.more_errors == 500
    assert report.num_errors == MAX_ERRORS + 500
    assert report.errors[-1].startswith(f"entry {MAX_ERRORS - 1} ")
    lines = report.summary().splitlines()
    total = MAX_ERRORS + 500
    assert lines[0] == (
        f"<in-memory>: INVALID: {total} problem(s); 0 of {total} entries are valid, on 0 of 4 test images"
    )
    assert lines[-1] == f"  ... and {MAX_ERRORS + 480} more"
    assert sum(line.startswith("  entry ") for line in lines) == 20


def test_many_entries_across_parse_chunks(synthetic):
    """Thousands of strings parsed in several numpy chunks still map each problem to its own entry."""
    entries, test_json = synthetic
    many = [copy.deepcopy(entries[k % len(entries)]) for k in range(3000)]
    many[2222]["segmentation"]["counts"] += "P"
    report = validate_submission(many, test_json)
    assert len(report.errors) == 1
    assert report.errors[0].startswith("entry 2222 (image_id ")
    assert report.num_instances == 2999


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # pycocotools vs numpy 2
def test_rle_check_agrees_with_pycocotools():
    """Every string pycocotools encodes passes; every mutant that passes decodes to exactly its size."""
    rng = np.random.default_rng(0)
    counts, sizes = [], []
    for seed in range(300):
        height, width = (int(v) for v in rng.integers(1, 70, size=2))
        original = rle(height, width, seed)["counts"]
        counts.append(original)
        sizes.append((height, width))
        for _ in range(3):
            chars = list(original)
            position = int(rng.integers(0, len(chars)))
            if rng.random() < 0.5:
                del chars[position]
            else:
                chars[position] = chr(int(rng.integers(48, 112)))
            counts.append("".join(chars))
            sizes.append((height, width))
    problems = rle_problems(counts, sizes)
    assert all(p is None for p in problems[::4])
    accepted = [(c, s) for c, s, p in zip(counts, sizes, problems, strict=True) if p is None]
    assert len(accepted) > 300  # some mutants still describe a mask of the right size
    for text, (height, width) in accepted:
        seg = {"size": [height, width], "counts": text}
        assert mask_util.decode(seg).sum() == mask_util.area(seg)


# --- the test json ---


def test_missing_test_json(synthetic, tmp_path):
    entries, _ = synthetic
    with pytest.raises(TinyVocError, match="nowhere.json: file not found"):
        validate_submission(entries, tmp_path / "nowhere.json")


def test_test_json_not_json(synthetic, tmp_path):
    entries, test_json = synthetic
    test_json.write_text(test_json.read_text()[:40])
    with pytest.raises(TinyVocError, match=r"test\.json: not valid JSON"):
        validate_submission(entries, test_json)


def test_test_json_without_categories(synthetic, tmp_path):
    entries, _ = synthetic
    path = write_json(tmp_path / "images_only.json", {"images": []})
    with pytest.raises(TinyVocError, match=r"images_only\.json: not a COCO file"):
        validate_submission(entries, path)
    with pytest.raises(TinyVocError, match="needs 'images' and 'categories'"):
        validate_submission(entries, {"categories": []})


def test_test_json_image_without_size(synthetic, tmp_path):
    entries, _ = synthetic
    path = write_json(tmp_path / "t.json", {"images": [{"id": 1}], "categories": [{"id": 1, "name": "a"}]})
    with pytest.raises(TinyVocError, match=r"t\.json: images\[0\] needs integer 'id', 'height' and 'width'"):
        validate_submission(entries, path)


def test_missing_submission_file(synthetic, tmp_path):
    _, test_json = synthetic
    with pytest.raises(TinyVocError, match="absent.json: submission file not found"):
        validate_submission(tmp_path / "absent.json", test_json)


def test_test_json_as_dict(synthetic):
    entries, test_json = synthetic
    assert validate_submission(entries, json.loads(test_json.read_text())).ok


# --- the command line ---


def main(argv):
    """``tinyvoc validate ...``: the parsing lives in cli.py with the other verbs'."""
    return cli.main(["validate", *argv])


def test_main_valid(synthetic, tmp_path, capsys):
    entries, test_json = synthetic
    path = write_json(tmp_path / "submission.json", entries)
    assert main([str(path), "--test-json", str(test_json)]) == 0
    out, err = capsys.readouterr()
    assert f"{path}: VALID: 6 instances on 3 of 4 test images" in out
    assert err == ""


def test_main_invalid(synthetic, tmp_path, capsys):
    entries, test_json = synthetic
    entries[1]["score"] = float("nan")
    entries[2]["category_id"] = 0
    path = write_json(tmp_path / "submission.json", entries)
    assert main([str(path), "--test-json", str(test_json)]) == 1
    out, err = capsys.readouterr()
    assert "INVALID: 2 problem(s)" in out
    assert "entry 1 (image_id 5): score must be a finite number" in err
    assert "entry 2 (image_id 9): category_id 0 is not a category" in err
    assert "entry 1" not in out  # the error list goes to stderr only


def test_main_max_errors(synthetic, tmp_path, capsys):
    entries, test_json = synthetic
    for entry in entries:
        entry["score"] = 3
    path = write_json(tmp_path / "submission.json", entries)
    assert main([str(path), "--test-json", str(test_json), "--max-errors", "2"]) == 1
    err = capsys.readouterr().err
    assert err.count("score 3 is outside") == 2
    assert "... and 4 more" in err


def test_main_missing_test_json(synthetic, tmp_path, capsys):
    entries, _ = synthetic
    path = write_json(tmp_path / "submission.json", entries)
    assert main([str(path), "--test-json", str(tmp_path / "nope.json")]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "nope.json: file not found" in err


def test_main_missing_submission(synthetic, tmp_path, capsys):
    _, test_json = synthetic
    assert main([str(tmp_path / "gone.json"), "--test-json", str(test_json)]) == 2
    assert "gone.json: submission file not found" in capsys.readouterr().err


def test_main_defaults_to_the_projects_submission_and_test_json(synthetic, tmp_path, capsys):
    """``tinyvoc validate`` alone checks what 04 wrote against the project's test json, and names the folder."""
    entries, test_json = synthetic
    assert main(["--project-dir", str(tmp_path)]) == 2  # nothing exported yet: said, as for any unreadable file
    out, err = capsys.readouterr()
    assert (
        f"project: {tmp_path} (--project-dir)" in err
        and "submission.json: submission file not found (04_export_submission writes it)" in err
    )
    (tmp_path / "output").mkdir()
    write_json(tmp_path / "output" / "submission.json", entries)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "test.json").write_bytes(test_json.read_bytes())
    assert main(["--project-dir", str(tmp_path)]) == 0
    assert f"{tmp_path / 'output' / 'submission.json'}: VALID: 6 instances" in capsys.readouterr().out
    assert main(["a.json", "b.json"]) == 2  # one submission at a time: a usage error


def test_empty_and_broken_files(synthetic, tmp_path):
    _, test_json = synthetic
    empty = tmp_path / "empty.json"
    empty.write_text("")
    assert "not valid JSON at line 1, column 1 (character 0 of 0): Expecting value; the file is empty" in only_error(
        validate_submission(empty, test_json)
    )
    broken = tmp_path / "broken.json"
    broken.write_text('[{"image_id": 5,, "score": 1}]')
    error = only_error(validate_submission(broken, test_json))
    assert error.startswith(f"{broken}: not valid JSON at line 1, column 17 (character 16 of 30)")
    assert "cut off" not in error
    latin = tmp_path / "latin1.json"
    latin.write_bytes(b'["caf\xe9"]')
    assert "not UTF-8 text (byte 5)" in only_error(validate_submission(latin, test_json))


# --- the shortcuts the export takes: already-checked RLE strings, plainly valid entries ---


def test_checked_rles_skip_only_exactly_those_strings(synthetic):
    """A string vouched for is not parsed again; a changed string, or one vouched for at another size, is."""
    entries, test_json = synthetic
    seg = entries[0]["segmentation"]
    vouched = {(seg["size"][0], seg["size"][1], "l57")}  # a wrong promise shows the parse is really skipped
    seg["counts"] = "l57"
    assert validate_submission(entries, test_json, vouched).ok
    seg["counts"] = "l58"
    assert "add up to" in only_error(validate_submission(entries, test_json, vouched))
    seg["counts"] = rle(36, 53, seed=0)["counts"]  # valid for 36x53, not for image 5's 37x53
    other_size = {(36, 53, seg["counts"])}
    assert "add up to 1908 pixels, but size [37, 53] has 1961" in only_error(
        validate_submission(entries, test_json, other_size)
    )


def test_checked_rles_still_check_everything_else(synthetic):
    entries, test_json = synthetic
    checked = {
        (e["segmentation"]["size"][0], e["segmentation"]["size"][1], e["segmentation"]["counts"]) for e in entries
    }
    entries[1]["score"] = float("nan")
    entries[2]["image_id"] = 999
    entries[3]["segmentation"]["size"] = [48, 64]
    report = validate_submission(entries, test_json, checked)
    assert [e.split(":")[0] for e in report.errors] == [
        "entry 1 (image_id 5)",
        "entry 2 (image_id 999)",
        "entry 3 (image_id 40)",
    ]


def test_plainly_valid_never_accepts_what_the_full_check_rejects(synthetic):
    """The fast path says True only where the full check finds nothing, over many malformed variants."""
    from tinyvoc.submission.check import _entry_problems, _load_test_set, _plainly_valid

    entries, test_json = synthetic
    test = _load_test_set(test_json)
    base = entries[0]
    variants = [copy.deepcopy(base)]
    for key, values in {
        "image_id": [5, 12, 1234, True, 5.0, "5", np.int64(5), None],
        "category_id": [1, 20, 0, 21, False, 1.0, np.int32(1)],
        "score": [0.0, 1.0, 0.5, -0.1, 1.5, math.nan, math.inf, 1, True, "0.5", np.float32(0.5)],
    }.items():
        for value in values:
            variants.append({**copy.deepcopy(base), key: value})
    for seg in [
        {"size": [37, 53], "counts": base["segmentation"]["counts"]},
        {"size": [53, 37], "counts": "x"},
        {"size": (37, 53), "counts": "x"},
        {"size": [37, 53, 1], "counts": "x"},
        {"size": [37.0, 53], "counts": "x"},
        {"size": [37, 53], "counts": b"x"},
        {"size": [37, 53], "counts": [1, 2]},
        {"size": [37, 53]},
        {"size": [37, 53], "counts": "x", "extra": 1},
        [[1, 2, 3, 4, 5, 6]],
        None,
    ]:
        variants.append({**copy.deepcopy(base), "segmentation": seg})
    variants += [{k: v for k, v in base.items() if k != "score"}, {**base, "bbox": [0, 0, 1, 1]}, [base], None]
    accepted = [v for v in variants if _plainly_valid(v, test)]
    assert len(accepted) >= 8  # the shortcut does take the usual shapes
    for variant in variants:
        if _plainly_valid(variant, test):
            assert _entry_problems(variant, test, "") == [], variant
    assert sum(not _entry_problems(v, test, "") for v in variants) > len(accepted)  # the rest go the long way
