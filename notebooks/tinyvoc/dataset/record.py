"""The class id mapping, the validation split, and the dataset record notebooks 02-04 read.

The dataset's category ids (1..20 for Tiny VOC) are never assumed to be ``index + 1``: the model's
contiguous class indices are mapped through the mapping recorded here, in both directions. The
split is written to ``output/splits/`` so training, evaluation and the threshold sweep all use
the same ground truth, and ``output/dataset.json`` tells later notebooks what to register. The
record stores the data files relative to the data folder and the splits relative to the output
folder: on Colab the next notebook runs in a new runtime whose local copy of the data sits
elsewhere, and the record must still be read there.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from ..core.atomic import write_json
from ..core.coco_json import load_coco
from ..core.errors import TinyVocError
from ..core.paths import DataFiles, Outputs, require
from ..core.table import html_table, text_table


@dataclass(frozen=True)
class ClassMap:
    """Dataset category ids <-> the model's contiguous indices, in category-id order."""

    ids: tuple[int, ...]
    names: tuple[str, ...]

    def __post_init__(self):
        """The round trip dataset id -> class index -> dataset id holds for every class, or nothing is built: two
        classes on one id (or a name missing) would export one class's objects under the other's id."""
        back = [self.to_contiguous(self.to_dataset_id(k)) for k in range(len(self.ids))]
        if len(self.names) != len(self.ids) or back != list(range(len(self.ids))):
            raise TinyVocError(f"category ids {list(self.ids)} and names {list(self.names)} do not map one to one")

    @classmethod
    def from_categories(cls, categories: list[dict]) -> ClassMap:
        ordered = sorted(categories, key=lambda c: c["id"])
        return cls(tuple(int(c["id"]) for c in ordered), tuple(str(c["name"]) for c in ordered))

    def to_contiguous(self, dataset_id: int) -> int:
        return self.ids.index(dataset_id)

    def to_dataset_id(self, index: int) -> int:
        return self.ids[index]

    def name_of(self, dataset_id: int) -> str:
        return self.names[self.ids.index(dataset_id)]


