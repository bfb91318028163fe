"""Training with validation mAP, a best-AP50 checkpoint, and resume after a Colab disconnect.

Each recipe trains its own run in ``output/runs/<name>/`` (``runs.choose``: ``RUN = "auto"`` names it
after its recipe and finds it again on a re-run). :func:`train` has three parts, as detectron2's
``plain_train_net.py``: set up (the profile's config, planned to fit a time budget when one is given,
checked against the run already in the folder),
run (``engine.TinyVocTrainer``: validation mAP, a best checkpoint, compact progress, resume from
the newest readable checkpoint), and record (``run.json``; a finished run drops its periodic
checkpoints). Re-running after a finished run does not train again; re-running after a disconnect
continues the same plan.

The three parts are :func:`train_worker`, which :func:`train` runs on every training worker through
``distributed.run_workers`` (detectron2's ``launch``): with one worker, the default, in this process;
with N, in N spawned processes that read the same folder and all take the same decisions, while rank
0 alone prints and writes. The run is chosen once, before the workers start, and every worker checks
that it sees the same (``distributed.agree``).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path

from ..core.atomic import write_bytes, write_json
from ..core.errors import TinyVocError
from ..core.paths import Outputs, TrainFiles
from ..core.table import html_table, text_table
from ..core.units import duration
from ..dataset.record import DatasetRecord
from ..dataset.registry import register_all
from ..runtime import kaggle
from . import runs
from .budget import Plan, resolve_budget
from .config import config_signature, configured, train_config
from .distributed import World, agree, barrier, is_main, rank, run_workers, seed_worker, world_size
from .metrics import best_from_metrics
from .profiles import describe_weights, family, resolve_profile
from .speed import plan_for
from .storage import require_checkpoint_space, retried


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
    """``output/runs/<name>/run.json``: what was trained, how far, and which checkpoints exist."""

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
    world_size: int = 1  # training workers of the call that wrote this record (a resume may use another count)
    name: str | None = None  # the run's name (its folder in output/runs/); None in a record from before runs had names

    @classmethod
    def load(cls, path: Path) -> RunRecord | None:
        return cls(**json.loads(Path(path).read_text())) if Path(path).exists() else None

    def rows(self) -> list[tuple[str, str]]:
        """What a cell shows: the run's state, its best validation AP50, its time and its checkpoints."""
        state = "finished" if self.finished else "stopped early (re-run to resume)"
        rows = [
            *([("run", self.name)] if self.name else []),
            ("profile", self.profile),
            ("iterations", f"{self.iteration:,} of {self.max_iter:,}, {state}"),
            ("best val mask AP50", f"{self.best_ap50:.3f} at iteration {self.best_iter:,}" if self.best_ap50 is not None
             else "no validation"),
            ("training time", f"{duration(self.seconds)}"
             + (f", {self.seconds_per_iter:.3g} s/iter" if self.seconds_per_iter else "")),
        ]  # fmt: skip
        if self.wall_seconds is not None:
            rows.append(("this call", duration(self.wall_seconds)))
        if self.time_budget_h is not None:
            planned = f", planned {duration(self.planned_seconds)}" if self.planned_seconds else ""
            rows.append(("budget", f"{duration(self.time_budget_h * 3600)}{planned}"))
        if self.weights:
            rows.append(("weights", self.weights))
        checkpoints = ", ".join(name for name in (self.checkpoint_best, self.checkpoint_final) if name)
        rows.append(("checkpoints", checkpoints or "none yet"))
        if self.world_size > 1:
            rows.append(("workers", str(self.world_size)))
        return rows

    @property
    def title(self) -> str:
        return f"Training run (output/runs/{self.name or '...'}/run.json)"

    def __repr__(self) -> str:
        return text_table(self.title, self.rows())

    def _repr_html_(self) -> str:
        return html_table(self.title, self.rows())


@dataclass(frozen=True)
class TrainJob:
    """One call of :func:`train`, as every worker receives it (picklable: spawned workers get a copy)."""

    outputs: Outputs
    profile: str
    max_iter: int | None
    resume: bool
    overrides: tuple
    time_budget_h: float | None
    pretrained: bool
    ims_per_batch: int | None
    started: float  # time.time() when the call began: run.json's wall time counts the workers' start
    run: str  # the run's name, chosen before the workers start (runs.choose)
    recipe: runs.Recipe

    @property
    def files(self) -> TrainFiles:
        return self.outputs.run(self.run)


