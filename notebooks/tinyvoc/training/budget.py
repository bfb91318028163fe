"""A wall-clock budget for training: from a measured speed, plan a run that fits (pure, no detectron2).

A free Colab T4 session lasts about 12 hours at most, and the ``strong`` profile's 30,000
iterations take longer than that on a T4. Under a fixed budget a schedule planned to decay over
the budget beats a long schedule cut short (budgeted training, Li et al., ICLR 2020), so instead
of truncating, the run is planned to fit: :func:`measure_speed` times a short warm-up on this
machine (``speed.py``; the time it takes counts against the budget), and :func:`plan_budget`, a pure function,
turns seconds per iteration into ``MAX_ITER``, the LR schedule, and the evaluation and checkpoint
periods. The plan is saved beside the config (``plan.json``) so a resume continues it instead of
measuring again.

A budget alone would plan a small dataset into hundreds of passes over its images (100 images and
3 hours on a T4: 4,600 iterations of 4 images, 184 epochs; on an H100 more), so the planner also
caps the length in epochs (:data:`EPOCHS`, each built-in profile's figure): the run is the shortest
of what fits the budget, the profile's own ``MAX_ITER``, and the epoch cap; the plan says which bound won.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..core.atomic import write_json
from ..core.errors import TinyVocError
from ..core.table import html_table, text_table
from ..core.units import duration
from ..runtime import kaggle

DEFAULT_BUDGET_H = 3.0  # a free T4 session, with room left for evaluation and export
# Kaggle ends a session after 12 h; a "Save Version" run of the whole series must fit 00, 01, the warm-up's overrun,
# then 03 and 04 after training (minutes on a T4, TTA included): at most this many hours go to training there.
KAGGLE_MAX_BUDGET_H = 10.0
MAX_CHECKPOINTS = 12  # a disconnect loses at most 1/12 of the run; fewer writes to Drive
MAX_EVAL_SHARE = 0.10  # periodic validation takes at most this share of the budget
MAX_WARMUP_SHARE = 0.5  # warmup keeps the profile's length (stability needs iterations), up to half the run
MIN_ITERATIONS = 20
# Each built-in profile's length in epochs (passes over the training images), the planner's cap for small datasets.
# A user's YAML file takes the figure of the profile it builds on (``profiles.family``); none without one. The
# course's data (1,214 training images at VAL_FRACTION 0.1) keeps each profile's MAX_ITER: strong's 30,000 at batch 4
# are 99 epochs, reference's 10,000 at batch 2 are 16.5, smoke's 300 at batch 4 on the sample's 120 (VAL_FRACTION
# 0.2; 135 at 0.1, 150 at 0) are 10 at most.
EPOCHS = {"smoke": 12, "reference": 20, "strong": 100}
BOUNDS = {
    "budget": "what fits the time budget",
    "profile": "the profile's full length fits in the budget",
    "epochs": "the epoch cap, shorter than what fits the budget",
}


def resolve_budget(profile: str, time_budget_h: float | None, max_iter: int | None) -> float | None:
    """Hours to plan for, or None for the profile's own length.

    An explicit ``max_iter`` wins. ``None`` means the default: :data:`DEFAULT_BUDGET_H` for the
    GPU profiles, the profile's own length for ``smoke`` (so ``make submission`` is unchanged).
    ``0`` turns the budget off. On Kaggle a GPU profile always has a budget, of at most
    :data:`KAGGLE_MAX_BUDGET_H` (the session's 12 hours must also hold 03 and 04 in a batch run).
    """
    if max_iter:
        return None
    if time_budget_h is None:
        return None if profile == "smoke" else DEFAULT_BUDGET_H
    hours = float(time_budget_h)
    if hours < 0:
        raise TinyVocError(f"TIME_BUDGET_H must be positive hours (or 0 for no budget), not {time_budget_h}")
    if kaggle.on_kaggle() and ((hours == 0 and profile != "smoke") or hours > KAGGLE_MAX_BUDGET_H):
        raise TinyVocError(
            f"TIME_BUDGET_H = {time_budget_h}: Kaggle ends a session after 12 hours, and notebooks 03 and 04 need "
            f"time after training; give at most {KAGGLE_MAX_BUDGET_H:g} hours (the default is {DEFAULT_BUDGET_H:g})"
        )
    return hours or None


@dataclass(frozen=True)
class Speed:
    """What :func:`measure_speed` measured on this machine, in seconds."""

    seconds_per_iter: float
    eval_seconds: float  # one validation pass over the whole val split
    checkpoint_seconds: float  # one periodic checkpoint (model + optimizer) written to the train folder
    setup_seconds: float  # building the model and data loader once
    measured_seconds: float  # wall time of the measurement itself, spent from the budget
    device: str = ""
    iterations: int = 0


@dataclass(frozen=True)
class Plan:
    """A run planned to fit ``budget_hours`` on this machine; :meth:`apply` writes it into a config."""

    budget_hours: float
    seconds_per_iter: float
    max_iter: int
    warmup_iters: int
    steps: tuple[int, ...]
    eval_period: int
    checkpoint_period: int
    planned_seconds: float  # measurement + setup + training + evaluations + checkpoints
    eval_seconds: float = 0.0
    checkpoint_seconds: float = 0.0
    device: str = ""
    capped: bool = False  # the run is shorter than the budget allows: the profile's length or the epoch cap won
    profile: str = ""
    world_size: int = 1  # training workers the speed was measured with (a resume on another count keeps the plan)
    ims_per_batch: int = 0  # images per iteration, over all workers
    base_config: str = field(default="", repr=False)  # the config before planning, to reuse the plan on resume
    bound: str = ""  # which bound set max_iter (a key of BOUNDS); "" in a plan written before the epoch cap
    train_images: int = 0  # the training images an epoch passes over (0: not known, no epoch cap)
    max_epochs: float = 0.0  # the epoch cap planned with (EPOCHS; 0: none)

    @property
    def epochs(self) -> float | None:
        """Passes over the training images the planned run makes (None when their number is not known)."""
        return self.max_iter * self.ims_per_batch / self.train_images if self.train_images else None

    def why(self, short: bool = False) -> str:
        """Which bound set the length, and the epochs it makes: ``what fits the time budget; 14.6 epochs of 1,214
        images at 4 per iteration, cap 100``. ``short`` (the one-line :meth:`describe`): as before the epoch cap,
        nothing when the budget set the length, and the epochs only when their cap did."""
        why = BOUNDS.get(self.bound) or ("the profile's full length fits in the budget" if self.capped else "")
        if short and self.bound == "budget":
            why = ""
        epochs = ""
        if self.epochs and not (short and self.bound != "epochs"):
            cap = f", cap {self.max_epochs:g}" if self.max_epochs and self.bound != "epochs" else ""
            epochs = f"{self.epochs:.3g} epochs of {self.train_images:,} images at {self.ims_per_batch} per iteration"
            epochs += cap
        return "; ".join(filter(None, [why, epochs]))

    @property
    def evaluations(self) -> int:
        return math.ceil(self.max_iter / self.eval_period) if self.eval_period else 0

    def applied_to(self, cfg):
        """A frozen copy of ``cfg`` with the planned length, schedule and periods (the rest of the recipe kept)."""
        planned = cfg.clone()
        planned.defrost()
        planned.SOLVER.MAX_ITER = self.max_iter
        planned.SOLVER.WARMUP_ITERS = self.warmup_iters
        planned.SOLVER.STEPS = tuple(self.steps)
        planned.SOLVER.CHECKPOINT_PERIOD = self.checkpoint_period
        planned.TEST.EVAL_PERIOD = self.eval_period
        planned.freeze()
        return planned

    def describe(self) -> str:
        """``T4, 2.30 s/iter -> 4,600 iterations, ends in about 2 h 55 min``, plus the periods.

        With several workers (or a batch given): ``2 x T4 workers, batch 8, 1.40 s/iter -> ...``.
        """
        device = f"{self.device}, " if self.device else ""
        if self.world_size > 1:
            device = f"{self.world_size} x {self.device or 'device'} workers, batch {self.ims_per_batch}, "
        evals = f"validation every {self.eval_period:,}" if self.eval_period else "no validation"
        why = f" ({self.why(short=True)})" if self.why(short=True) else ""
        return (
            f"{device}{self.seconds_per_iter:.3g} s/iter -> {self.max_iter:,} iterations{why}, ends in about "
            f"{duration(self.planned_seconds)} (budget {duration(self.budget_hours * 3600)}); "
            f"warmup {self.warmup_iters:,}, {evals}, checkpoint every {self.checkpoint_period:,}"
        )

    def rows(self) -> list[tuple[str, str]]:
        """The plan as a cell shows it: where it was measured, how long the run is, its periods."""
        device = self.device or "this machine"
        if self.world_size > 1:
            device = f"{self.world_size} x {device} workers"
        return [
            ("profile", self.profile),
            ("measured on", f"{device}, {self.seconds_per_iter:.3g} s/iter"),
            ("iterations", f"{self.max_iter:,}" + (f" ({self.why()})" if self.why() else "")),
            (
                "ends in about",
                f"{duration(self.planned_seconds)} (budget {duration(self.budget_hours * 3600)})",
            ),
            ("warmup", f"{self.warmup_iters:,} iterations"),
            ("LR steps", ", ".join(f"{s:,}" for s in self.steps) or "none"),
            ("validation", f"every {self.eval_period:,} ({self.evaluations} passes)" if self.eval_period else "none"),
            ("checkpoint", f"every {self.checkpoint_period:,}"),
            ("batch", f"{self.ims_per_batch} images per iteration" if self.ims_per_batch else "the profile's"),
        ]

    def __repr__(self) -> str:
        return text_table("Plan (plan.json in the run's folder)", self.rows())

    def _repr_html_(self) -> str:
        return html_table("Plan (plan.json in the run's folder)", self.rows())

    def save(self, path: Path) -> Path:
        return write_json(path, asdict(self), indent=2)

    @classmethod
    def load(cls, path: Path) -> Plan | None:
        """The saved plan, or None when there is none or it cannot be read (then it is made anew)."""
        try:
            data = json.loads(Path(path).read_text())
            data["steps"] = tuple(data["steps"])
            return cls(**data)
        except (OSError, ValueError, TypeError, KeyError):
            return None


def _profile_count(max_iter: int, period: int) -> int:
    return math.ceil(max_iter / period) if period and period > 0 else 0


def plan_budget(
    seconds_per_iter: float,
    budget_hours: float,
    profile_cfg,
    *,
    eval_seconds: float = 0.0,
    checkpoint_seconds: float = 0.0,
    setup_seconds: float = 0.0,
    spent_seconds: float = 0.0,
    device: str = "",
    profile: str = "",
    world_size: int = 1,
    train_images: int | None = None,
    max_epochs: float | None = None,
) -> Plan:
    """Plan the longest run of ``profile_cfg``'s recipe that fits ``budget_hours``; pure, no GPU needed.

    The profile's own config supplies the recipe: its MAX_ITER (never exceeded), warmup (kept, up
    to half the run: smoke with a quarter-run warmup diverged at iteration 28 of 87 in our runs), LR steps (scaled
    to the new length; a cosine schedule decays to zero over MAX_ITER by itself), and how many
    evaluations and checkpoints it makes (at most 12 checkpoints). The budget pays for what was already spent measuring
    (``spent_seconds``), building the trainer (``setup_seconds``), the iterations, the periodic
    validation passes (capped at 10% of the budget) and the checkpoint writes. With ``world_size``
    workers, ``seconds_per_iter`` is the measured step of all of them together (one iteration is the
    whole batch, ``IMS_PER_BATCH``, over all workers), so the planning itself is the same.

    ``max_epochs`` passes over ``train_images`` (the dataset record's count; :data:`EPOCHS` gives each profile's
    figure) cap the length too, at ``max_epochs * train_images / IMS_PER_BATCH`` iterations (at least
    :data:`MIN_ITERATIONS`): the run is the shortest of the three bounds, and the schedule and periods follow
    whichever won. Without either, there is no epoch cap.
    """
    if seconds_per_iter <= 0:
        raise TinyVocError(f"seconds per iteration must be positive, not {seconds_per_iter}")
    solver = profile_cfg.SOLVER
    profile_iters = int(solver.MAX_ITER)
    budget = float(budget_hours) * 3600
    left = budget - spent_seconds - setup_seconds
    evaluations = _profile_count(profile_iters, profile_cfg.TEST.EVAL_PERIOD) if profile_cfg.DATASETS.TEST else 0
    if evaluations and eval_seconds > 0:
        evaluations = max(1, min(evaluations, int(MAX_EVAL_SHARE * left / eval_seconds)))
    checkpoints = min(_profile_count(profile_iters, solver.CHECKPOINT_PERIOD), MAX_CHECKPOINTS)
    # periodic checkpoints carry the optimizer; best (at most once per evaluation) and final are half that
    saving = checkpoints * checkpoint_seconds + (evaluations + 1) * checkpoint_seconds / 2
    iterations = int((left - evaluations * eval_seconds - saving) / seconds_per_iter)
    if iterations < MIN_ITERATIONS:
        raise TinyVocError(
            f"a budget of {duration(budget)} leaves time for only {max(iterations, 0)} iterations at "
            f"{seconds_per_iter:.3g} s/iter (after {spent_seconds + setup_seconds:.0f} s measuring and setting up, "
            f"{evaluations} validations of {eval_seconds:.0f} s): raise TIME_BUDGET_H, or set MAX_ITER instead."
        )
    bounds = {"profile": profile_iters, "budget": iterations}  # ties: the profile's own length, then the epochs
    if train_images and max_epochs:
        epoch_iters = max(MIN_ITERATIONS, math.ceil(max_epochs * train_images / int(solver.IMS_PER_BATCH)))
        bounds = {"profile": profile_iters, "epochs": epoch_iters, "budget": iterations}
    bound = min(bounds, key=bounds.get)
    iterations = bounds[bound]
    eval_period = math.ceil(iterations / evaluations) if evaluations else 0
    checkpoint_period = math.ceil(iterations / checkpoints) if checkpoints else iterations
    scale = iterations / profile_iters
    steps = tuple(sorted({max(1, round(s * scale)) for s in solver.STEPS if s < profile_iters}))
    warmup = min(int(solver.WARMUP_ITERS), int(iterations * MAX_WARMUP_SHARE))
    evaluations = math.ceil(iterations / eval_period) if eval_period else 0
    planned = (
        spent_seconds
        + setup_seconds
        + iterations * seconds_per_iter
        + evaluations * eval_seconds
        + (math.ceil(iterations / checkpoint_period) + (evaluations + 1) / 2) * checkpoint_seconds
    )
    return Plan(
        budget_hours=float(budget_hours),
        seconds_per_iter=round(seconds_per_iter, 4),
        max_iter=iterations,
        warmup_iters=warmup,
        steps=steps,
        eval_period=eval_period,
        checkpoint_period=checkpoint_period,
        planned_seconds=round(planned, 1),
        eval_seconds=round(eval_seconds, 2),
        checkpoint_seconds=round(checkpoint_seconds, 2),
        device=device,
        capped=bound != "budget",
        profile=profile,
        world_size=int(world_size),
        ims_per_batch=int(solver.IMS_PER_BATCH),
        bound=bound,
        train_images=int(train_images or 0),
        max_epochs=float(max_epochs or 0) if train_images else 0.0,
    )
