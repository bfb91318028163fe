"""Turn cached detections into ``submission.json``: filter, write, prove the written file valid, rename.

No model is loaded here, so choosing a new score threshold costs a fraction of a second even at
10,000 instances. The file is written to a temporary name beside the target and that file, as
read back from disk, goes through the submission check; only a valid file is renamed over the
target, so an invalid file never replaces a good one. Mask strings the prediction cache already
checked (``Predictions.checked_rles``) are not parsed again; everything else in each entry is.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from ..core.atomic import atomic_path, write_json
from ..core.errors import TinyVocError
from ..core.gc_pause import paused_gc
from ..core.paths import Outputs
from ..inference.cache_file import Predictions
from ..inference.selection import Selection
from ..runtime import colab, kaggle
from .check import SUBMISSION_KEYS, validate_submission
from .coco_results import project_format, rows_in
from .prelabels import write_prelabels


def source_record(target: str | Path) -> Path:
    """Where a submission's record of what made it goes: ``submission_source.json`` beside ``submission.json``."""
    target = Path(target)
    return target.with_name(f"{target.stem}_source.json")


def export_submission(
    predictions: Predictions,
    test_json: str | Path | dict,
    target: str | Path,
    selection: Selection,
    made_by: dict | None = None,
    format: str | None = None,
):
    """Write what ``selection`` keeps of the test predictions; return the check's report on the written file.

    ``format``: ``"course"`` (the grader's four keys) or ``"coco"`` (COCO results, with the mask's box); None: the
    project's dataset record beside ``target`` decides (``coco_results.project_format``: the course's data writes
    the course's format, your own data COCO results).

    ``test_json`` is the test set's json, as a path or as already loaded (``predictions.images.coco``).
    The rows are ``selection.apply``'s, the same the grids draw and the validation AP scores. ``made_by``
    (``TrainedRun.made_by``: the run, why it was chosen, the checkpoint) goes, with the selection, into
    :func:`source_record`: the submission itself stays the plain list other tools read.
    """
    if predictions.split != "test":
        raise TinyVocError("export needs predictions on the test split")
    if selection.lowest < predictions.score_floor:
        raise TinyVocError(
            f"score threshold {selection.lowest} is below the cache's floor {predictions.score_floor}; "
            f"choose {predictions.score_floor} or more"
        )
    format = format or project_format(Path(target).with_name("dataset.json"))
    with paused_gc():  # 10,000 rows made, written, read back and checked: see core/gc_pause.py
        rows = rows_in(selection.apply(predictions.detections, keys=SUBMISSION_KEYS), format)
        instances = len(rows)
        with atomic_path(target) as tmp:
            tmp.write_text(json.dumps(rows))
            del rows  # freed here, by reference counting, while the collector is paused
            report = validate_submission(tmp, test_json, predictions.checked_rles, format=format)
            report.path = str(target)
            if not report.ok:
                raise TinyVocError(f"refusing to write an invalid submission to {target}:\n{report.summary()}")
    if made_by is not None:
        made = {**made_by, "selection": selection.describe(), "instances": instances, "format": format}
        write_json(source_record(target), made, indent=2)
    return report


def exporter(
    predictions: Predictions, target: str | Path, made_by: dict | None = None
) -> Callable[[Selection], object]:
    """:func:`export_submission` bound to the test predictions and ``target``: what 04's export button calls. The
    pre-labels (``prelabels/<split>.json`` beside ``target``) follow the slider's threshold too."""

    def export(selection: Selection):
        report = export_submission(predictions, predictions.images.coco, target, selection, made_by)
        prelabels = Outputs.at(Path(target).parent).prelabels_dir / f"{predictions.split}.json"
        write_prelabels(predictions, selection, prelabels)
        return report

    return export


def hand_in(target: str | Path) -> str:
    """The line 04 ends with: which file to upload, where it is, how to get it to your computer.

    On Colab the browser is asked to save it at once (``google.colab.files.download``; Colab shows a prompt
    or saves to Downloads); on Kaggle it is among the notebook's saved output. ``submission_source.json`` beside
    it records what made it and is not for upload.
    """
    target = Path(target)
    if colab.on_colab():
        colab.download(target)
        how = "your browser is downloading it (it stays on Drive too)"
    elif kaggle.on_kaggle():
        how = "after Save Version, download it from the notebook's Output tab"
    else:
        how = "it is on this machine"
    return (
        f"To upload: {target.name} alone, at {target}; {how}. "
        f"{source_record(target).name} beside it records which run made it: keep it, do not upload it."
    )
