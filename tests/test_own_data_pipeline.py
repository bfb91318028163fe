"""Your own data, end to end: a COCO export as a zip, RLE masks and ids 3, 7, 12, through the five notebooks.

What someone with 200 labelled photos does: point ``DATASET`` at the export and run all. The export here is
written by the test (``write_own_export``): no test set, so 03 and 04 use the validation images and say so;
RLE masks, which train only when the mask format follows the data; category ids that are neither contiguous nor
in order, which must come out of the submission as they went in.
"""

import json
import zipfile

import pytest

from tinyvoc.core.paths import NOTEBOOKS, Outputs
from tinyvoc.dataset.record import DatasetRecord
from tinyvoc.runner import run_all
from tinyvoc.submission.check import validate_submission

from .conftest import write_own_export

MAX_ITER = 30  # enough for detections on these two easy shapes (at 4 there are none to carry ids)


def text_of(path) -> str:
    book = json.loads(path.read_text())
    return "\n".join(
        "".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
        for c in book["cells"]
        for o in c.get("outputs", [])
    )


@pytest.fixture(scope="module")
def own_job(tmp_path_factory):
    scratch = tmp_path_factory.mktemp("own_job")
    export = write_own_export(scratch / "export" / "my-pets", n=10, masks="rle")
    archive = scratch / "my-pets.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(export.iterdir()):
            zf.write(path, f"my-pets/{path.name}")
    project = scratch / "project"
    outputs = Outputs.at(project / "output", project / "data")
    params = {"PROJECT_DIR": str(project), "DATASET": str(archive), "PROFILE": "smoke", "MAX_ITER": MAX_ITER,
              "VAL_FRACTION": 0.3, "SCORE_THRESH": 0.001}  # fmt: skip
    executed = dict(zip(NOTEBOOKS[1:], run_all(params, outputs, NOTEBOOKS[1:])))  # 00 checks the install only
    return outputs, executed


def test_the_export_is_registered_with_its_own_classes_and_mask_format(own_job):
    outputs, executed = own_job
    record = DatasetRecord.load(outputs)
    assert (record.source, record.name, record.mask_format) == ("own", "my-pets", "bitmask")
    assert record.category_ids == [3, 7, 12] and record.class_names == ["cat", "dog", "zebra"]
    assert "the validation images: no test set given" in text_of(executed[NOTEBOOKS[1]])
    assert "INPUT.MASK_FORMAT: 'polygon' -> 'bitmask'" in text_of(executed[NOTEBOOKS[2]])  # 02 says what it changed
    for notebook in (
        executed[NOTEBOOKS[3]],
        executed[NOTEBOOKS[4]],
    ):  # 03 and 04 say which images they predict as the test set
        assert "test images: the validation images: no test set given" in text_of(notebook)


def test_rle_masks_train_and_the_submission_keeps_the_datasets_ids(own_job):
    outputs, _ = own_job
    record = DatasetRecord.load(outputs)
    report = validate_submission(outputs.submission, record.data_files.test_json, format="coco")  # your own: COCO
    assert report.ok, report.summary()
    submitted = json.loads(outputs.submission.read_text())
    assert submitted and {row["category_id"] for row in submitted} <= {3, 7, 12}
    val_ids = {im["id"] for im in json.loads(record.data_files.test_json.read_text())["images"]}
    assert {row["image_id"] for row in submitted} <= val_ids


def test_the_predictions_come_as_coco_results_masks_and_prelabels_with_the_datasets_ids(own_job):
    """04's last cell: COCO results that pycocotools reads, and pre-labels, masks and overlays in one zip."""
    import contextlib
    import io

    from pycocotools.coco import COCO

    outputs, _ = own_job
    record = DatasetRecord.load(outputs)
    with contextlib.redirect_stdout(io.StringIO()):
        results = COCO(str(record.data_files.test_json)).loadRes(str(outputs.submission))
    assert results.getAnnIds() and set(results.getCatIds()) <= {3, 7, 12}
    prelabels = json.loads((outputs.prelabels_dir / "test.json").read_text())
    assert [c["id"] for c in prelabels["categories"]] == [3, 7, 12]
    names = zipfile.ZipFile(outputs.predictions_zip).namelist()
    assert "submission.json" in names and "prelabels/test.json" in names
    assert any(n.startswith("masks/test/") and n.endswith(".png") for n in names)
    assert any(n.startswith("overlays/test/") and n.endswith(".jpg") for n in names)
