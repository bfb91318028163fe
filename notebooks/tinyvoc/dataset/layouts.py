"""Which COCO export a folder is: the layouts annotation tools write, recognised without settings.

Each tool lays out its COCO export its own way, and users should not have to say which one they have:

- Roboflow "COCO": ``train/``, ``valid/``, ``test/``, each with ``_annotations.coco.json`` beside its images;
  ``valid/`` is the validation split and ``test/`` the test split.
- CVAT "COCO 1.0": ``annotations/instances_<subset>.json`` and ``images/`` (subfolders kept), one json per
  subset (``default``, ``train``, ``val``/``validation``, ``test``).
- Label Studio "COCO": ``result.json`` and ``images/``.
- A plain folder: one COCO json (or a train json beside ``val*.json``/``test*.json``), the images where its
  ``file_name``s point, relative to the json or to an ``images/`` folder.

Only json files are looked at here, never an image: the result says which json plays which part and which
folder its ``file_name``s are read against first (``own_data`` resolves every name by one stated rule).
A folder none of these fits stops with what was found and the layouts known.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..core.errors import TinyVocError

KNOWN_LAYOUTS = (
    "Roboflow COCO (train/, valid/, test/ each with _annotations.coco.json)",
    "CVAT COCO 1.0 (annotations/instances_*.json + images/)",
    "Label Studio COCO (result.json + images/)",
    "a plain folder with one COCO json (images beside it or in images/)",
)
ROBOFLOW_JSON = "_annotations.coco.json"
ROBOFLOW_SPLITS = {"train": "train", "valid": "val", "val": "val", "validation": "val", "test": "test"}
# A json's part told by its name (CVAT's subsets, a plain folder's files): the first word found wins.
PART_WORDS = (("test", "test"), ("valid", "val"), ("val", "val"), ("train", "train"), ("default", "train"))


@dataclass(frozen=True)
class Part:
    """One json of the export, and the folder its ``file_name``s are read against first."""

    json: Path
    base: Path


@dataclass(frozen=True)
class Layout:
    """The export's parts: a training json always; validation and test when the export has them."""

    kind: str
    train: Part
    val: Part | None = None
    test: Part | None = None

    def describe(self) -> str:
        parts = (("train", self.train), ("val", self.val), ("test", self.test))
        return f"{self.kind} ({', '.join(f'{name} {p.json.name}' for name, p in parts if p is not None)})"


def _part_of(name: str) -> str | None:
    lowered = name.lower()
    return next((part for word, part in PART_WORDS if word in lowered), None)


def _jsons(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.json") if p.is_file() and not p.name.startswith("."))


def _by_part(jsons: list[Path], base_of, kind: str, root: Path) -> Layout:
    """Several jsons told apart by name: one train (an unnamed one is the train json), at most one val and test."""
    parts: dict[str, list[Path]] = {}
    for path in jsons:
        parts.setdefault(_part_of(path.stem) or "train", []).append(path)
    for part, found in parts.items():
        if len(found) > 1:
            raise TinyVocError(
                f"{root}: {len(found)} json files look like the {part} set ({', '.join(p.name for p in found)}); "
                "keep one, or point DATASET at the folder of the one you mean. Nothing was written."
            )
    if "train" not in parts:
        names = ", ".join(p.name for p in jsons)
        raise TinyVocError(
            f"{root}: no training json among {names} (a json named like test or val is not trained on); "
            "rename the one with your annotations, e.g. to train.json. Nothing was written."
        )

    def part(name):
        return Part(parts[name][0], base_of(parts[name][0])) if name in parts else None

    return Layout(kind, part("train"), part("val"), part("test"))


def find_layout(root: Path) -> Layout:
    """The layout of the export in ``root`` (an unpacked zip or a folder); a clear stop when none fits."""
    root = Path(root)
    if not root.is_dir():
        raise TinyVocError(f"DATASET {root}: not a folder or a .zip file. Nothing was written.")
    entries = [p for p in sorted(root.iterdir()) if not p.name.startswith((".", "__MACOSX"))]
    if len(entries) == 1 and entries[0].is_dir():  # a zip or a download with one top folder
        return find_layout(entries[0])
    roboflow = {ROBOFLOW_SPLITS[p.name.lower()]: p for p in entries if p.is_dir() and p.name.lower() in ROBOFLOW_SPLITS}
    roboflow = {part: folder for part, folder in roboflow.items() if (folder / ROBOFLOW_JSON).is_file()}
    if roboflow:
        if "train" not in roboflow:
            raise TinyVocError(
                f"{root}: a Roboflow COCO export without train/{ROBOFLOW_JSON} (found: "
                f"{', '.join(sorted(roboflow))}); export the training split too. Nothing was written."
            )

        def part(name):
            return Part(roboflow[name] / ROBOFLOW_JSON, roboflow[name]) if name in roboflow else None

        return Layout("Roboflow COCO", part("train"), part("val"), part("test"))
    images = root / "images"
    cvat = sorted((root / "annotations").glob("instances_*.json")) if (root / "annotations").is_dir() else []
    if cvat:
        return _by_part(cvat, lambda _: images, "CVAT COCO 1.0", root)
    if (root / "result.json").is_file():
        return Layout("Label Studio COCO", Part(root / "result.json", images if images.is_dir() else root))
    jsons = _jsons(root)
    if jsons:
        return _by_part(jsons, lambda _: images if images.is_dir() else root, "plain COCO folder", root)
    found = ", ".join(p.name + ("/" if p.is_dir() else "") for p in entries[:12]) or "nothing"
    more = f" and {len(entries) - 12} more" if len(entries) > 12 else ""
    raise TinyVocError(
        f"DATASET {root}: no COCO export found (it holds {found}{more}). Layouts known: "
        + "; ".join(KNOWN_LAYOUTS)
        + ". Nothing was written."
    )
