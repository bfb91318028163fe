"""Bringing earlier notebooks' outputs into a Kaggle session: only the files the notebook needs, each said.

What an earlier notebook saved (01's ``output/dataset.json`` and splits for 02; 02's training runs for
03 and 04, every attached run listed and ``RUN`` choosing; 02's own earlier version of a run for a
resume) is found among the inputs (``earlier``), and only the files the notebook needs are copied into
``/kaggle/working/output``: not every checkpoint, as the 20 GB are the session's. Each piece says where
it came from; a missing one names the output to attach. Records store paths relative to the output and
data folders (``core.paths``), so copied records are read correctly here.

They are called where a reader sees them, never from inside a loader: :func:`bring_in_trained_run` in 03's
and 04's cell that loads the run, :func:`bring_in_for_training` before 02 trains. Off Kaggle they do nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from ...core.atomic import copy_file
from ...core.errors import TinyVocError
from ...core.paths import CHECKPOINTS, NOTEBOOKS, Outputs, TrainFiles, run_entries
from ...core.run_order import best_first
from .earlier import EarlierOutput, EarlierRun, attached_runs, find_outputs
from .session import attach_output, on_kaggle


def _copy(source: Path, target: Path) -> None:
    """Copy one file atomically, its time kept (``core.atomic.copy_file``: a session cut mid-copy leaves no half
    checkpoint, and 03's caches stay valid for the same checkpoint in 04's session); folders file by file."""
    if not source.is_dir():
        copy_file(source, target)
        return
    for path in sorted(source.rglob("*")):
        if path.is_file():
            copy_file(path, target / path.relative_to(source))


def _bring(pieces: list[Path], source: Path, target: Path, where: str, what: str) -> str:
    """Copy ``pieces`` (under ``source``) to the same places under ``target``; say what came from ``where``."""
    for piece in pieces:
        _copy(piece, target / piece.relative_to(source))
    size = sum(p.stat().st_size if p.is_file() else sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
               for p in pieces)  # fmt: skip
    return f"{what}: from {where} ({size / 1e6:.1f} MB)"


def _bring_dataset(outputs: Outputs, found: list[EarlierOutput], prefer: list[EarlierOutput], missing: str) -> list:
    """The dataset record and splits, unless ``outputs`` holds them: from the first of ``prefer`` that has them (the
    output a run brought in came from), else from the most advanced attached output; stops with ``missing`` when
    none has them."""
    if outputs.dataset_record.exists():
        return []
    source = next((e for e in [*prefer, *found] if e.has_dataset), None)
    if source is None:
        raise TinyVocError(missing)
    pieces = [source.outputs.dataset_record, source.outputs.split_dir]
    return [_bring(pieces, source.outputs.root, outputs.root, source.describe(), "dataset record and splits")]


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
    holders = [e for e in found if any(r in brought.values() for r in e.runs)]  # the dataset the training used first
    missing = (
        f"no dataset record: {NOTEBOOKS[2]} trains on what {NOTEBOOKS[1]} registered, and neither "
        f"{outputs.dataset_record} nor an attached output holds output/dataset.json. {attach_output(NOTEBOOKS[1])}."
    )
    return _said(_bring_dataset(outputs, found, holders, missing) + said)


def bring_in_trained_run(
    outputs: Outputs, checkpoint: str = "best", run: str | Sequence[str] = "best", inputs: Path | None = None
) -> list[str]:
    """On Kaggle, what 03 and 04 need from the attached outputs: the run ``run`` chooses among every attached one
    (``"best"``: the highest best validation AP50, ``"auto"``: the newest, or a name; all are listed; a list of runs
    to fuse, as ``RUN`` takes it: each of them), its dataset record and splits, config, records, metrics and the
    ``checkpoint`` used (best/final, not the others), and any prediction caches this session lacks (03's output,
    for 04).

    Pieces already in ``outputs`` are kept. Returns what came from where (also printed); stops naming the output to
    attach when there is no trained run.
    """
    if not on_kaggle():
        return []
    found = find_outputs(inputs)
    attached = attached_runs(found)
    if attached:
        print("Attached runs:\n  " + "\n  ".join(r.describe() for r in attached), flush=True)
    said, entries = [], run_entries(run, checkpoint)
    for name, which in entries:
        said += _bring_run(outputs, found, attached, which, name)
    for earlier in found:  # prediction caches (03's, for 04) of the runs here, and of a fusion: any this session lacks
        for name in _local_names(outputs):
            said += _bring_caches(earlier, earlier.outputs.predictions_for(name), outputs.predictions_for(name),
                                  f"run {name}")  # fmt: skip
        if len(entries) > 1:
            said += _bring_caches(earlier, earlier.outputs.fused_predictions_dir, outputs.fused_predictions_dir,
                                  "the fusion of runs")  # fmt: skip
    return _said(said)


def _bring_caches(earlier: EarlierOutput, caches: Path, mine: Path, whose: str) -> list[str]:
    """The cache files in ``caches`` (of an attached output) that ``mine`` lacks, copied in."""
    missing = [p for p in sorted(caches.glob("*")) if p.is_file() and not (mine / p.name).exists()]
    if not missing:
        return []
    return [_bring(missing, caches, mine, earlier.describe(), f"{len(missing)} prediction cache file(s) of {whose}")]


def _bring_run(
    outputs: Outputs, found: list[EarlierOutput], attached: list[EarlierRun], checkpoint: str, run: str
) -> list[str]:
    """One run of :func:`bring_in_trained_run` (a name, ``best`` or ``auto``) and, if missing, its dataset record."""
    said, holders = [], []
    named = checkpoint in CHECKPOINTS  # else a path, used where it is
    usable = [r for r in attached if r.record is not None and (not named or _checkpoint_for(r.files, checkpoint))]
    wanted = str(run or "best").strip()
    mine = _fingerprint(outputs)
    if mine and wanted.lower() in ("best", "auto"):  # chosen within this project's dataset, as 03 and 04 choose
        usable = [r for r in usable if r.fingerprint in ("", mine)]
    if wanted.lower() == "best":
        usable.sort(key=lambda r: best_first((r.record or {}).get("best_ap50"), r.newest), reverse=True)
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
        holders = [next(e for e in found if source in e.runs)]
    elif source is None and not (local if wanted.lower() in ("best", "auto") else wanted in local):
        raise TinyVocError(
            f"no trained model: notebooks 03 and 04 use a run {NOTEBOOKS[2]} trained, and neither {outputs.runs_dir} "
            f"nor an attached output holds {'a run' if wanted.lower() in ('best', 'auto') else 'run ' + wanted} "
            f"(runs/<name>/run.json) with a {checkpoint} checkpoint. {attach_output(NOTEBOOKS[2])}."
        )
    missing = f"no dataset record in {outputs.root} nor in an attached output. {attach_output(NOTEBOOKS[2])}."
    return _bring_dataset(outputs, found, holders, missing) + said


def _fingerprint(outputs: Outputs) -> str:
    """The dataset of this session's record (01's output, here already), "" when there is none or it does not say:
    a run of another dataset is never the best one here (``training.run_info`` refuses it when named)."""
    try:
        return str(json.loads(outputs.dataset_record.read_text()).get("fingerprint") or "")
    except (OSError, ValueError, AttributeError):
        return ""


def _local_run(outputs: Outputs, name: str, checkpoint: str) -> bool:
    files = outputs.run(name)
    return files.record.is_file() and (checkpoint not in CHECKPOINTS or _checkpoint_for(files, checkpoint))


def _local_names(outputs: Outputs) -> list[str]:
    runs = outputs.runs_dir
    return sorted(p.name for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []


def _said(lines: list[str]) -> list[str]:
    for line in lines:
        print(f"brought in {line}", flush=True)
    return lines
