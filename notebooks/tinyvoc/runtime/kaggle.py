"""Kaggle, detected and handled in one place: its folders, the course files among the inputs, earlier outputs.

A Kaggle notebook runs in its own session. Only ``/kaggle/working`` (20 GB) is kept, as that
notebook's saved output; datasets and other notebooks' outputs are attached read-only under
``/kaggle/input/<slug>/`` ("Add Input"). So on Kaggle:

* the course files are looked for in whichever input holds them, as uploaded: the two json files and
  the images as folders (Kaggle unzips an uploaded zip into a folder, sometimes with the zip's own top
  folder inside: ``train_images/train_images/``) or as zips. A folder of the four standard names is
  made on the session's scratch disk (``tempfile.gettempdir()``, outside ``/kaggle/working`` so it is
  never saved): images in folders are linked there and read in place, zips are unpacked there. Nothing is
  ever written into an input;
* what an earlier notebook saved (01's ``output/dataset.json`` and splits for 02; 02's training run
  for 03 and 04; 02's own earlier version for a resume) is found in whichever attached output holds
  it, and only the files the notebook needs are copied into ``/kaggle/working/output`` (not every
  checkpoint: the 20 GB are the session's). Each piece says where it came from; a missing one names
  the output to attach. Records store paths relative to the output and data folders
  (``core.paths``), so copied records are read correctly here.

The root is read from ``TINYVOC_KAGGLE_ROOT`` (default ``/kaggle``), which lets the tests stand a
temporary folder in for Kaggle's.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..core.atomic import atomic_path
from ..core.coco_json import load_coco
from ..core.errors import TinyVocError
from ..core.paths import NOTEBOOKS, TEST_IMAGES, TEST_JSON, TRAIN_IMAGES, TRAIN_JSON, DataFiles, Outputs
from . import local_data

RUN_TYPE_ENV = "KAGGLE_KERNEL_RUN_TYPE"  # set by Kaggle: "Interactive" in the editor, "Batch" for a saved version
ROOT_ENV = "TINYVOC_KAGGLE_ROOT"
DEFAULT_ROOT = "/kaggle"
STAGED_MARKER = ".staged-from-inputs.json"  # what the scratch folder was made from (local_data's own marker differs)
SEARCH_DEPTH = 4  # how deep under /kaggle/input the course files and earlier outputs are looked for
# What to attach, in Kaggle's words, for each thing a notebook may lack.
ATTACH_DATA = (
    "Add Input > Datasets > Your Datasets > the dataset holding pascal_train.json, test.json, train_images(.zip) "
    "and test_images(.zip) (upload those four files once as a Kaggle dataset)"
)


def attach_output(notebook: str) -> str:
    return f"Add Input > Your Work > the notebook in which you ran {notebook} (its saved output)"


def run_type() -> str | None:
    """Kaggle's run type: ``Interactive`` (the editor), ``Batch`` ("Save Version"); None off Kaggle."""
    return os.environ.get(RUN_TYPE_ENV) or None


def on_kaggle() -> bool:
    return run_type() is not None


def is_batch() -> bool:
    """True in a "Save Version" run: headless, up to 12 hours, nobody to answer a prompt."""
    return run_type() == "Batch"


def root() -> Path:
    return Path(os.path.abspath(os.environ.get(ROOT_ENV) or DEFAULT_ROOT))


def input_root() -> Path:
    """Where Kaggle attaches datasets and notebook outputs, read-only."""
    return root() / "input"


def working_dir() -> Path:
    """What Kaggle saves as the notebook's output (20 GB): the project lives here."""
    return root() / "working"


def scratch_data_dir() -> Path:
    """The session's local copy of the data: on the scratch disk, never saved, never an input."""
    return Path(tempfile.gettempdir()) / "tinyvoc-data"


def _folders(top: Path, depth: int = SEARCH_DEPTH):
    """Every folder under ``top`` down to ``depth`` levels, parents first, in a stable order (links followed: the
    depth bounds a loop)."""
    level = [top]
    for _ in range(depth + 1):
        following = []
        for folder in level:
            yield folder
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError:
                continue
            following += [Path(e.path) for e in entries if e.is_dir()]
        level = following


