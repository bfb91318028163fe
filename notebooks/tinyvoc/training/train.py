"""Training with validation mAP, a best-AP50 checkpoint, and resume after a Colab disconnect.

:func:`train` has three parts, as detectron2's ``plain_train_net.py``: set up (the profile's config,
planned to fit a time budget when one is given, checked against the run already in the folder),
run (``engine.TinyVocTrainer``: validation mAP, a best checkpoint, compact progress, resume from
the newest readable checkpoint), and record (``run.json``). Re-running after a finished run does
not train again; re-running after a disconnect continues the same plan.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ..core.atomic import write_bytes, write_json
from ..core.errors import TinyVocError
from ..core.paths import Outputs, TrainFiles
from ..dataset.record import DatasetRecord
from ..dataset.registry import register_all
from .budget import Plan, resolve_budget
from .config import config_signature, train_config
from .metrics import best_from_metrics
from .profiles import describe_weights
from .speed import plan_for


def remove_leftovers(folder: Path) -> list[Path]:
    """Delete temporary files a killed atomic save left behind (``.model_0000999.pth.x1y2.tmp``)."""
    leftovers = sorted(Path(folder).glob(".*.tmp"))
    for path in leftovers:
        path.unlink(missing_ok=True)
    if leftovers:
        names = ", ".join(p.name for p in leftovers)
        print(f"Removed {len(leftovers)} unfinished file(s) left by an interrupted save: {names}")
    return leftovers


@dataclass
class RunRecord:
    """``output/train/run.json``: what was trained, how far, and which checkpoints exist."""

    profile: str
    max_iter: int
    iteration: int
    finished: bool
    seconds: float
    seconds_per_iter: float | None
    best_ap50: float | None
    best_iter: int | None
    checkpoint_final: str | None
    checkpoint_best: str | None
    time_budget_h: float | None = None  # None: no budget (the profile's length or MAX_ITER)
    planned_seconds: float | None = None  # the plan's estimate for the whole run
    wall_seconds: float | None = None  # this call, measuring and setup included
    weights: str | None = None  # where the backbone's weights came from (profiles.describe_weights)


def _plan(cfg, files: TrainFiles, profile: str, budget_h: float, resume: bool, previous_config: str | None) -> Plan:
    """The saved plan when resuming the same budget and recipe; otherwise measure and plan anew."""
    base = config_signature(cfg)
    saved = Plan.load(files.plan) if resume else None
    if saved and saved.budget_hours == budget_h and saved.base_config == base:
        print(f"Continuing the saved plan ({files.plan.name}): {saved.describe()}")
        return saved
    if resume and files.last_checkpoint.exists() and previous_config is not None:
        planned = f"planned for {saved.budget_hours:g} h" if saved else "not planned for this budget"
        raise TinyVocError(
            f"{files.dir} holds a run with a different config ({planned}; {files.config}). Set TIME_BUDGET_H "
            "to its budget to continue it, RESUME=False to start over (its checkpoints will be replaced), "
            "or choose another PROJECT_DIR."
        )
    plan = replace(plan_for(cfg, budget_h, profile, save_dir=str(files.dir)), base_config=base)
    print(f"Plan: {plan.describe()}")
    return plan


def _setup(outputs: Outputs, profile, max_iter, resume, overrides, time_budget_h, pretrained=True):
    """Config (planned for the budget), the changed-config and finished-run checks, stale files.

    Returns ``(profile, cfg, plan)``, or the finished run's record when there is nothing to train.
    """
    files = outputs.train
    record = DatasetRecord.load(outputs)
    register_all(record)
    profile, cfg = train_config(outputs, profile, max_iter, overrides, record=record, pretrained=pretrained)
    print(f"Profile {profile}, weights: {describe_weights(cfg, profile)}")
    files.dir.mkdir(parents=True, exist_ok=True)
    remove_leftovers(files.dir)
    previous_config = files.config.read_text() if files.config.exists() else None
    budget_h = resolve_budget(profile, time_budget_h, max_iter)
    plan = _plan(cfg, files, profile, budget_h, resume, previous_config) if budget_h else None
    if plan:
        cfg = plan.applied_to(cfg)
    config_text = config_signature(cfg)
    if previous_config is not None and previous_config != config_text:
        if resume and files.last_checkpoint.exists():
            raise TinyVocError(
                f"{files.dir} holds a run with a different config ({files.config}). Set RESUME=False to "
                "start over (its checkpoints will be replaced), or choose another PROJECT_DIR."
            )
    if resume and files.record.exists() and previous_config == config_text:
        done = RunRecord(**json.loads(files.record.read_text()))
        if done.finished:
            print(
                f"Training already finished ({done.iteration} iterations, profile {done.profile}); not training again."
            )
            return done
    if not resume:
        for stale in [
            *files.dir.glob("model_*.pth"),
            *files.dir.glob("events.out.tfevents.*"),
            files.last_checkpoint,
            files.metrics,
            files.record,  # log.txt stays: it is open for this run already, and appends
        ]:
            stale.unlink(missing_ok=True)
    write_bytes(files.config, config_text.encode())
    if plan:
        plan.save(files.plan)
    else:
        files.plan.unlink(missing_ok=True)
    return profile, cfg, plan


def _run(cfg, resume: bool):
    """Build the trainer, resume from the newest readable checkpoint, train; return it and the seconds."""
    from detectron2.utils.env import seed_all_rng

    from .engine import TinyVocTrainer

    seed_all_rng(cfg.SEED)
    trainer = TinyVocTrainer(cfg)
    trainer.resume_or_load(resume=resume)
    if trainer.start_iter:
        print(f"Resuming from iteration {trainer.start_iter} of {cfg.SOLVER.MAX_ITER}")
    started = time.perf_counter()
    trainer.train()
    return trainer, time.perf_counter() - started


def _record(files: TrainFiles, profile: str, cfg, trainer, seconds: float, plan: Plan | None, wall: float):
    best = best_from_metrics(files.metrics)
    run = RunRecord(
        profile=profile,
        max_iter=cfg.SOLVER.MAX_ITER,
        iteration=trainer.iter,
        finished=trainer.iter >= cfg.SOLVER.MAX_ITER,
        seconds=round(seconds, 1),
        seconds_per_iter=round(seconds / max(1, trainer.iter - trainer.start_iter), 3),
        best_ap50=best[0] / 100 if best else None,
        best_iter=best[1] if best else None,
        checkpoint_final=files.final.name if files.final.exists() else None,  # names in the train folder
        checkpoint_best=files.best.name if files.best.exists() else None,
        time_budget_h=plan.budget_hours if plan else None,
        planned_seconds=plan.planned_seconds if plan else None,
        wall_seconds=round(wall, 1),
        weights=describe_weights(cfg, profile),
    )
    write_json(files.record, asdict(run), indent=2)
    return run


def train(
    outputs: Outputs,
    profile: str = "auto",
    max_iter: int | None = None,
    resume: bool = True,
    overrides: list | None = None,
    time_budget_h: float | None = None,
    pretrained: bool = True,
) -> RunRecord:
    """Train (or resume, or skip when already finished with the same config); return the run record.

    ``time_budget_h``: hours for the whole run (see :func:`budget.resolve_budget`: None is 3 h on a
    GPU profile and the profile's own length for ``smoke``; 0 is no budget). An explicit
    ``max_iter`` wins over the budget. ``pretrained=False``: random init, explicitly (the GPU check,
    which runs offline); the run record says so.
    """
    from detectron2.utils.logger import setup_logger

    from .engine import quiet_console

    started = time.perf_counter()
    setup_logger(name="detectron2", abbrev_name="d2")
    with quiet_console(outputs.train.log):
        setup = _setup(outputs, profile, max_iter, resume, overrides, time_budget_h, pretrained)
        if isinstance(setup, RunRecord):
            return setup
        profile, cfg, plan = setup
        trainer, seconds = _run(cfg, resume)
    return _record(outputs.train, profile, cfg, trainer, seconds, plan, time.perf_counter() - started)