def _plan(cfg, files: TrainFiles, profile: str, budget_h: float, resume: bool, previous_config: str | None) -> Plan:
    """The saved plan when resuming the same budget and recipe; otherwise measure and plan anew."""
    base = config_signature(cfg)
    saved = Plan.load(files.plan) if resume else None
    if saved and saved.budget_hours == budget_h and saved.base_config == base:
        print(f"Continuing the saved plan ({files.plan.name}): {saved.describe()}")
        if saved.world_size != world_size():
            print(f"(measured with {saved.world_size} worker(s), now {world_size()}: the same plan, the same batch)")
        return saved
    if resume and files.last_checkpoint.exists() and previous_config is not None:
        planned = f"planned for {saved.budget_hours:g} h" if saved else "not planned for this budget"
        raise TinyVocError(
            f"{files.dir} holds a run with a different config ({planned}; {files.config}). Set TIME_BUDGET_H "
            "to its budget to continue it, RESUME=False to start that run over (its checkpoints will be replaced), "
            "or choose another RUN."
        )
    plan = replace(plan_for(cfg, budget_h, profile, save_dir=str(files.dir)), base_config=base)
    print(f"Plan: {plan.describe()}")
    return plan


def _read(path: Path) -> str | None:
    return path.read_text(errors="replace") if path.exists() else None


def _setup(job: TrainJob):
    """Config (planned for the budget), the changed-config and finished-run checks, stale files.

    Returns ``(profile, cfg, plan)``, or the finished run's record when there is nothing to train.
    Every worker runs this on the same folder and takes the same decisions; rank 0 alone changes
    files, and only after every worker has read them (:func:`distributed.agree` is the barrier).
    """
    outputs, resume, max_iter = job.outputs, job.resume, job.max_iter
    files = job.files
    agree(job.run, "run name", outputs.runs_dir)
    record = DatasetRecord.load(outputs)
    register_all(record)
    profile, cfg = train_config(
        outputs, job.profile, max_iter, list(job.overrides), record=record, pretrained=job.pretrained,
        ims_per_batch=job.ims_per_batch, world_size=world_size(), output_dir=files.dir,
    )  # fmt: skip
    print(f"Profile {profile}, weights: {describe_weights(cfg, profile)}")
    files.dir.mkdir(parents=True, exist_ok=True)
    if is_main():
        remove_leftovers(files.dir)
    previous_config = _read(files.config)
    state = (previous_config, _read(files.last_checkpoint), _read(files.record), _read(files.plan))
    agree(state, "training run (config, last checkpoint, run record, plan)", files.dir)
    budget_h = resolve_budget(family(profile) or profile, job.time_budget_h, max_iter)
    plan = _plan(cfg, files, profile, budget_h, resume, previous_config) if budget_h else None
    if plan:
        cfg = plan.applied_to(cfg)
    config_text = config_signature(cfg)
    if previous_config is not None and previous_config != config_text:
        if resume and files.last_checkpoint.exists():
            raise TinyVocError(
                f"{files.dir} holds a run with a different config ({files.config}). Set RESUME=False to "
                "start that run over (its checkpoints will be replaced), or choose another RUN."
            )
    if resume and files.record.exists() and previous_config == config_text:
        done = RunRecord(**json.loads(files.record.read_text()))
        if done.finished:
            print(
                f"Training already finished ({done.iteration} iterations, profile {done.profile}); not training again."
            )
            if is_main():
                runs.drop_periodic(files)  # a run finished by an older version still holds them
            return done
    if not is_main():
        return profile, cfg, plan
    # before the first iteration and before any write: a full Drive costs nothing yet; the other runs could go
    require_checkpoint_space(cfg, files, [r for r in runs.list_runs(outputs) if r.name != files.name])
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
    job.recipe.save(files)
    if plan:
        plan.save(files.plan)
    else:
        files.plan.unlink(missing_ok=True)
    return profile, cfg, plan


def _run(cfg, resume: bool):
    """Build the trainer, resume from the newest readable checkpoint, train; return it and the seconds."""
    from .engine import TinyVocTrainer

    seed_worker(cfg.SEED)
    trainer = TinyVocTrainer(cfg)
    trainer.resume_or_load(resume=resume)
    agree(trainer.start_iter, "resume point (the newest readable checkpoint)", cfg.OUTPUT_DIR)
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
        world_size=world_size(),
        name=files.name,
    )
    write_json(files.record, asdict(run), indent=2)
    if run.finished:
        runs.drop_periodic(files)
    return run


def train_worker(job: TrainJob) -> RunRecord | None:
    """Set up, run and record on this worker (all of :func:`train` but the launch); rank 0 returns the record.

    Each rank's detectron2 log goes to its own file (``TrainFiles.log_for``); with several workers
    each log starts with the rank and pid, which is how to find a worker in ``ps`` or ``top``.
    """
    from detectron2.utils.logger import setup_logger

    from .engine import quiet_console

    files = job.files
    setup_logger(name="detectron2", abbrev_name="d2", distributed_rank=rank())
    with quiet_console(files.log_for(rank())):
        if world_size() > 1:
            logging.getLogger("detectron2").info(f"training worker rank {rank()} of {world_size()}, pid {os.getpid()}")
        setup = retried(lambda: _setup(job), "setting up", files.dir)
        if isinstance(setup, RunRecord):
            return setup
        profile, cfg, plan = setup
        trainer, seconds = _run(cfg, job.resume)
    record = partial(_record, files, profile, cfg, trainer, seconds, plan, time.time() - job.started)
    run = retried(record, "writing the run record", files.dir) if is_main() else None
    barrier()  # the record exists before any worker returns: a caller on another machine reads it
    return run