def _input_name(path: Path, inputs: Path) -> str:
    """The attached input a path belongs to (its first folder under ``/kaggle/input``)."""
    try:
        return path.relative_to(inputs).parts[0]
    except (ValueError, IndexError):
        return str(path)


def find_input_file(name: str, inputs: Path | None = None) -> Path | None:
    """The first file called ``name`` in the attached inputs (e.g. pretrained weights added to a dataset), or None."""
    inputs = input_root() if inputs is None else Path(inputs)
    if not inputs.is_dir():
        return None
    return next((f / name for f in _folders(inputs) if (f / name).is_file()), None)


# --- the course files ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CourseFiles:
    """The four course files as found in the inputs; each image entry is a folder of images or a zip."""

    train_json: Path
    test_json: Path
    train_images: Path
    test_images: Path

    def sources(self) -> dict[str, Path]:
        return {TRAIN_JSON: self.train_json, TEST_JSON: self.test_json, TRAIN_IMAGES: self.train_images,
                TEST_IMAGES: self.test_images}  # fmt: skip


def _first_file_name(json_path: Path) -> str:
    images = load_coco(json_path)["images"]
    if not images:
        raise TinyVocError(f"{json_path} lists no images")
    return images[0]["file_name"]


def _image_source(json_path: Path, name: str, inputs: Path) -> Path | None:
    """The folder holding the images ``json_path`` lists (``name/`` or ``name/name/``, as Kaggle unzips an upload),
    or ``name.zip``: looked for beside the json first, then anywhere in the inputs."""
    first = _first_file_name(json_path)
    near = [json_path.parent] + [f for f in _folders(_top_input(json_path, inputs)) if f != json_path.parent]
    everywhere = near + [f for f in _folders(inputs) if f not in near]
    for folder in everywhere:
        for candidate in (folder / name, folder / name / name):
            if (candidate / first).is_file():
                return candidate
        if (folder / f"{name}.zip").is_file():
            return folder / f"{name}.zip"
    return None


def _top_input(path: Path, inputs: Path) -> Path:
    try:
        return inputs / path.relative_to(inputs).parts[0]
    except (ValueError, IndexError):
        return path.parent


def find_course_files(inputs: Path | None = None) -> CourseFiles | None:
    """The course files in the attached inputs, or None when no input holds the two json files.

    The first folder (in name order) holding both ``pascal_train.json`` and ``test.json`` wins; its images
    are the folder or zip whose content holds the first image the json lists. Json files without their
    images stop with a message naming what is missing.
    """
    inputs = input_root() if inputs is None else Path(inputs)
    if not inputs.is_dir():
        return None
    for folder in _folders(inputs):
        if (folder / TRAIN_JSON).is_file() and (folder / TEST_JSON).is_file():
            found = {}
            for images, json_name in local_data.IMAGE_FOLDERS.items():
                source = _image_source(folder / json_name, images, inputs)
                if source is None:
                    raise TinyVocError(
                        f"{folder / json_name} is attached, but no attached input holds the images it lists "
                        f"({images}/ with {_first_file_name(folder / json_name)}, or {images}.zip). {ATTACH_DATA}."
                    )
                found[images] = source
            return CourseFiles(folder / TRAIN_JSON, folder / TEST_JSON, found[TRAIN_IMAGES], found[TEST_IMAGES])
    return None


def stage_course_files(found: CourseFiles, local: Path | None = None) -> DataFiles:
    """A folder of the four standard names on the scratch disk: json files copied, image folders linked (read in
    place), zips unpacked; checked once (every listed image present). Returns its :class:`DataFiles`."""
    local = scratch_data_dir() if local is None else Path(local)
    marker = local / STAGED_MARKER
    signature = {name: [str(p), p.stat().st_size, p.stat().st_mtime_ns] for name, p in found.sources().items()}
    if marker.is_file() and json.loads(marker.read_text()) == signature:
        return DataFiles.in_folder(local)
    local.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    for name, source in found.sources().items():
        target = local / name
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.is_dir():
            shutil.rmtree(target)
        if name in (TRAIN_JSON, TEST_JSON):
            shutil.copyfile(source, target)
        elif source.is_dir():
            _link_entries(source, target)
        else:
            print(f"unpacking {source} to {target} ...", flush=True)
            local_data._unzip(source, target)  # noqa: SLF001 - the one unpacking rule (top folder or files)
        print(f"  {name}: {source}" + (" (read in place)" if source.is_dir() else ""), flush=True)
    counts = local_data.verify_images(local)
    marker.write_text(json.dumps(signature))
    print(f"data ready: {local} ({counts[TRAIN_IMAGES]} train, {counts[TEST_IMAGES]} test images)", flush=True)
    return DataFiles.in_folder(local)


