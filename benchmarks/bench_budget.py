"""What a time budget buys: planned iterations per profile and budget, and a real budgeted run on this CPU.

Part 1 prints, for each profile and budget (1, 3, 6, 12 h), the plan :func:`tinyvoc.budget.plan_budget`
makes from a seconds-per-iteration figure: iterations, epochs, warmup, validation and checkpoint
periods, and the planned end. GPU figures are estimates unless you pass measured ones
(``--speeds strong=2.1``); ``benchmarks/gpu_check.sh`` measures them on a GPU.

Part 2 (``--run-minutes``, default 3) trains the smoke profile on the sample with that budget on
this machine and prints planned against actual seconds; ``--resume-check`` also interrupts a
second run halfway and resumes it, checking the resume continues the saved plan.

    .venv/bin/python benchmarks/bench_budget.py                       # table + 3-minute smoke run
    .venv/bin/python benchmarks/bench_budget.py --run-minutes 0       # table only
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
from pathlib import Path

# Estimates, not measurements, except smoke (this project's CPU): T4 from the model zoo's V100 figure
# (X101-FPN 0.690 s/iter at 2 images per V100) scaled to a T4 and to each profile's batch and sizes.
SPEEDS = {"smoke": 0.33, "reference": 1.2, "strong": 2.4}  # smoke: this CPU, quiet; T4: estimates
EVAL_SECONDS = {"smoke": 4.0, "reference": 40.0, "strong": 60.0}  # one validation pass (135 val images on GPU)
CHECKPOINT_SECONDS = {"smoke": 0.1, "reference": 10.0, "strong": 10.0}  # one 0.8 GB periodic checkpoint to Drive
SETUP_SECONDS = {"smoke": 2.0, "reference": 60.0, "strong": 60.0}  # build model + loader, and the measurement
TRAIN_IMAGES = {"smoke": 0, "reference": 1214, "strong": 1214}  # 1349 with 10% held out; smoke: the sample's


def _speeds(text: str) -> dict:
    speeds = dict(SPEEDS)
    for item in filter(None, text.split(",")):
        name, value = item.split("=")
        speeds[name] = float(value)
    return speeds


def table(speeds: dict, budgets: list[float], sample_train_images: int) -> None:
    from tinyvoc.core.errors import TinyVocError
    from tinyvoc.core.units import duration
    from tinyvoc.training.budget import plan_budget
    from tinyvoc.training.profiles import PROFILES, build_config

    print("profile    s/iter  budget  iterations  epochs  warmup  val every  ckpt every  ends after")
    for profile in PROFILES:
        cfg = build_config(profile, 20, tempfile.gettempdir(), has_gpu=profile != "smoke")
        images = TRAIN_IMAGES[profile] or sample_train_images
        for hours in [0.05, *budgets] if profile == "smoke" else budgets:
            try:
                plan = plan_budget(
                    speeds[profile],
                    hours,
                    cfg,
                    eval_seconds=EVAL_SECONDS[profile],
                    checkpoint_seconds=CHECKPOINT_SECONDS[profile],
                    setup_seconds=SETUP_SECONDS[profile],
                )
            except TinyVocError as exc:
                print(f"{profile:9s} {speeds[profile]:6.2f}  {hours:5g} h  {exc}")
                continue
            epochs = plan.max_iter * cfg.SOLVER.IMS_PER_BATCH / images
            capped = " (profile length)" if plan.capped else ""
            print(
                f"{profile:9s} {speeds[profile]:6.2f}  {hours:5g} h  {plan.max_iter:10,d}  {epochs:6.1f}  "
                f"{plan.warmup_iters:6d}  {plan.eval_period:9,d}  {plan.checkpoint_period:10,d}  "
                f"{duration(plan.planned_seconds)}{capped}"
            )


def _interrupt_halfway():
    from detectron2.engine import DefaultTrainer

    original = DefaultTrainer.run_step

    def run_step(self):
        if self.iter == self.max_iter // 2:
            raise KeyboardInterrupt("simulated disconnect")
        return original(self)

    return original, run_step


def run_smoke(minutes: float, resume_check: bool) -> None:
    from detectron2.engine import DefaultTrainer

    from tinyvoc.core.paths import DataFiles, Outputs
    from tinyvoc.dataset.record import prepare_dataset
    from tinyvoc.dataset.sample import make_sample_dataset
    from tinyvoc.training import train as training
    from tinyvoc.training.budget import Plan

    hours = minutes / 60
    with tempfile.TemporaryDirectory() as tmp:
        sample = make_sample_dataset(Path(tmp) / "sample")
        outputs = Outputs.at(Path(tmp) / "run")
        prepare_dataset(DataFiles.in_folder(sample), outputs, "sample", val_fraction=0.2, seed=0)
        started = time.perf_counter()
        run = training.train(outputs, "smoke", time_budget_h=hours)
        actual = time.perf_counter() - started
        plan = Plan.load(outputs.run(run.name).plan)
        print(
            f"\nsmoke, {minutes:g}-minute budget: planned {plan.planned_seconds:.0f} s, actual {actual:.0f} s "
            f"({actual / (hours * 3600) - 1:+.1%} of the budget); {plan.max_iter} iterations, measured "
            f"{plan.seconds_per_iter:.3f} s/iter in the warm-up, {run.seconds_per_iter:.3f} s/iter over the run "
            f"(validation included), {plan.evaluations} validations of ~{plan.eval_seconds:.1f} s planned; "
            f"val AP50 {run.best_ap50}"
        )
        if not resume_check:
            return
        outputs = Outputs.at(Path(tmp) / "resumed")
        prepare_dataset(DataFiles.in_folder(sample), outputs, "sample", val_fraction=0.2, seed=0)
        original, interrupted = _interrupt_halfway()
        started = time.perf_counter()
        DefaultTrainer.run_step = interrupted
        try:
            training.train(outputs, "smoke", time_budget_h=hours)
        except KeyboardInterrupt:
            pass
        finally:
            DefaultTrainer.run_step = original
        (name,) = [p.name for p in outputs.runs_dir.iterdir()]  # the one run: stopped, so no record yet
        first = Plan.load(outputs.run(name).plan)
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            run = training.train(outputs, "smoke", time_budget_h=hours)
        actual = time.perf_counter() - started
        same = Plan.load(outputs.run(name).plan) == first and "Continuing the saved plan" in printed.getvalue()
        print(
            f"interrupted at iteration {first.max_iter // 2} and resumed: same plan {same}, finished {run.finished} "
            f"at {run.iteration}/{first.max_iter}; both sessions {actual:.0f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--speeds", default="", help="seconds per iteration, e.g. strong=2.1,reference=1.1")
    parser.add_argument("--budgets", default="1,3,6,12", help="hours")
    parser.add_argument("--run-minutes", type=float, default=3.0, help="smoke budget to run on this machine; 0: skip")
    parser.add_argument("--resume-check", action="store_true", help="also interrupt a budgeted run and resume it")
    args = parser.parse_args()
    from tinyvoc.dataset.sample import make_sample_dataset

    with tempfile.TemporaryDirectory() as tmp:
        import json

        sample = make_sample_dataset(Path(tmp))
        train_images = round(len(json.loads((sample / "pascal_train.json").read_text())["images"]) * 0.8)
    table(_speeds(args.speeds), [float(h) for h in args.budgets.split(",")], train_images)
    if args.run_minutes:
        run_smoke(args.run_minutes, args.resume_check)


if __name__ == "__main__":
    main()