def train(
    outputs: Outputs,
    profile: str = "auto",
    max_iter: int | None = 0,
    resume: bool = True,
    overrides: list | tuple = (),
    time_budget_h: float | None = None,
    pretrained: bool = True,
    *,
    num_gpus: int | str = "auto",
    num_machines: int = 1,
    machine_rank: int = 0,
    dist_url: str = "auto",
    ims_per_batch: int | None = 0,
    run: str = "auto",
) -> RunRecord | None:
    """Train (or resume, or skip when already finished with the same config); return the run record.

    The arguments are notebook 02's parameters, with their defaults (``core/settings.py``; a test holds
    them equal): ``profile`` a built-in name or the path of the user's YAML file, ``overrides`` the
    ``OPTS`` list (detectron2's ``KEY VALUE ...``, checked before anything runs: see
    :func:`config.apply_opts`), ``max_iter`` and ``ims_per_batch`` 0 for the profile's own.

    ``time_budget_h``: hours for the whole run (see :func:`budget.resolve_budget`: None is 3 h on a
    GPU profile and the profile's own length for ``smoke``; 0 is no budget). An explicit
    ``max_iter`` wins over the budget. ``pretrained=False``: random init, explicitly (the GPU check,
    which runs offline); the run record says so.

    ``num_gpus`` (worker processes on this machine, ``"auto"``: every visible GPU, 1 on a CPU),
    ``num_machines``, ``machine_rank``, ``dist_url``: detectron2's ``launch`` arguments, see
    :class:`distributed.World`; one worker (``auto`` on a CPU or one GPU) trains in this process. ``ims_per_batch``:
    the total batch over all workers in place of the profile's, its LR and warmup scaled (see
    :func:`config.linear_scaling`). On a machine other than machine 0 the record is rank 0's, read
    from the shared folder (None when this machine cannot see it).

    ``run``: the run's folder in ``output/runs/`` (notebook 02's ``RUN``): ``"auto"`` names it after the
    recipe and resumes the run holding the same recipe; a name trains there (see :func:`runs.choose`).
    """
    world = World.resolve(num_gpus, num_machines, machine_rank, dist_url)
    max_iter, ims_per_batch = int(max_iter or 0) or None, int(ims_per_batch or 0) or None
    overrides = tuple(overrides or ())
    given = runs.Recipe(resolve_profile(profile), overrides, max_iter, ims_per_batch, time_budget_h, pretrained)
    wanted = given.auto_name() if str(run or "auto").strip().lower() == "auto" else str(run)
    kaggle.bring_in_for_training(outputs, resume, wanted)  # Kaggle: 01's record, 02's own earlier run (attached)
    if world.machine_rank == 0:
        runs.adopt_legacy(outputs)  # a project from before runs had names: output/train/ becomes a run
    name, recipe = _choose(outputs, given, run, resume, world.size)
    job = TrainJob(
        outputs, profile, max_iter, resume, overrides, time_budget_h, pretrained, ims_per_batch, time.time(), name,
        recipe,
    )  # fmt: skip
    files = job.files
    if world.size > 1:
        logs = f"{files.log.name}, {files.log_for(1).name}, ..."
        print(f"Training on {world.describe()}: rank 0 reports here; their logs: {files.dir} ({logs})")
    run_workers(train_worker, world, job)
    record = RunRecord.load(files.record)
    if record is None:
        print(f"This machine's workers are done; rank 0 writes the run record ({files.record} on machine 0).")
    return record


def _choose(outputs: Outputs, given: runs.Recipe, wanted: str, resume: bool, workers: int) -> tuple[str, runs.Recipe]:
    """The run this call trains (``runs.choose``), said in one line; and the recipe with its config changes."""
    profile, cfg, changes = configured(
        outputs, given.profile, given.max_iter, list(given.opts), record=DatasetRecord.load(outputs),
        pretrained=given.pretrained, ims_per_batch=given.ims_per_batch, world_size=workers,
    )  # fmt: skip
    budget_h = resolve_budget(family(profile) or profile, given.time_budget_h, given.max_iter)
    name, why = runs.choose(outputs, wanted, given, config_signature(cfg), budget_h, resume)
    print(f"Run {name} ({why}): {outputs.run(name).dir}")
    return name, replace(given, changes=tuple(changes))