def _link_entries(source: Path, target: Path) -> None:
    """A real folder whose entries link to ``source``'s: read in place, while the folder itself stays under the
    data folder (the dataset record stores paths relative to it, and resolving a linked folder would leave it)."""
    target.mkdir()
    for entry in os.scandir(source):
        (target / entry.name).symlink_to(entry.path)


# --- earlier notebooks' outputs -----------------------------------------------------------------------


@dataclass(frozen=True)
class EarlierOutput:
    """One ``output/`` folder found among the inputs (01's, 02's, or 02's own earlier version)."""

    outputs: Outputs
    input: str  # the attached input's name under /kaggle/input

    @property
    def has_dataset(self) -> bool:
        return self.outputs.dataset_record.is_file() and self.outputs.split_dir.is_dir()

    @property
    def training(self) -> dict | None:
        """The training record (``train/run.json``), or None when this output holds no training."""
        try:
            return json.loads(self.outputs.train.record.read_text())
        except (OSError, ValueError):
            return None

    @property
    def resumable(self) -> bool:
        return self.outputs.train.last_checkpoint.is_file()

    def describe(self) -> str:
        return f"input '{self.input}' ({self.outputs.root})"


def find_outputs(inputs: Path | None = None) -> list[EarlierOutput]:
    """Every attached ``output/`` folder holding a dataset record or a training run, the most advanced first:
    a training run before a dataset record alone, then the further-trained, then 02's own output (with its
    ``last_checkpoint``) before a copy 03 or 04 brought in, then the newer."""
    inputs = input_root() if inputs is None else Path(inputs)
    if not inputs.is_dir():
        return []
    found = []
    for folder in _folders(inputs):
        if folder.name != "output":
            continue
        earlier = EarlierOutput(Outputs.at(folder), _input_name(folder, inputs))
        if earlier.has_dataset or earlier.training is not None:
            found.append(earlier)

    def rank(e: EarlierOutput):
        run = e.training or {}
        newest = max(p.stat().st_mtime for p in (e.outputs.train.record, e.outputs.dataset_record) if p.exists())
        return (run != {}, bool(run.get("finished")), int(run.get("iteration") or 0), e.resumable, newest)

    return sorted(found, key=rank, reverse=True)


