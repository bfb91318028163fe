"""One trained run, read once: the dataset record, the frozen inference config, the checkpoint, the selection.

Notebooks 03 and 04 (and the CLI's ``visualize``/``export``) start from :meth:`TrainedRun.load`: it picks
the run (``RUN``: ``"best"`` or a name, see ``training.runs.pick``) and says why, reads ``dataset.json``
and the run's ``config.yaml`` once, picks the checkpoint, and serves each split's image list
and ground truth from one read of its json. Prediction, evaluation, export and the plots take the run
(or the :class:`~.predictions.Predictions` made from it) instead of re-reading those files. No
detectron2 catalog is needed: class names and ids come from the dataset record.
"""

from __future__ import annotations

import contextlib
import copy
import io
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from ..core.coco_json import load_coco
from ..core.errors import TinyVocError
from ..core.paths import Outputs, TrainFiles, require
from ..dataset.record import DatasetRecord
from ..training import runs
from ..training.storage import report_unfinished_uploads
from .selection import Selection

# Predictions are cached down to this score, so every threshold the view's slider offers (0.001 to 1)
# needs no new inference; the model keeps at most 100 detections per image whatever the floor.
DEFAULT_SCORE_FLOOR = 0.001
SPLITS = ("test", "val")


@dataclass(frozen=True)
class ImageItem:
    image_id: int
    path: Path
    height: int
    width: int


@dataclass(frozen=True)
class SplitImages:
    """One split's images as its json lists them, read once; ``coco`` is that json (ground truth for val)."""

    name: str
    json_path: Path
    coco: dict
    items: tuple[ImageItem, ...]

    @property
    def has_ground_truth(self) -> bool:
        return self.name == "val"

    @cached_property
    def ground_truth(self):
        """pycocotools' COCO index of the split (a copy: COCOeval rewrites polygons it evaluates as RLE)."""
        from pycocotools.coco import COCO

        if not self.has_ground_truth:
            raise TinyVocError("the test split has no ground truth; evaluate the val split")
        with contextlib.redirect_stdout(io.StringIO()):
            index = COCO()
            index.dataset = copy.deepcopy(self.coco)
            index.createIndex()
        return index

    def paths(self) -> dict[int, Path]:
        """Image id -> file, for drawing."""
        return {it.image_id: it.path for it in self.items}


def chosen_checkpoint(files: TrainFiles, which: str = "best") -> Path:
    """The checkpoint of the run in ``files`` that notebooks 03/04 use: ``best`` (falls back to final), ``final``, or
    a path."""
    if which not in ("best", "final"):
        path = Path(which)
        if not path.exists():
            raise TinyVocError(f"checkpoint {path} not found")
        return path
    candidates = [files.best, files.final] if which == "best" else [files.final]
    for path in candidates:
        if path.exists():
            return path
    raise TinyVocError(f"No trained checkpoint in {files.dir}. Run 02_train.ipynb first (with the same PROJECT_DIR).")


