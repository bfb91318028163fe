"""Training with validation mAP, a best-AP50 checkpoint, and resume after a Colab disconnect.

Each recipe trains its own run in ``output/runs/<name>/`` (``runs.choose``: ``RUN = "auto"`` names it
after its recipe and finds it again on a re-run). :func:`train` reads as detectron2's
``tools/train_net.py``, in plain steps: resolve the workers (:class:`distributed.World`) and the recipe
(:meth:`runs.Recipe.given`), adopt a project's run from before runs had names, choose the run, launch
the workers, return the record. Every worker runs :func:`train_worker`, in three parts as detectron2's
``plain_train_net.py``: set up (:func:`_setup`: the profile's config, planned to fit a time budget
when one is given, checked against the run already in the folder; a :class:`Setup` says what to train
or that the run is finished), run (``engine.TinyVocTrainer``: validation mAP, a best checkpoint,
compact progress, resume from the newest readable checkpoint), and record (``run.json``; a finished
run drops its periodic checkpoints). Re-running after a finished run does not train again;
re-running after a disconnect continues the same plan.

The workers start through ``distributed.run_workers`` (detectron2's ``launch``): with one worker, the
default, in this process, which returns rank 0's record; with N, in N spawned processes that read the
same folder and all take the same decisions, while rank 0 alone prints and writes, and the record is
read back from ``run.json``. The run is chosen once, before the workers start, and every worker
checks that it sees the same (``distributed.agree``).

Nothing here reaches outside the project: on Kaggle, notebook 02 brings in 01's dataset record and
the run to resume from the attached outputs (``kaggle.bring_in_for_training``) in its own cell,
before it calls :func:`train`.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, fields, replace
from functools import partial
from pathlib import Path

from ..core.atomic import write_bytes, write_json
from ..core.errors import TinyVocError
from ..core.paths import Outputs, TrainFiles
from ..core.table import html_table, text_table
from ..core.units import duration
from ..dataset.record import DatasetRecord
from ..dataset.registry import register_all
from . import runs
from .budget import Plan, resolve_budget
from .config import config_signature, configured, train_config
from .distributed import World, agree, barrier, is_main, rank, run_workers, seed_worker, world_size
from .metrics import best_from_metrics
from .profiles import describe_weights, family
from .speed import plan_for
from .storage import checkpoints_lost, complete_checkpoint, drop_periodic, require_checkpoint_space, retry_in_run
from .weights import course_warning, source


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
    name: str | None = None  # the run's name (its folder in output/runs/); a record from before names: its folder's
    dataset: str | None = None  # the dataset it learned (``DatasetRecord.name``); None in a record from before
    fingerprint: str | None = None  # that dataset's classes and split (``DatasetRecord.fingerprint``)
    weights_from: str | None = None  # "imagenet", "coco", "random" or a file name (weights.source); None: older record

    @classmethod
    def load(cls, path: Path) -> RunRecord | None:
        """The record in ``path``; one written before runs had names takes its folder's name (02 goes on with it),
        and keys of a newer version are left out (an older package still reads the record)."""
        path = Path(path)
        if not path.exists():
            return None
        saved = json.loads(path.read_text())
        known = {f.name for f in fields(cls)}
        record = cls(**{k: v for k, v in saved.items() if k in known})
        return record if record.name else replace(record, name=path.parent.name)

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
        if self.dataset:
            rows.append(("dataset", f"{self.dataset} ({self.fingerprint})"))
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
    """One call of :func:`train`, as every worker receives it (picklable: spawned workers get a copy).

    The recipe holds what was asked for (profile, OPTS, MAX_ITER, ...); the run's name is chosen once,
    before the workers start (:func:`runs.choose`), so that every worker trains the same folder.
    """

    outputs: Outputs
    recipe: runs.Recipe
    run: str
    resume: bool
    started: float  # time.time() when the call began: run.json's wall time counts the workers' start

    @property
    def files(self) -> TrainFiles:
        return self.outputs.run(self.run)


@dataclass(frozen=True)
class Setup:
    """What :func:`_setup` decided: train ``cfg`` (planned by ``plan`` when there is a budget), or nothing to
    train because the run already finished (``finished``: its record, which the call returns)."""

    profile: str | None = None
    cfg: object = None
    plan: Plan | None = None
    finished: RunRecord | None = None


def _different_config(files: TrainFiles, budget_h: float | None) -> TinyVocError:
    """The one refusal for a folder whose resumable run has another config than this call's.

    When the run's saved plan was made for another budget (or none is saved), the budget may be all
    that differs: the message says what the run was planned for and offers TIME_BUDGET_H.
    """
    saved = Plan.load(files.plan)
    planned, budget = "", ""
    if budget_h and not (saved and saved.budget_hours == budget_h):
        planned = f"planned for {saved.budget_hours:g} h; " if saved else "not planned for this budget; "
        budget = "TIME_BUDGET_H to its budget to continue it, "
    return TinyVocError(
        f"{files.dir} holds a run with a different config ({planned}{files.config}). Set {budget}RESUME=False to "
        "start that run over (its checkpoints will be replaced), or choose another RUN."
    )


def _planned(
    cfg, files: TrainFiles, profile: str, budget_h: float | None, resume: bool, resumable: bool, train_images: int
):
    """The plan for the budget (None without one) and the signature of the config it gives (``train_images``: what
    the plan's epoch cap counts, from the dataset record every worker reads).

    A saved plan made for this budget and recipe is continued (a resume keeps its plan, measured
    once); otherwise this GPU is measured and the run planned anew. Not when the folder holds a
    resumable run (``resumable``): that run was planned for another budget or recipe, so measuring
    would be wasted; the signature is None and :func:`_setup` refuses the call.
    """
    base = config_signature(cfg)
    if not budget_h:
        return None, base
    saved = Plan.load(files.plan) if resume else None
    if saved and saved.budget_hours == budget_h and saved.base_config == base:
        print(f"Continuing the saved plan ({files.plan.name}): {saved.describe()}")
        if saved.world_size != world_size():
            print(f"(measured with {saved.world_size} worker(s), now {world_size()}: the same plan, the same batch)")
        plan = saved
    elif resumable:
        return None, None
    else:
        plan = replace(plan_for(cfg, budget_h, profile, train_images, save_dir=str(files.dir)), base_config=base)
        print(f"Plan: {plan.describe()}")
    return plan, config_signature(plan.applied_to(cfg))


def _read(path: Path) -> str | None:
    return path.read_text(errors="replace") if path.exists() else None


def _setup(job: TrainJob) -> Setup:
    """Config (planned for the budget), the changed-config and finished-run checks, stale files.

    Every worker runs this on the same folder and takes the same decisions; rank 0 alone changes
    files, and only after every worker has read them (:func:`distributed.agree` is the barrier).
    """
    outputs, recipe, resume, files = job.outputs, job.recipe, job.resume, job.files
    agree(job.run, "run name", outputs.runs_dir)
    record = DatasetRecord.load(outputs)
    register_all(record)
    profile, cfg = train_config(
        outputs, recipe.profile, recipe.max_iter, list(recipe.opts), record=record, pretrained=recipe.pretrained,
        ims_per_batch=recipe.ims_per_batch, world_size=world_size(), output_dir=files.dir, weights=recipe.weights,
    )  # fmt: skip
    print(f"Profile {profile}, weights: {describe_weights(cfg, profile)}")
    if warning := course_warning(recipe.weights, record.is_course):
        print(warning)
    files.dir.mkdir(parents=True, exist_ok=True)
    if is_main():
        remove_leftovers(files.dir)
    previous_config = _read(files.config)
    state = (previous_config, _read(files.last_checkpoint), _read(files.record), _read(files.plan))
    agree(state, "training run (config, last checkpoint, run record, plan)", files.dir)
    budget_h = resolve_budget(family(profile) or profile, recipe.time_budget_h, recipe.max_iter)
    resumable = resume and files.last_checkpoint.exists() and previous_config is not None
    train_images = int(record.counts.get("train_images") or 0)
    plan, config_text = _planned(cfg, files, profile, budget_h, resume, resumable, train_images)
    if resumable and previous_config != config_text:
        raise _different_config(files, budget_h)
    cfg = plan.applied_to(cfg) if plan else cfg
    done = RunRecord.load(files.record) if resume and previous_config == config_text else None
    lost = checkpoints_lost(files, [done.checkpoint_final, done.checkpoint_best]) if done and done.finished else []
    if done and done.finished and not lost:
        print(f"Training already finished ({done.iteration} iterations, profile {done.profile}); not training again.")
        if is_main():
            drop_periodic(files)  # now known saved: kept by the call that finished (on Drive), or by an older version
        return Setup(finished=done)
    if lost:
        print(f"{files.record.name} says run {files.name} finished, but {' and '.join(lost)} (an upload that never "
              "finished): it is not finished; training again from the newest checkpoint there is.")  # fmt: skip
    if is_main():
        _prepare_folder(outputs, files, recipe, cfg, plan, resume)
    return Setup(profile, cfg, plan)


def _prepare_folder(outputs: Outputs, files: TrainFiles, recipe: runs.Recipe, cfg, plan: Plan | None, resume: bool):
    """Rank 0, before the first iteration: the space check, a fresh start's stale files gone, the run's config,
    recipe and plan written (what a resume and :func:`runs.choose` compare against)."""
    # before any write: a full Drive costs nothing yet; the other runs could go
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
    write_bytes(files.config, config_signature(cfg).encode())
    recipe.save(files)
    if plan:
        plan.save(files.plan)
    else:
        files.plan.unlink(missing_ok=True)


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
    if trainer.iter >= cfg.SOLVER.MAX_ITER and not complete_checkpoint(TrainFiles(Path(cfg.OUTPUT_DIR)).final):
        # resumed at the end (a final that never arrived): its weights are the newest checkpoint's, saved again
        trainer.checkpointer.save("model_final", iteration=cfg.SOLVER.MAX_ITER - 1)
    return trainer, time.perf_counter() - started


def _record(files: TrainFiles, recipe: runs.Recipe, setup: Setup, trainer, seconds: float, wall: float) -> RunRecord:
    profile, cfg, plan = setup.profile, setup.cfg, setup.plan
    best = best_from_metrics(files.metrics)
    run = RunRecord(
        profile=profile,
        max_iter=cfg.SOLVER.MAX_ITER,
        iteration=min(trainer.iter, cfg.SOLVER.MAX_ITER),  # detectron2 counts one past the end after no step
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
        weights_from=source(cfg.MODEL.WEIGHTS),
        world_size=world_size(),
        name=files.name,
        dataset=recipe.dataset or None,
        fingerprint=recipe.fingerprint or None,
    )
    write_json(files.record, asdict(run), indent=2)
    if run.finished:
        drop_periodic(files, just_written=True)
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
        setup = retry_in_run(lambda: _setup(job), "setting up", files.dir)
        if setup.finished:
            return setup.finished
        trainer, seconds = _run(setup.cfg, job.resume)
    record = partial(_record, files, job.recipe, setup, trainer, seconds, time.time() - job.started)
    run = retry_in_run(record, "writing the run record", files.dir) if is_main() else None
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
    weights: str = "auto",
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

    ``weights``: notebook 02's ``WEIGHTS``: ``"auto"`` (ImageNet for the course's data, the COCO Mask R-CNN for your
    own), ``"imagenet"`` or ``"coco"`` (see :func:`weights.choose`); the run record says which (``weights_from``).

    ``run``: the run's folder in ``output/runs/`` (notebook 02's ``RUN``): ``"auto"`` names it after the
    recipe and resumes the run holding the same recipe; a name trains there (see :func:`runs.choose`).

    On Kaggle, 02 first brings in what training needs from the attached outputs
    (``kaggle.bring_in_for_training``, in the notebook's cell); this function reads only the project.
    """
    recipe = runs.Recipe.given(profile, overrides, max_iter, ims_per_batch, time_budget_h, pretrained, weights)
    where = dict(num_gpus=num_gpus, num_machines=num_machines, machine_rank=machine_rank, dist_url=dist_url)
    return train_recipe(outputs, recipe, run, resume, **where)


def train_recipe(
    outputs: Outputs,
    recipe: runs.Recipe,
    run: str = "auto",
    resume: bool = True,
    *,
    num_gpus: int | str = "auto",
    num_machines: int = 1,
    machine_rank: int = 0,
    dist_url: str = "auto",
) -> RunRecord | None:
    """:func:`train` for a recipe already made (``runs.Recipe.given``): notebook 02 makes it once, names the run
    to bring in from Kaggle's inputs with it, and trains it, so the settings are passed once and cannot drift.
    The other arguments are where the run goes and on which workers (see :func:`train`)."""
    world = World.resolve(num_gpus, num_machines, machine_rank, dist_url)
    name, recipe = _choose(outputs, recipe, run, resume, world)
    job = TrainJob(outputs=outputs, recipe=recipe, run=name, resume=resume, started=time.time())
    _say_workers(world, job.files)
    record = run_workers(train_worker, world, job)
    if world.size > 1:  # spawned workers: launch returns nothing, so rank 0's record is read where it wrote it
        record = RunRecord.load(job.files.record)
    if record is None:
        print(f"This machine's workers are done; rank 0 writes the run record ({job.files.record} on machine 0).")
    return record


def _choose(outputs: Outputs, given: runs.Recipe, wanted: str, resume: bool, world: World) -> tuple[str, runs.Recipe]:
    """The run this call trains, said in one line, and its recipe (config changes and dataset added): an older
    project's ``output/train/`` adopted first (machine 0), then ``runs.choose`` among this dataset's runs."""
    if world.machine_rank == 0:
        runs.adopt_legacy(outputs)  # a project from before runs had names: output/train/ becomes a run
    record = DatasetRecord.load(outputs)
    profile, cfg, changes = configured(
        outputs, given.profile, given.max_iter, list(given.opts), record=record,
        pretrained=given.pretrained, ims_per_batch=given.ims_per_batch, world_size=world.size, weights=given.weights,
    )  # fmt: skip
    recipe = replace(given.on(record), changes=tuple(changes))
    budget_h = resolve_budget(family(profile) or profile, given.time_budget_h, given.max_iter)
    name, why = runs.choose(outputs, wanted, recipe, config_signature(cfg), budget_h, resume)
    print(f"Run {name} ({why}): {outputs.run(name).dir}")
    return name, recipe


def _say_workers(world: World, files: TrainFiles) -> None:
    """With several workers: where rank 0 reports and where every worker's log is."""
    if world.size > 1:
        logs = f"{files.log.name}, {files.log_for(1).name}, ..."
        print(f"Training on {world.describe()}: rank 0 reports here; their logs: {files.dir} ({logs})")