def _copy(source: Path, target: Path) -> None:
    """Copy one file atomically (a session cut mid-copy leaves no half checkpoint); folders file by file.

    The modification time comes along: prediction caches are keyed by the checkpoint's size and time, so 03's
    caches stay valid for the same checkpoint brought into 04's session.
    """
    if source.is_dir():
        for path in sorted(source.rglob("*")):
            if path.is_file():
                _copy(path, target / path.relative_to(source))
        return
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)
        stat = source.stat()
        os.utime(tmp, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def _bring(pieces: list[Path], earlier: EarlierOutput, outputs: Outputs, what: str) -> str:
    for piece in pieces:
        _copy(piece, outputs.root / piece.relative_to(earlier.outputs.root))
    size = sum(p.stat().st_size if p.is_file() else sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
               for p in pieces)  # fmt: skip
    return f"{what}: from {earlier.describe()} ({size / 1e6:.1f} MB)"


def _dataset_pieces(earlier: EarlierOutput) -> list[Path]:
    return [earlier.outputs.dataset_record, earlier.outputs.split_dir]


def _resume_pieces(earlier: EarlierOutput) -> list[Path]:
    """What resuming 02 needs: the checkpoint ``last_checkpoint`` names, the record files, and the best so far."""
    files = earlier.outputs.train
    named = files.dir / files.last_checkpoint.read_text().strip()
    pieces = [files.last_checkpoint, named, files.best, files.metrics, files.config, files.plan, files.record]
    return [p for p in dict.fromkeys(pieces) if p.is_file()]


def _checkpoint_for(files, checkpoint: str) -> Path | None:
    candidates = {"best": [files.best, files.final], "final": [files.final]}.get(checkpoint, [])
    return next((p for p in candidates if p.is_file()), None)


def bring_in_for_training(outputs: Outputs, resume: bool = True, inputs: Path | None = None) -> list[str]:
    """On Kaggle, what 02 needs from the attached outputs: the dataset record and splits (01's output, or the ones
    the attached training used) and, when ``resume``, the training to resume (02's own earlier version): the
    checkpoint ``last_checkpoint`` names, the best one so far and the records, not every checkpoint.

    Pieces already in ``outputs`` (made in this session, as in a batch run of the series) are kept. Returns
    what came from where (also printed); stops naming the output to attach when there is no dataset record.
    """
    if not on_kaggle():
        return []
    found = find_outputs(inputs)
    said = []
    resume_from = next((e for e in found if e.resumable), None) if resume else None
    if resume_from and not outputs.train.last_checkpoint.exists():
        said.append(_bring(_resume_pieces(resume_from), resume_from, outputs, "training to resume"))
    if not outputs.dataset_record.exists():
        # the dataset the attached training used, else the newest attached record
        source = resume_from if resume_from and resume_from.has_dataset else None
        source = source or next((e for e in found if e.has_dataset), None)
        if source is None:
            raise TinyVocError(
                f"no dataset record: {NOTEBOOKS[2]} trains on what {NOTEBOOKS[1]} registered, and neither "
                f"{outputs.dataset_record} nor an attached output holds output/dataset.json. "
                f"{attach_output(NOTEBOOKS[1])}."
            )
        said.insert(0, _bring(_dataset_pieces(source), source, outputs, "dataset record and splits"))
    return _said(said)


def bring_in_trained_run(outputs: Outputs, checkpoint: str = "best", inputs: Path | None = None) -> list[str]:
    """On Kaggle, what 03 and 04 need from the attached outputs: the training run (02's output: its dataset record
    and splits, config, run record, metrics and the ``checkpoint`` used, best/final, not the others) and any
    prediction caches this session lacks (03's output, for 04).

    Pieces already in ``outputs`` are kept. Returns what came from where (also printed); stops naming the output to
    attach when there is no trained run.
    """
    if not on_kaggle():
        return []
    found = find_outputs(inputs)
    said = []
    train = outputs.train
    named = checkpoint in ("best", "final")  # else a path, used where it is
    if not (train.record.exists() and (not named or _checkpoint_for(train, checkpoint))):
        trained = [e for e in found if e.training is not None]
        source = next((e for e in trained if not named or _checkpoint_for(e.outputs.train, checkpoint)), None)
        if source is None:
            raise TinyVocError(
                f"no trained model: notebooks 03 and 04 use the run {NOTEBOOKS[2]} trained, and neither {train.dir} "
                f"nor an attached output holds train/run.json with a {checkpoint} checkpoint. "
                f"{attach_output(NOTEBOOKS[2])}."
            )
        files = source.outputs.train
        pieces = [files.record, files.config, files.metrics] + ([_checkpoint_for(files, checkpoint)] if named else [])
        said.append(_bring([p for p in pieces if p.is_file()], source, outputs, f"training run ({checkpoint} model)"))
        if not outputs.dataset_record.exists() and source.has_dataset:
            said.insert(0, _bring(_dataset_pieces(source), source, outputs, "dataset record and splits"))
    if not outputs.dataset_record.exists():
        source = next((e for e in found if e.has_dataset), None)
        if source is None:
            raise TinyVocError(
                f"no dataset record in {outputs.root} nor in an attached output. {attach_output(NOTEBOOKS[2])}."
            )
        said.insert(0, _bring(_dataset_pieces(source), source, outputs, "dataset record and splits"))
    for earlier in found:  # prediction caches (03's, for 04): any this session lacks
        caches = earlier.outputs.predictions_dir
        missing = [
            p for p in sorted(caches.glob("*")) if p.is_file() and not (outputs.predictions_dir / p.name).exists()
        ]
        if missing:
            said.append(_bring(missing, earlier, outputs, f"{len(missing)} prediction cache file(s)"))
    return _said(said)


def _said(lines: list[str]) -> list[str]:
    for line in lines:
        print(f"brought in {line}", flush=True)
    return lines