def split_images(coco: dict, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Deterministic split of image ids: about ``val_fraction`` held out, each class on both sides.

    Uses only a seeded ``random.Random`` over sorted ids, so it is identical on every machine.
    Rarest classes are seeded into validation first, then the rest is filled at random.
    """
    ids = sorted(img["id"] for img in coco["images"])
    if val_fraction <= 0:
        return ids, []
    rng = random.Random(seed)
    order = ids[:]
    rng.shuffle(order)
    classes_of: dict[int, set[int]] = {i: set() for i in ids}
    for ann in coco.get("annotations", []):
        if ann["image_id"] in classes_of:
            classes_of[ann["image_id"]].add(ann["category_id"])
    target = max(1, round(len(ids) * val_fraction))
    images_with = Counter(c for cs in classes_of.values() for c in cs)
    val: list[int] = []
    for cat, count in sorted(images_with.items(), key=lambda kv: (kv[1], kv[0])):
        if count < 2 or any(cat in classes_of[i] for i in val) or len(val) >= target:
            continue
        val.append(next(i for i in order if cat in classes_of[i] and i not in val))
    for i in order:
        if len(val) >= target:
            break
        if i not in val:
            val.append(i)
    val_set = set(val)
    return [i for i in ids if i not in val_set], sorted(val_set)


def fingerprint(category_ids, class_names, train_ids, val_ids) -> str:
    """What a trained model depends on, as 12 hex digits: the classes (ids and names, in id order) and the split.

    A run records it (``run.json``); a run of another fingerprint is another dataset's model: its class
    indices mean other classes, or its validation scores were measured on images it trained on.
    """
    pairs = sorted(zip((int(i) for i in category_ids), (str(n) for n in class_names)))
    text = json.dumps([pairs, sorted(int(i) for i in train_ids), sorted(int(i) for i in val_ids)])
    return hashlib.sha1(text.encode()).hexdigest()[:12]


COURSE_SOURCES = ("tinyvoc", "sample")  # the course's data and its built-in stand-in; anything else is your own


def _subset(coco: dict, image_ids: list[int]) -> dict:
    keep = set(image_ids)
    return {
        "images": [img for img in coco["images"] if img["id"] in keep],
        "annotations": [a for a in coco.get("annotations", []) if a["image_id"] in keep],
        "categories": coco["categories"],
    }


@dataclass
class DatasetRecord:
    """What notebook 01 decided, saved as ``output/dataset.json`` for notebooks 02-04."""

    source: str
    files: dict
    train_split: str
    val_split: str | None
    val_fraction: float
    seed: int
    category_ids: list[int]
    class_names: list[str]
    counts: dict = field(default_factory=dict)
    name: str = ""  # shown in the runs table: "tinyvoc", "sample", or your dataset's folder name
    fingerprint: str = ""  # classes and split (``fingerprint``); a run records the one it learned
    mask_format: str = "polygon"  # detectron2's INPUT.MASK_FORMAT for this data: "polygon", or "bitmask" for RLE
    origin: str = ""  # your own data: DATASET as given (a folder or .zip), staged again on a runtime without it
    test_origin: str = ""  # your own data: TEST_IMAGES as given, when set
    crowd_as_objects: bool = False  # CROWD_AS_OBJECTS: crowd regions were made objects (staging again does the same)
    keep_empty_images: bool = False  # KEEP_EMPTY_IMAGES: images without objects train as negatives
    test_split: str | None = None  # a test json 01 wrote (the validation images when no test set was given)
    test_source: str = ""  # what the test images are, in words, for the record's table and 03/04

    def __post_init__(self):
        self.name = self.name or self.source

    @property
    def is_course(self) -> bool:
        """The course's data (or its sample): ImageNet weights only, the course's submission format."""
        return self.source in COURSE_SOURCES

    @property
    def class_map(self) -> ClassMap:
        return ClassMap(tuple(self.category_ids), tuple(self.class_names))

    def rows(self) -> list[tuple[str, str]]:
        """What notebook 01 shows: the source, the split and its counts, the classes (your own data: its name,
        where it came from, and the mask format its masks train with)."""
        counts = self.counts
        val = (
            f"{counts.get('val_images', 0):,} images, {counts.get('val_instances', 0):,} instances "
            f"({self.val_fraction:g} held out, seed {self.seed})"
            if self.val_split
            else "none (VAL_FRACTION = 0: training on all images)"
        )
        names = ", ".join(self.class_names)
        own = [] if self.is_course else [("masks", "RLE (INPUT.MASK_FORMAT bitmask)" if self.mask_format == "bitmask"
                                                  else "polygons")]  # fmt: skip
        return [
            ("source", self.source if self.is_course else f"{self.name}: {self.origin}"),
            ("train", f"{counts.get('train_images', 0):,} images, {counts.get('train_instances', 0):,} instances"),
            ("validation", val),
            ("test", f"{counts.get('test_images', 0):,} images" + (f" ({self.test_source})" * bool(self.test_source))),
            ("classes", f"{len(self.class_names)}: {names if len(names) <= 160 else names[:157] + '...'}"),
            *own,
        ]

    def __repr__(self) -> str:
        return text_table("Dataset (output/dataset.json)", self.rows())

    def _repr_html_(self) -> str:
        return html_table("Dataset (output/dataset.json)", self.rows())

    @property
    def data_files(self) -> DataFiles:
        """The dataset's files on this runtime; the test json and images are the ones 01 chose (``test_split``)."""
        files = DataFiles(**{k: Path(v) if v else None for k, v in self.files.items()})
        if self.test_split:
            test_images = files.test_images if files.test_json and files.test_images else files.train_images
            return replace(files, test_json=Path(self.test_split), test_images=test_images)
        return files

    @classmethod
    def load(cls, outputs: Outputs) -> DatasetRecord:
        """Read ``dataset.json`` with every path resolved for this runtime (the sample is regenerated if absent)."""
        path = require(outputs.dataset_record, "01_register_dataset.ipynb", "The dataset record")
        stamp = _stamp(path)
        saved = json.loads(path.read_text())
        files = {k: _resolve(v, outputs.data_dir) if v else None for k, v in saved["files"].items()}
        if saved["source"] == "sample" and not Path(files["train_json"]).exists():
            from .sample import make_sample_dataset

            make_sample_dataset(Path(files["train_json"]).parent)
        if saved.get("origin") and not Path(files["train_json"]).exists():  # a new runtime: stage your data again
            from .own_data import prepare

            origin, test_origin = (_resolve(saved[k], outputs.root.parent) if saved.get(k) else None
                                   for k in ("origin", "test_origin"))  # fmt: skip
            if not Path(origin).exists():
                raise TinyVocError(
                    f"{path} is the record of your dataset at {origin}, which is not on this runtime. Make it "
                    "reachable there (on Kaggle: Add Input, the same dataset; on Colab: the same file on Drive), or "
                    "run 01_register_dataset.ipynb again with DATASET set to where it is now."
                )
            prepare(origin, outputs.data_dir, test_images=test_origin, crowd_as_objects=saved["crowd_as_objects"])
        saved.update(
            files=files,
            train_split=_resolve(saved["train_split"], outputs.root),
            val_split=_resolve(saved["val_split"], outputs.root) if saved["val_split"] else None,
            test_split=_resolve(saved["test_split"], outputs.root) if saved.get("test_split") else None,
        )
        record = cls(**saved)
        if not record.fingerprint:  # a record written before runs knew their dataset
            record.fingerprint = _fingerprint_of_splits(record)
        _LOADED.clear()
        _LOADED[stamp] = record
        missing = record.data_files.missing()
        if missing:
            raise TinyVocError(
                f"The data that {path} refers to is not on this runtime: {', '.join(map(str, missing))}. Put the "
                "data in the project's data/ folder (each notebook's start cell copies it to each runtime), or run "
                "01_register_dataset.ipynb again."
            )
        return record


# The record this process last loaded, by (path, modification time, size): what is asked of it later (the
# submission's format) is answered without opening the file again while it is unchanged.
_LOADED: dict[tuple[str, int, int], DatasetRecord] = {}


def _stamp(path: Path) -> tuple[str, int, int]:
    stat = Path(path).stat()
    return str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size


def already_loaded(path: str | Path) -> DatasetRecord | None:
    """The record at ``path`` as :meth:`DatasetRecord.load` read it in this process, if the file is unchanged."""
    try:
        return _LOADED.get(_stamp(Path(path)))
    except OSError:
        return None


def _fingerprint_of_splits(record: DatasetRecord) -> str:
    def image_ids(split):
        return [img["id"] for img in load_coco(split)["images"]] if split and Path(split).exists() else []

    train, val = image_ids(record.train_split), image_ids(record.val_split)
    return fingerprint(record.category_ids, record.class_names, train, val)


def _relative(path: str | Path, base: Path) -> str:
    """``path`` relative to ``base`` when inside it (portable between runtimes), else absolute."""
    path = Path(path).resolve()
    try:
        return path.relative_to(Path(base).resolve()).as_posix()
    except ValueError:
        return str(path)


def _resolve(path: str, base: Path) -> str:
    return path if os.path.isabs(path) else str(Path(base) / path)


def prepare_dataset(
    files: DataFiles,
    outputs: Outputs,
    source: str,
    val_fraction: float = 0.1,
    seed: int = 0,
    *,
    own: dict | None = None,
) -> DatasetRecord:
    """Write the split files and the dataset record; the split files are complete before the record.

    A validation json of the export's own (Roboflow's ``valid/``) is the validation split as it is; else
    ``val_fraction`` of the training images is held out. Without a test set, the test json is the validation
    images' (or, with no validation either, the training images'), and the record says so. ``own`` holds what
    staging your own data again needs (``name``, ``origin``, ``test_origin``, ``crowd_as_objects``,
    ``keep_empty_images``).
    """
    missing = files.missing()
    if missing:
        raise TinyVocError("Dataset files not found: " + ", ".join(map(str, missing)) + ". See data/README.md.")
    train = load_coco(files.train_json, need_annotations=True)
    class_map = ClassMap.from_categories(train["categories"])
    test = load_coco(files.test_json) if files.test_json else None
    if test is not None and ClassMap.from_categories(test["categories"]) != class_map:
        raise TinyVocError(f"{files.test_json}: its categories differ from those in {files.train_json}")
    if files.val_json:
        val_coco = load_coco(files.val_json)
        train_ids, val_ids = sorted(img["id"] for img in train["images"]), sorted(i["id"] for i in val_coco["images"])
        train_split = write_json(outputs.split_dir / "train.json", train)
        val_split = write_json(outputs.split_dir / "val.json", {**val_coco, "categories": train["categories"]})
        val_annotations = val_coco.get("annotations", [])
    else:
        train_ids, val_ids = split_images(train, val_fraction, seed)
        train_split = write_json(outputs.split_dir / "train.json", _subset(train, train_ids))
        val_coco = _subset(train, val_ids)
        val_split = write_json(outputs.split_dir / "val.json", val_coco) if val_ids else None
        val_annotations = val_coco["annotations"]
    if not val_ids and (outputs.split_dir / "val.json").exists():
        (outputs.split_dir / "val.json").unlink()
    test_split, test_source = None, ""
    if test is None:  # your own data without a test set: 03 and 04 predict the validation (else training) images
        shown = val_coco if val_ids else train
        test = {"images": shown["images"], "categories": train["categories"]}
        test_split = write_json(outputs.split_dir / "test.json", test)
        test_source = "the validation images: no test set given" if val_ids else "the training images: no test set"
    else:
        (outputs.split_dir / "test.json").unlink(missing_ok=True)
    train_set = set(train_ids)
    trained = [a for a in train.get("annotations", []) if a["image_id"] in train_set]
    own = own or {}
    record = DatasetRecord(
        source=source,
        files={k: str(Path(v).resolve()) if v else None for k, v in asdict(files).items()},
        train_split=str(train_split.resolve()),
        val_split=str(val_split.resolve()) if val_split else None,
        val_fraction=0.0 if files.val_json else val_fraction,
        seed=seed,
        category_ids=list(class_map.ids),
        class_names=list(class_map.names),
        fingerprint=fingerprint(class_map.ids, class_map.names, train_ids, val_ids),
        mask_format=mask_format_of(trained),
        test_split=str(test_split.resolve()) if test_split else None,
        test_source=test_source,
        counts={
            "train_images": len(train_ids),
            "val_images": len(val_ids),
            "test_images": len(test["images"]),
            "train_instances": len(trained),
            "val_instances": len(val_annotations),
        },
        **own,
    )
    saved = asdict(record)
    saved["files"] = {k: _relative(v, outputs.data_dir) if v else None for k, v in record.files.items()}
    for key in ("train_split", "val_split", "test_split"):
        saved[key] = _relative(saved[key], outputs.root) if saved[key] else None
    for key in ("origin", "test_origin"):
        saved[key] = _relative(saved[key], outputs.root.parent) if saved[key] else ""
    write_json(outputs.dataset_record, saved, indent=2)
    return record


def mask_format_of(annotations: list[dict]) -> str:
    """detectron2's ``INPUT.MASK_FORMAT`` for these annotations: ``bitmask`` when any mask is RLE (CVAT writes
    them), whose polygon loader would stop minutes into training; else ``polygon``, the lighter one."""
    return "bitmask" if any(isinstance(a.get("segmentation"), dict) for a in annotations) else "polygon"


def stop_on_errors(report, outputs: Outputs) -> None:
    """After a failed dataset check, remove the previous split and record, then stop.

    Otherwise notebooks 02-04 would silently go on with the split of an earlier, different dataset.
    """
    if report.ok:
        return
    outputs.dataset_record.unlink(missing_ok=True)
    for name in ("train.json", "val.json", "test.json"):
        (outputs.split_dir / name).unlink(missing_ok=True)
    report.raise_if_errors()
