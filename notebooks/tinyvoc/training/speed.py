"""This machine's training speed: a short real warm-up, timed, that the budget plans from.

The steps are the trainer's own (``engine.TinyVocTrainer`` built on the profile's config: one
trainer, so what is timed is what trains), on a throw-away copy; validation and one checkpoint write
are timed too, so the plan (``budget.plan_budget``) pays for them. With several workers every worker
takes part: the step is the distributed one (DDP, gradients averaged over all workers, each on its
share of the batch) and validation is the sharded one the trainer runs; rank 0's measurement makes the
one plan all follow.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from ..core.units import duration
from .budget import EPOCHS, Plan, Speed, plan_budget
from .metrics import build_evaluator
from .profiles import family


def device_name(cfg) -> str:
    import torch

    if str(cfg.MODEL.DEVICE).startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(0).replace("NVIDIA ", "").replace("Tesla ", "")
    return "CPU"


def _sync(cfg) -> None:
    import torch

    if str(cfg.MODEL.DEVICE).startswith("cuda") and torch.cuda.is_available():
        torch.cuda.synchronize()


def _time_evaluation(cfg, model, images: int) -> float:
    """Seconds for one validation pass: inference and mask encoding timed on a few images, then COCOeval."""
    import contextlib
    import io
    import itertools

    import torch
    from detectron2.data import build_detection_test_loader

    name = cfg.DATASETS.TEST[0]
    loader = build_detection_test_loader(cfg, name)  # with N workers, this worker's share of the split
    share = len(loader)
    evaluator = build_evaluator(name)
    evaluator.reset()
    model.eval()
    count = min(images, share)
    started = time.perf_counter()
    with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
        for inputs in itertools.islice(loader, count):
            evaluator.process(inputs, model(inputs))
        _sync(cfg)
        per_image = (time.perf_counter() - started) / max(1, count)
        started = time.perf_counter()
        evaluator.evaluate()  # COCOeval goes over every ground-truth image already: not scaled
    model.train()
    return per_image * share + time.perf_counter() - started


def measure_speed(cfg, iterations: int = 20, skip: int = 3, eval_images: int = 8, save_dir: str | None = None) -> Speed:
    """Time ``iterations`` training steps of ``cfg`` on this machine (after ``skip`` untimed ones).

    The steps are the trainer's own: :class:`engine.TinyVocTrainer` is built on ``cfg`` as the run
    builds it (model, weights, data loader, optimizer, LR schedule, mixed precision, DDP over the
    workers) and its ``run_step`` is timed, so what is measured is what trains. This throw-away trainer
    writes its logs into a temporary folder; the real run then builds its own from the initial weights.
    Also times validation on ``eval_images`` images (scaled to the val split) and one checkpoint
    write to ``save_dir`` (the train folder: on Drive that is what a save costs). Nothing else is
    written. The caller subtracts :attr:`Speed.measured_seconds` from the budget. With several
    workers each runs this together; rank 0 writes the timed checkpoint, as it writes every checkpoint.
    """
    import gc
    import tempfile

    import torch
    from detectron2.utils import comm
    from detectron2.utils.events import EventStorage

    from ..core.atomic import atomic_path
    from .engine import TinyVocTrainer

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tinyvoc-speed-") as scratch:
        throwaway = cfg.clone()
        throwaway.defrost()
        throwaway.OUTPUT_DIR = scratch  # its metrics and event files; the run's folder stays untouched
        throwaway.freeze()
        trainer = TinyVocTrainer(throwaway)
        trainer.resume_or_load(resume=False)  # the initial weights, as the run loads them
        setup = time.perf_counter() - started
        times = []
        with EventStorage(0) as storage:
            trainer.storage = storage
            for k in range(skip + iterations):
                _sync(cfg)
                tick = time.perf_counter()
                trainer.iter = storage.iter = k
                trainer.run_step()
                trainer.scheduler.step()  # the warmup's small LR, as the trainer's LRScheduler hook steps it
                _sync(cfg)
                if k >= skip:
                    times.append(time.perf_counter() - tick)
        model = trainer.model
        evaluate = cfg.DATASETS.TEST and cfg.TEST.EVAL_PERIOD
        eval_seconds = _time_evaluation(cfg, model, eval_images) if evaluate else 0.0
        checkpoint_seconds = 0.0
        if save_dir and comm.is_main_process():
            tick = time.perf_counter()
            with atomic_path(Path(save_dir) / "speed_test.pth") as tmp:
                torch.save({"model": model.state_dict(), "optimizer": trainer.optimizer.state_dict()}, tmp)
                checkpoint_seconds = time.perf_counter() - tick
            Path(save_dir, "speed_test.pth").unlink(missing_ok=True)
        for writer in trainer.metric_writers:
            writer.close()
        del trainer, model
        gc.collect()  # the loader's workers and the throw-away model, before the run builds its own
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return Speed(
        seconds_per_iter=statistics.median(times),  # one-off costs (a new input size's allocations) are not typical
        eval_seconds=eval_seconds,
        checkpoint_seconds=checkpoint_seconds,
        setup_seconds=setup,
        measured_seconds=time.perf_counter() - started,
        device=device_name(cfg),
        iterations=skip + iterations,
    )


def warmup_iterations(cfg) -> int:
    """Timed warm-up steps: enough to cover the multi-scale sizes, few on a slow CPU.

    On an H100 the mean of 20 steps was 0.418 s/iter while the planned run then went at 0.247
    (first steps at each new input size pay for allocations): hence 30 steps and their median.
    """
    return 30 if str(cfg.MODEL.DEVICE).startswith("cuda") else 8


def plan_for(cfg, budget_hours: float, profile: str, train_images: int, save_dir: str | None = None) -> Plan:
    """Measure this machine, then plan ``cfg`` (the profile's own config) to fit ``budget_hours``, and at most the
    epochs of the profile's family (:data:`budget.EPOCHS`) over ``train_images`` (the dataset record's count).

    With several workers all measure together and all plan from rank 0's measurement (its step
    waits for the slowest worker's gradients; it alone times the checkpoint write), so every worker
    follows the same plan.
    """
    from detectron2.utils import comm

    started = time.perf_counter()
    print(f"Measuring speed for a {duration(budget_hours * 3600)} budget (counts against it) ...", flush=True)
    speed = measure_speed(cfg, iterations=warmup_iterations(cfg), save_dir=save_dir)
    speed, spent = comm.all_gather((speed, time.perf_counter() - started))[0]
    return plan_budget(
        speed.seconds_per_iter,
        budget_hours,
        cfg,
        eval_seconds=speed.eval_seconds,
        checkpoint_seconds=speed.checkpoint_seconds,
        setup_seconds=speed.setup_seconds,
        spent_seconds=spent,
        device=speed.device,
        profile=profile,
        world_size=comm.get_world_size(),
        train_images=train_images,
        max_epochs=EPOCHS.get(family(profile) or ""),
    )
