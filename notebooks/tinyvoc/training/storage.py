"""What a training run keeps in the project folder: the space it needs, checked first, and what the last runtime left.

Before training (notebook 02), :func:`require_checkpoint_space` compares the space the run will keep in its
folder (two periodic checkpoints, ``model_best.pth`` and ``model_final.pth``, less what is there
already) with the free space of that filesystem; when it does not fit, the message lists the other
runs, what removing each would free and how (nothing is deleted unless asked). The checkpoint sizes
are computed from the profile's model, built on PyTorch's ``meta`` device (no memory, about a second
for X-101): weights are every tensor of the state dict, and a periodic checkpoint adds SGD's momentum,
one tensor per trainable parameter. For X-101 that gives 410 and 817 MiB, the sizes measured on the files
(README, ``benchmarks/bench_checkpoint_size.py``); pickling adds a few KiB.

In the next runtime (02, 03, 04), :func:`report_unfinished_uploads` says when Drive never received
what the previous runtime wrote: ``last_checkpoint`` naming a file that is missing or cut short, or
metrics reaching past the newest checkpoint by a whole checkpoint period. Both are what a full Drive
(its writes seem to succeed) or a disconnect mid-upload leave.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from ..core.errors import TinyVocError
from ..core.faults import last_words, retry_or_stop
from ..core.paths import TrainFiles
from ..core.space import require_free
from ..core.units import size
from ..runtime.colab import on_colab, remounter, under_mount
from .metrics import read_metrics

PERIODIC_KEPT = 2  # engine.KEEP_PERIODIC: at most two periodic checkpoints at any time


def retry_in_run(call, what: str, folder: Path, words=None):
    """``call()`` of a training run (a hook's step, its setup, its record) through ``core.faults.retry_or_stop``,
    remounting ``folder``'s Drive on Colab: a drop it cannot wait out, or a full disk, stops with last words;
    ``words(error, waited)`` gives them (the training loop's name its iterations), else those of a step outside it."""
    todo = "run 02_train again with the same settings: it resumes from the last complete checkpoint"

    def outside_the_loop(error, waited):
        return last_words(error, f"Training ({what})", f"every file written to {folder} before",
                          "nothing of this step", todo, waited)  # fmt: skip

    return retry_or_stop(call, what, words or outside_the_loop, recover=remounter(folder))


def checkpoint_sizes(cfg) -> tuple[int, int]:
    """``(periodic, weights only)`` checkpoint bytes of ``cfg``'s model, computed on the meta device."""
    from detectron2.modeling import build_model

    meta = cfg.clone()
    meta.defrost()
    meta.MODEL.DEVICE = "meta"
    model = build_model(meta)
    weights = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    momentum = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    return weights + (momentum if cfg.SOLVER.MOMENTUM else 0), weights


def already_there(files: TrainFiles) -> int:
    """Bytes of the checkpoints in ``files.dir`` that the run will replace (periodic, best, final)."""
    present = [*files.periodic()[-PERIODIC_KEPT:], files.best, files.final]
    return sum(p.stat().st_size for p in present if p.is_file())


def require_checkpoint_space(cfg, files: TrainFiles, others=()) -> None:
    """Stop before the first iteration when the run's checkpoints will not fit where they are written.

    ``others``: the project's other runs (``runs.RunInfo``); the message lists those that could go, the
    largest first, with what each frees and the line that removes one.
    """
    periodic, weights = checkpoint_sizes(cfg)
    there = already_there(files)
    what = (
        f"this run's checkpoints ({PERIODIC_KEPT} periodic of {size(periodic)}, best and final of {size(weights)}"
        + (f", less {size(there)} already there" if there else "")
        + ")"
    )
    try:
        require_free(files.dir, max(0, PERIODIC_KEPT * periodic + 2 * weights - there), what)
    except TinyVocError as refused:
        could_go = sorted((r for r in others if r.size_bytes), key=lambda r: r.size_bytes, reverse=True)
        if not could_go:
            raise
        listed = "; ".join(
            f"{r.name} ({r.state}, best val AP50 {f'{r.best_ap50:.3f}' if r.best_ap50 is not None else '-'}, "
            f"frees {size(r.size_bytes)})"
            for r in could_go
        )
        raise TinyVocError(
            f"{refused} The project's {len(could_go)} other run(s) hold "
            f"{size(sum(r.size_bytes for r in could_go))}; runs that could go: {listed}. To remove one: "
            f"`tinyvoc runs --remove NAME`, or in a cell `from tinyvoc.training import runs; runs.remove(outputs, "
            '"NAME")`. Nothing was deleted.'
        ) from None


def complete_checkpoint(path: Path) -> bool:
    """A checkpoint torch wrote whole: a zip whose directory, at the end of the file, is there."""
    try:
        return zipfile.is_zipfile(path)
    except OSError:
        return False


def unfinished_uploads(files: TrainFiles, checkpoint_period: int) -> list[str]:
    """What the previous runtime wrote but Drive does not hold (empty when all arrived)."""
    problems = []
    named = files.last_checkpoint.read_text(errors="replace").strip() if files.last_checkpoint.exists() else ""
    if named and not (files.dir / named).is_file():
        problems.append(f"{named}, named by {files.last_checkpoint.name}, is missing")
    elif named and not complete_checkpoint(files.dir / named):
        problems.append(f"{named}, named by {files.last_checkpoint.name}, is cut short")
    for path in (files.best, files.final):
        if path.name != named and path.is_file() and not complete_checkpoint(path):
            problems.append(f"{path.name} is cut short")
    iterations = [r["iteration"] for r in read_metrics(files.metrics) if "total_loss" in r]
    if iterations and checkpoint_period > 0:
        due = (max(iterations) + 1) // checkpoint_period * checkpoint_period  # the newest checkpoint's "next iteration"
        complete = [int(p.stem[6:]) + 1 for p in files.periodic() if complete_checkpoint(p)]
        if files.final.is_file() and complete_checkpoint(files.final):
            complete.append(max(iterations) + 1)
        newest = max(complete, default=0)
        if due and newest < due:
            problems.append(
                f"{files.metrics.name} reaches iteration {max(iterations) + 1}, but the newest complete checkpoint "
                f"is {'from iteration ' + str(newest) if newest else 'missing'} (one was saved at {due})"
            )
    return problems


def report_unfinished_uploads(files: TrainFiles, checkpoint_period: int, used: str | None) -> list[str]:
    """Print what never arrived, as uploads that never finished, and which checkpoint is used instead."""
    problems = unfinished_uploads(files, checkpoint_period)
    if problems:
        instead = f"; using {used} instead" if used else ""
        print(
            f"Uploads that never finished in {files.dir} (a full Drive or a disconnect in the previous runtime): "
            f"{'; '.join(problems)}{instead}."
        )
    return problems


def checkpoints_lost(files: TrainFiles, named) -> list[str]:
    """Which of the checkpoints a finished run's record names (``named``: file names, None skipped; none named: the
    final) its folder lacks whole, as ``model_final.pth is missing``, ``model_best.pth is cut short``. A run with such
    a loss is not finished: a disconnect while Drive uploaded them leaves exactly this."""
    named = [n for n in named if n] or [files.final.name]
    lost = []
    for name in named:
        path = files.dir / name
        if not complete_checkpoint(path):
            lost.append(f"{name} is {'cut short' if path.exists() else 'missing'}")
    return lost


def uploads_pending(folder: Path) -> bool:
    """Whether files just written in ``folder`` may still be uploading: Colab's Drive writes locally and uploads
    later, and a disconnect in that window loses them; a local disk (Kaggle, a PC) has them once written."""
    return on_colab() and under_mount(folder)


def drop_periodic(files: TrainFiles, just_written: bool = False) -> int:
    """A finished run keeps only ``model_best.pth`` and ``model_final.pth``: nothing resumes a finished run, and the
    periodic checkpoints (with SGD momentum) are most of its size. Returns the bytes freed.

    They go only once the final (and best, when there) checkpoint is known saved: whole on disk, and not written
    by this very call onto Drive (``just_written``), where it may still be uploading; there the next start of 02
    drops them, reading the final back whole. Until then a lost upload resumes from a periodic checkpoint.
    """
    if not complete_checkpoint(files.final) or (files.best.exists() and not complete_checkpoint(files.best)):
        return 0
    periodic = files.periodic()
    if periodic and just_written and uploads_pending(files.dir):
        print(
            f"Finished: the {len(periodic)} periodic checkpoint(s) stay until Drive holds {files.final.name} for "
            "sure (the next start of 02 removes them): a disconnect during its upload loses no training."
        )
        return 0
    freed = sum(p.stat().st_size for p in periodic)
    for path in periodic:
        path.unlink(missing_ok=True)
    if periodic:
        kept = ", ".join(p.name for p in (files.best, files.final) if p.is_file())
        print(f"Finished: removed {len(periodic)} periodic checkpoint(s) ({size(freed)}); kept {kept}.")
    return freed