def load_checkpoint_state(path: str | Path, num_classes: int) -> dict:
    """Read a checkpoint's weights, with a clear error when it is truncated or for another dataset.

    detectron2's own loader only logs a warning when shapes differ and carries on with random
    weights for the class heads, which silently gives a useless model; here that is an error.
    """
    import torch

    path = Path(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same thing here
        raise TinyVocError(
            f"{path} cannot be read as a checkpoint ({type(exc).__name__}: {exc}); it may be truncated. "
            "Choose another CHECKPOINT, or delete it and re-run 02_train.ipynb to resume from the last good one."
        ) from None
    state = data.get("model") if isinstance(data, dict) else None
    if not isinstance(state, dict):
        raise TinyVocError(f"{path} is not a detectron2 training checkpoint (no 'model' weights in it)")
    head = state.get("roi_heads.box_predictor.cls_score.weight")
    if head is not None and head.shape[0] != num_classes + 1:
        raise TinyVocError(
            f"{path} was trained for {head.shape[0] - 1} classes, but this dataset has {num_classes}. "
            "Use a checkpoint trained on this dataset (02_train.ipynb with the same PROJECT_DIR)."
        )
    return state


@dataclass(frozen=True)
class TrainedRun:
    """What notebook 02 left for 03 and 04, read once (see the module docstring)."""

    outputs: Outputs
    record: DatasetRecord
    config_text: str  # the run's config.yaml as saved: portable, and part of the prediction cache's key
    trained_cfg: object = field(repr=False)  # that config loaded and frozen
    checkpoint: Path
    name: str  # the run's name (output/runs/<name>/)
    why: str  # why this run was taken (RUN = "best": its AP50; or the name given)
    _splits: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def load(
        cls, outputs: Outputs, checkpoint: str = "best", record: DatasetRecord | None = None, *, run: str = "best"
    ) -> TrainedRun:
        """Choose the run (``run``: ``"best"``, ``"auto"`` for the newest, or a name) and say which and why, read the
        dataset record and the run's config, and choose ``checkpoint`` (best, final or a path). Reads ``outputs`` only:
        on Kaggle, 03 and 04 bring the run in first (``runtime.kaggle.bring_in_trained_run``)."""
        from detectron2.config import get_cfg

        runs.adopt_legacy(outputs)  # a project from before runs had names: output/train/ becomes a run
        record = record or DatasetRecord.load(outputs)  # first: a project without 01's record is told to run 01
        name, why = runs.pick(outputs, run, record)  # this dataset's runs only
        files = outputs.run(name)
        text = require(files.config, "02_train.ipynb", "The training config").read_text()
        cfg = get_cfg()
        cfg.merge_from_other_cfg(cfg.load_cfg(text))
        cfg.freeze()
        chosen = chosen_checkpoint(files, checkpoint)
        print(f"Run {name} ({why}), checkpoint {chosen.name}")
        report_unfinished_uploads(files, cfg.SOLVER.CHECKPOINT_PERIOD, chosen.name)  # the last runtime's
        return cls(outputs, record, text, cfg, chosen, name, why)

    @property
    def files(self) -> TrainFiles:
        """The run's own files (metrics, config, checkpoints)."""
        return self.outputs.run(self.name)

    @property
    def predictions_dir(self) -> Path:
        """This run's prediction caches (``output/predictions/<name>/``)."""
        return self.outputs.predictions_for(self.name)

    def made_by(self) -> dict:
        """What a submission records about what made it: the run, why it was taken, the checkpoint."""
        inside = self.checkpoint.parent == self.files.dir
        checkpoint = self.checkpoint.name if inside else str(self.checkpoint)
        return {"run": self.name, "why": self.why, "checkpoint": checkpoint}

    @property
    def score_threshold(self) -> float:
        """The trained profile's own test threshold (0.4 reference, 0.01 strong, 0.05 smoke)."""
        return float(self.trained_cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST)

    @property
    def tta(self) -> bool:
        """Whether the profile predicts with test-time augmentation."""
        return bool(self.trained_cfg.TEST.AUG.ENABLED)

    @property
    def score_floor(self) -> float:
        """The lowest score kept in the prediction cache: :data:`DEFAULT_SCORE_FLOOR`, or the profile's own if lower."""
        return min(DEFAULT_SCORE_FLOOR, self.score_threshold)

    def selection(self, threshold: float | None = None, class_thresholds=None, max_per_image: int = 100) -> Selection:
        """What is drawn, scored and exported at ``threshold`` (None: the profile's own test threshold)."""
        default = self.score_threshold if threshold is None else threshold
        return Selection.above_floor(default, self.score_floor, class_thresholds, max_per_image)

    def inference_config(self, score_floor: float):
        """The one inference config: the trained one, keeping every detection scored ``score_floor`` or more; frozen."""
        cfg = self.trained_cfg.clone()
        cfg.defrost()
        cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = float(score_floor)
        cfg.freeze()
        return cfg

    def split(self, name: str) -> SplitImages:
        """The images of ``name`` ("test" or "val") and their json, read on first use, then kept."""
        if name not in self._splits:
            self._splits[name] = self._read_split(name)
        return self._splits[name]

    def _read_split(self, name: str) -> SplitImages:
        files = self.record.data_files
        if name == "test":
            if self.record.test_source:  # your own data without a test set of its own: 01 chose these images
                print(f"test images: {self.record.test_source} (01's TEST_IMAGES gives a folder of your own)")
            return read_split(name, files.test_json, files.test_images)
        if name == "val":
            if not self.record.val_split:
                raise TinyVocError("There is no validation split (VAL_FRACTION was 0 in 01_register_dataset.ipynb).")
            return read_split(name, Path(self.record.val_split), files.train_images)
        raise TinyVocError(f"unknown split {name!r}; use one of {', '.join(SPLITS)}")


def read_split(name: str, json_path: Path, image_folder: Path, check_files: bool = True) -> SplitImages:
    """Read one split's json once; with ``check_files``, stop when an image it lists is missing."""
    coco = load_coco(json_path)
    items = tuple(
        ImageItem(int(i["id"]), Path(image_folder) / i["file_name"], int(i["height"]), int(i["width"]))
        for i in coco["images"]
    )
    missing = [str(it.path) for it in items if check_files and not it.path.exists()]
    if missing:
        raise TinyVocError(f"{len(missing)} image(s) listed in the {name} json are missing, e.g. {missing[0]}")
    return SplitImages(name, Path(json_path), coco, items)
