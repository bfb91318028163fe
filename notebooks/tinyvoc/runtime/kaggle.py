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
* what an earlier notebook saved (01's ``output/dataset.json`` and splits for 02; 02's training runs
  for 03 and 04, every attached run listed and ``RUN`` choosing; 02's own earlier version of a run for
  a resume) is found in whichever attached output holds it, and only the files the notebook needs are
  copied into ``/kaggle/working/output`` (not every checkpoint: the 20 GB are the session's). An older
  output's one run (``output/train/``) is brought in as a run named after its profile. Each piece
  says where it came from; a missing one names the output to attach. Records store paths relative to
  the output and data folders (``core.paths``), so copied records are read correctly here.

The root is read from ``TINYVOC_KAGGLE_ROOT`` (default ``/kaggle``), which lets the tests stand a
temporary folder in for Kaggle's.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from ..core.atomic import atomic_path
from ..core.coco_json import load_coco
from ..core.errors import TinyVocError
from ..core.paths import (
    NOTEBOOKS,
    TEST_IMAGES,
    TEST_JSON,
    TRAIN_IMAGES,
    TRAIN_JSON,
    DataFiles,
    Outputs,
    TrainFiles,
    legacy_run_name,
)
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
class EarlierRun:
    """One training run in an attached output: ``output/runs/<name>/``, or an older output's ``output/train/``."""

    files: TrainFiles
    name: str
    caches: Path  # its prediction caches in that output
    input: str

    @property
    def record(self) -> dict | None:
        """The run record (``run.json``), or None when the run has none (killed before its first record)."""
        try:
            return json.loads(self.files.record.read_text())
        except (OSError, ValueError):
            return None

    @property
    def resumable(self) -> bool:
        return self.files.last_checkpoint.is_file()

    @property
    def newest(self) -> float:
        return max((p.stat().st_mtime for p in (self.files.record, self.files.config) if p.exists()), default=0.0)

    def rank(self):
        """The further-trained first: finished, then more iterations, then resumable (02's own), then the newer."""
        run = self.record or {}
        return (bool(run.get("finished")), int(run.get("iteration") or 0), self.resumable, self.newest)

    def describe(self) -> str:
        run = self.record or {}
        ap50 = run.get("best_ap50")
        state = "finished" if run.get("finished") else ("stopped, resumable" if self.resumable else "stopped")
        best = f", best val AP50 {ap50:.3f}" if isinstance(ap50, (int, float)) else ""
        return f"run {self.name} from input '{self.input}' ({state}, {run.get('iteration', '?')} iterations{best})"


@dataclass(frozen=True)
class EarlierOutput:
    """One ``output/`` folder found among the inputs (01's, 02's, or 02's own earlier version)."""

    outputs: Outputs
    input: str  # the attached input's name under /kaggle/input

    @property
    def has_dataset(self) -> bool:
        return self.outputs.dataset_record.is_file() and self.outputs.split_dir.is_dir()

    @property
    def runs(self) -> list[EarlierRun]:
        """Its training runs: every ``runs/<name>/`` with a config or record, and an older output's ``train/``."""
        found = []
        if self.outputs.runs_dir.is_dir():
            for folder in sorted(p for p in self.outputs.runs_dir.iterdir() if p.is_dir()):
                files = TrainFiles(folder)
                if files.record.is_file() or files.config.is_file():
                    found.append(EarlierRun(files, folder.name, self.outputs.predictions_for(folder.name), self.input))
        legacy = TrainFiles(self.outputs.legacy_train_dir)
        if legacy.record.is_file() or legacy.config.is_file():
            run = EarlierRun(legacy, "", self.outputs.predictions_dir, self.input)
            found.append(replace(run, name=legacy_run_name(run.record)))
        return found

    @property
    def training(self) -> dict | None:
        """The record of its further-trained run, or None when this output holds no training."""
        runs = sorted(self.runs, key=EarlierRun.rank, reverse=True)
        return (runs[0].record or {}) if runs else None

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
        runs = sorted(e.runs, key=EarlierRun.rank, reverse=True)
        newest = e.outputs.dataset_record.stat().st_mtime if e.outputs.dataset_record.exists() else 0.0
        return (bool(runs), *(runs[0].rank() if runs else (False, 0, False, newest)))

    return sorted(found, key=rank, reverse=True)


def attached_runs(found: list[EarlierOutput]) -> list[EarlierRun]:
    """Every run in the attached outputs, the further-trained first."""
    return sorted((run for e in found for run in e.runs), key=EarlierRun.rank, reverse=True)


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


def _bring(pieces: list[Path], source: Path, target: Path, where: str, what: str) -> str:
    """Copy ``pieces`` (under ``source``) to the same places under ``target``; say what came from ``where``."""
    for piece in pieces:
        _copy(piece, target / piece.relative_to(source))
    size = sum(p.stat().st_size if p.is_file() else sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
               for p in pieces)  # fmt: skip
    return f"{what}: from {where} ({size / 1e6:.1f} MB)"


def _bring_dataset(earlier: EarlierOutput, outputs: Outputs) -> str:
    pieces = [earlier.outputs.dataset_record, earlier.outputs.split_dir]
    return _bring(pieces, earlier.outputs.root, outputs.root, earlier.describe(), "dataset record and splits")


def _resume_pieces(run: EarlierRun) -> list[Path]:
    """What resuming 02 needs: the checkpoint ``last_checkpoint`` names, the record files, and the best so far."""
    files = run.files
    named = files.dir / files.last_checkpoint.read_text().strip()
    pieces = [files.last_checkpoint, named, files.best, files.metrics, files.config, files.plan, files.record,
              files.recipe]  # fmt: skip
    return [p for p in dict.fromkeys(pieces) if p.is_file()]


def _checkpoint_for(files: TrainFiles, checkpoint: str) -> Path | None:
    candidates = {"best": [files.best, files.final], "final": [files.final]}.get(checkpoint, [])
    return next((p for p in candidates if p.is_file()), None)


def _of_recipe(name: str, wanted: str | None) -> bool:
    """Whether an attached run's ``name`` is the run ``wanted`` or one of its numbered variants (``wanted-2``)."""
    return wanted is None or name == wanted or (name.startswith(f"{wanted}-") and name[len(wanted) + 1 :].isdigit())


def bring_in_for_training(
    outputs: Outputs, resume: bool = True, wanted: str | None = None, inputs: Path | None = None
) -> list[str]:
    """On Kaggle, what 02 needs from the attached outputs: the dataset record and splits (01's output, or the ones
    the attached training used) and, when ``resume``, the runs to resume (02's own earlier versions): of each
    resumable run named ``wanted`` (the run's name; a numbered variant or an older output's one run too; None: the
    further-trained run alone), the checkpoint ``last_checkpoint`` names, the best one so far and the records, not
    every checkpoint.

    Pieces already in ``outputs`` (made in this session, as in a batch run of the series) are kept. Returns
    what came from where (also printed); stops naming the output to attach when there is no dataset record.
    """
    if not on_kaggle():
        return []
    found = find_outputs(inputs)
    said = []
    resumable = [r for r in attached_runs(found) if r.resumable]
    if wanted is not None:
        resumable = [
            r for r in resumable if _of_recipe(r.name, wanted) or r.files.dir.parent.name == "output"
        ]  # an older output's one run
    elif resumable:
        resumable = resumable[:1]
    brought = {}
    for run in resumable if resume else []:
        target = outputs.run(run.name)
        if run.name in brought or target.last_checkpoint.exists():
            continue
        said.append(_bring(_resume_pieces(run), run.files.dir, target.dir, f"input '{run.input}'",
                           f"run {run.name} to resume"))  # fmt: skip
        brought[run.name] = run
    if not outputs.dataset_record.exists():
        # the dataset the attached training used, else the newest attached record
        source = next((e for e in found if brought and any(r in brought.values() for r in e.runs) and e.has_dataset),
                      None)  # fmt: skip
        source = source or next((e for e in found if e.has_dataset), None)
        if source is None:
            raise TinyVocError(
                f"no dataset record: {NOTEBOOKS[2]} trains on what {NOTEBOOKS[1]} registered, and neither "
                f"{outputs.dataset_record} nor an attached output holds output/dataset.json. "
                f"{attach_output(NOTEBOOKS[1])}."
            )
        said.insert(0, _bring_dataset(source, outputs))
    return _said(said)


def _local_run(outputs: Outputs, name: str, checkpoint: str) -> bool:
    files = outputs.run(name)
    return files.record.is_file() and (checkpoint not in ("best", "final") or _checkpoint_for(files, checkpoint))


def bring_in_trained_run(
    outputs: Outputs, checkpoint: str = "best", run: str = "best", inputs: Path | None = None
) -> list[str]:
    """On Kaggle, what 03 and 04 need from the attached outputs: the run ``run`` chooses among every attached one
    (``"best"``: the highest best validation AP50, ``"auto"``: the newest, or a name; all are listed), its dataset
    record and splits, config, records, metrics and the ``checkpoint`` used (best/final, not the others), and any
    prediction caches this session lacks (03's output, for 04).

    Pieces already in ``outputs`` are kept. Returns what came from where (also printed); stops naming the output to
    attach when there is no trained run.
    """
    if not on_kaggle():
        return []
    found = find_outputs(inputs)
    said = []
    named = checkpoint in ("best", "final")  # else a path, used where it is
    attached = attached_runs(found)
    if attached:
        print("Attached runs:\n  " + "\n  ".join(r.describe() for r in attached), flush=True)
    usable = [r for r in attached if r.record is not None and (not named or _checkpoint_for(r.files, checkpoint))]
    wanted = str(run or "best").strip()
    if wanted.lower() == "best":
        usable.sort(key=lambda r: (isinstance((r.record or {}).get("best_ap50"), (int, float)),
                                   (r.record or {}).get("best_ap50") or 0.0, r.newest), reverse=True)  # fmt: skip
    elif wanted.lower() == "auto":
        usable.sort(key=lambda r: r.newest, reverse=True)
    else:
        usable = [r for r in usable if r.name == wanted]
    source = usable[0] if usable else None
    local = [n for n in _local_names(outputs) if _local_run(outputs, n, checkpoint)]
    if source is not None and not _local_run(outputs, source.name, checkpoint):
        files = source.files
        pieces = [files.record, files.config, files.metrics, files.recipe]
        pieces += [_checkpoint_for(files, checkpoint)] if named else []
        said.append(_bring([p for p in pieces if p.is_file()], files.dir, outputs.run(source.name).dir,
                           f"input '{source.input}'", f"run {source.name} ({checkpoint} model)"))  # fmt: skip
        holder = next(e for e in found if source in e.runs)
        if not outputs.dataset_record.exists() and holder.has_dataset:
            said.insert(0, _bring_dataset(holder, outputs))
    elif source is None and not (local if wanted.lower() in ("best", "auto") else wanted in local):
        raise TinyVocError(
            f"no trained model: notebooks 03 and 04 use a run {NOTEBOOKS[2]} trained, and neither {outputs.runs_dir} "
            f"nor an attached output holds {'a run' if wanted.lower() in ('best', 'auto') else 'run ' + wanted} "
            f"(runs/<name>/run.json) with a {checkpoint} checkpoint. {attach_output(NOTEBOOKS[2])}."
        )
    if not outputs.dataset_record.exists():
        source = next((e for e in found if e.has_dataset), None)
        if source is None:
            raise TinyVocError(
                f"no dataset record in {outputs.root} nor in an attached output. {attach_output(NOTEBOOKS[2])}."
            )
        said.insert(0, _bring_dataset(source, outputs))
    for name in _local_names(outputs):  # prediction caches (03's, for 04) of the runs here: any this session lacks
        for earlier in found:
            caches = earlier.outputs.predictions_for(name)
            mine = outputs.predictions_for(name)
            missing = [p for p in sorted(caches.glob("*")) if p.is_file() and not (mine / p.name).exists()]
            if missing:
                said.append(_bring(missing, caches, mine, earlier.describe(),
                                   f"{len(missing)} prediction cache file(s) of run {name}"))  # fmt: skip
    return _said(said)


def _local_names(outputs: Outputs) -> list[str]:
    runs = outputs.runs_dir
    return sorted(p.name for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []


def _said(lines: list[str]) -> list[str]:
    for line in lines:
        print(f"brought in {line}", flush=True)
    return lines
