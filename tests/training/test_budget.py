"""The time-budget planner: pure arithmetic on a measured speed, so it is tested with given speeds.

Whether a real run ends inside its budget is measured by ``benchmarks/bench_budget.py``, not here:
wall-clock checks are not robust on a loaded CI machine.
"""

import json

import pytest

from tinyvoc.core.errors import TinyVocError
from tinyvoc.training.budget import (
    DEFAULT_BUDGET_H,
    EPOCHS,
    MAX_CHECKPOINTS,
    MIN_ITERATIONS,
    Plan,
    plan_budget,
    resolve_budget,
)
from tinyvoc.training.profiles import build_config

HOUR = 3600


@pytest.fixture(scope="module")
def strong(tmp_path_factory):
    return build_config("strong", 20, str(tmp_path_factory.mktemp("strong")), has_gpu=True)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    return build_config("smoke", 3, str(tmp_path_factory.mktemp("smoke")), has_gpu=False)


def test_budget_defaults_explicit_max_iter_wins_and_zero_turns_it_off():
    assert resolve_budget("strong", None, None) == DEFAULT_BUDGET_H == 3.0
    assert resolve_budget("reference", None, None) == DEFAULT_BUDGET_H
    assert resolve_budget("smoke", None, None) is None  # make submission keeps the profile's 300 iterations
    assert resolve_budget("smoke", 0.05, None) == 0.05
    assert resolve_budget("strong", 0, None) is None
    assert resolve_budget("strong", 5, 1000) is None
    with pytest.raises(TinyVocError, match="TIME_BUDGET_H must be positive"):
        resolve_budget("strong", -1, None)


def test_t4_plan_fills_three_hours_and_keeps_the_recipe(strong):
    plan = plan_budget(
        2.3, 3, strong, eval_seconds=40, checkpoint_seconds=12, setup_seconds=60, spent_seconds=90, device="T4"
    )
    assert 0.97 * 3 * HOUR <= plan.planned_seconds <= 3 * HOUR
    time_outside_iterations = 90 + 60 + plan.evaluations * 40
    assert plan.max_iter == pytest.approx((3 * HOUR - time_outside_iterations) / 2.3, rel=0.03)
    assert plan.evaluations == 15  # the profile's own count (30000 / 2000) costs 10 min, under 10% of 3 h
    assert plan.eval_period * plan.evaluations >= plan.max_iter > plan.eval_period * (plan.evaluations - 1)
    assert plan.max_iter / plan.checkpoint_period <= MAX_CHECKPOINTS
    assert plan.warmup_iters == 1000  # the profile's warmup: stability needs iterations, not a share
    assert not plan.capped and plan.steps == ()
    cfg = plan.applied_to(strong)
    assert cfg.is_frozen() and strong.SOLVER.MAX_ITER == 30000  # a planned copy; the profile's config is kept
    assert (cfg.SOLVER.MAX_ITER, cfg.SOLVER.WARMUP_ITERS) == (plan.max_iter, plan.warmup_iters)
    assert (cfg.TEST.EVAL_PERIOD, cfg.SOLVER.CHECKPOINT_PERIOD) == (plan.eval_period, plan.checkpoint_period)
    # the budget changes length, schedule and periods only: the rest of the recipe stays
    assert cfg.SOLVER.LR_SCHEDULER_NAME == "WarmupCosineLR" and cfg.SOLVER.BASE_LR == strong.SOLVER.BASE_LR
    assert cfg.INPUT.MIN_SIZE_TRAIN == strong.INPUT.MIN_SIZE_TRAIN and cfg.TEST.AUG.ENABLED
    assert cfg.SOLVER.AMP.ENABLED and cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST == 0.01
    assert plan.describe().startswith(f"T4, 2.3 s/iter -> {plan.max_iter:,} iterations, ends in about 3 h 00 min")


def test_longer_budgets_plan_longer_runs_until_the_profile_length(strong):
    plans = [plan_budget(2.3, h, strong, eval_seconds=40, checkpoint_seconds=12) for h in (1, 3, 6, 12)]
    iterations = [p.max_iter for p in plans]
    assert iterations == sorted(iterations) and len(set(iterations)) == 4
    fast = plan_budget(0.2, 12, strong, eval_seconds=10)
    assert fast.capped and fast.max_iter == strong.SOLVER.MAX_ITER == 30000
    assert fast.warmup_iters == strong.SOLVER.WARMUP_ITERS
    assert plan_budget(2.3, 0.5, strong).warmup_iters == 391  # half of a 782-iteration run
    assert fast.planned_seconds < 12 * HOUR
    assert "the profile's full length fits" in fast.describe()


def test_step_schedule_is_scaled_to_the_planned_length(smoke):
    plan = plan_budget(1.0, 160.5 / HOUR, smoke)  # 160 iterations of the profile's 300
    assert plan.max_iter == 160
    assert plan.steps == (128,)  # the step at 240 of 300 lands at the same 80%
    assert plan.warmup_iters == 50  # the profile's own: it is less than half of this run
    assert plan.eval_period == 54 and plan.checkpoint_period == 54  # three of each, as in the profile


def test_slow_validation_is_capped_at_a_tenth_of_the_budget(strong):
    plan = plan_budget(2.3, 3, strong, eval_seconds=300)
    assert plan.evaluations * 300 <= 0.1 * 3 * HOUR + 300
    assert plan.evaluations == 3
    no_val = strong.clone()
    no_val.DATASETS.TEST = ()
    assert plan_budget(2.3, 3, no_val, eval_seconds=300).eval_period == 0


def test_a_budget_too_small_for_training_is_a_clear_error(strong):
    with pytest.raises(TinyVocError, match="leaves time for only .* iterations .* raise TIME_BUDGET_H"):
        plan_budget(2.3, 0.02, strong, setup_seconds=60)
    with pytest.raises(TinyVocError, match="must be positive"):
        plan_budget(0, 3, strong)


def test_plan_round_trips_through_its_file(strong, tmp_path):
    plan = plan_budget(2.3, 3, strong, eval_seconds=40, device="T4", profile="strong")
    plan.save(tmp_path / "plan.json")
    assert Plan.load(tmp_path / "plan.json") == plan
    (tmp_path / "broken.json").write_text('{"budget_hours": 3')
    assert Plan.load(tmp_path / "broken.json") is None
    assert Plan.load(tmp_path / "missing.json") is None


def test_a_plan_for_several_workers_says_so_and_an_older_plan_file_reads_as_one(smoke, tmp_path):
    plan = plan_budget(0.75, 0.1, smoke, eval_seconds=2, device="CPU", world_size=2)
    assert (plan.world_size, plan.ims_per_batch) == (2, 4)  # the step measured: all workers, the whole batch
    assert plan.describe().startswith("2 x CPU workers, batch 4, 0.75 s/iter -> ")
    assert plan_budget(0.75, 0.1, smoke, device="CPU").describe().startswith("CPU, 0.75 s/iter")
    plan.save(tmp_path / "plan.json")
    assert Plan.load(tmp_path / "plan.json") == plan
    older = json.loads((tmp_path / "plan.json").read_text())
    del older["world_size"], older["ims_per_batch"]  # written before plans knew about workers
    (tmp_path / "old.json").write_text(json.dumps(older))
    assert Plan.load(tmp_path / "old.json").world_size == 1


def test_a_small_dataset_is_capped_in_epochs_and_the_schedule_follows(strong):
    """100 images and 3 hours: not the ~40,000 iterations an H100 could do (the profile's 30,000 = 1,200 epochs)."""
    plan = plan_budget(0.25, 3, strong, eval_seconds=20, device="H100", train_images=100, max_epochs=EPOCHS["strong"])
    assert EPOCHS["strong"] == 100
    assert (plan.max_iter, plan.bound, plan.capped) == (2500, "epochs", True)  # 100 epochs * 100 images / batch 4
    assert plan.epochs == 100 and plan.planned_seconds < 0.25 * 3 * HOUR
    assert plan.warmup_iters == 1000  # the profile's, under half of the capped run
    assert plan.evaluations == 15 and plan.eval_period == 167  # the profile's count of passes, over the capped length
    assert plan.checkpoint_period == 209 and plan.max_iter / plan.checkpoint_period <= MAX_CHECKPOINTS
    cfg = plan.applied_to(strong)
    assert (cfg.SOLVER.MAX_ITER, cfg.TEST.EVAL_PERIOD, cfg.SOLVER.LR_SCHEDULER_NAME) == (2500, 167, "WarmupCosineLR")
    assert "2,500 iterations (the epoch cap, shorter than what fits the budget; 100 epochs of 100 images" in (
        plan.describe()
    )
    assert ("iterations", "2,500 (the epoch cap, shorter than what fits the budget; 100 epochs of 100 images at 4 "
            "per iteration)") in plan.rows()  # fmt: skip
    # a slower GPU: the budget binds first, and the plan says how many epochs that is, under which cap
    slow = plan_budget(2.3, 3, strong, eval_seconds=20, train_images=1214, max_epochs=100)
    assert slow.bound == "budget" and not slow.capped and slow.max_iter < 30000
    assert (
        f"what fits the time budget; {slow.epochs:.3g} epochs of 1,214 images at 4 per iteration, cap 100"
        in (dict(slow.rows())["iterations"])
    )
    assert f"{slow.max_iter:,} iterations, ends in about" in slow.describe()  # the one line as before the cap


def test_the_epoch_cap_scales_steps_and_warmup_and_has_a_floor(smoke):
    plan = plan_budget(0.5, 1, smoke, train_images=20, max_epochs=EPOCHS["smoke"])  # 12 epochs of 20 at batch 4
    assert (plan.max_iter, plan.bound) == (60, "epochs")
    assert plan.steps == (48,)  # the step at 240 of 300 lands at the same 80%
    assert plan.warmup_iters == 30  # half of the run: the profile's 50 would not fit
    assert plan.eval_period == 20 and plan.checkpoint_period == 20  # three of each, as in the profile
    tiny = plan_budget(0.5, 1, smoke, train_images=2, max_epochs=12)
    assert (tiny.max_iter, tiny.bound) == (MIN_ITERATIONS, "epochs")
    assert plan_budget(0.5, 1, smoke).bound == "profile"  # no image count: no epoch cap


def test_the_course_keeps_each_profiles_length(strong, smoke, tmp_path):
    """The epoch figures leave the course's plans alone: Tiny VOC's 1,214 training images (VAL_FRACTION 0.1), the
    sample's 120 (the main job's VAL_FRACTION 0.2; 135 at 0.1) reach each profile's own MAX_ITER first."""
    reference = build_config("reference", 20, str(tmp_path), has_gpu=True)
    for cfg, name, images in ((strong, "strong", 1214), (reference, "reference", 1214), (smoke, "smoke", 120)):
        fast = plan_budget(0.01, 12, cfg, train_images=images, max_epochs=EPOCHS[name])
        assert (fast.max_iter, fast.bound) == (cfg.SOLVER.MAX_ITER, "profile"), name
        uncapped = plan_budget(0.01, 12, cfg)
        assert fast.applied_to(cfg).dump() == uncapped.applied_to(cfg).dump() and fast.capped  # as without the cap
        assert "the profile's full length fits in the budget" in fast.describe()


def test_a_plan_written_before_the_epoch_cap_still_reads(strong, tmp_path):
    plan = plan_budget(0.2, 12, strong, train_images=1214, max_epochs=100)
    plan.save(tmp_path / "plan.json")
    assert Plan.load(tmp_path / "plan.json") == plan
    older = json.loads((tmp_path / "plan.json").read_text())
    del older["bound"], older["train_images"], older["max_epochs"]
    (tmp_path / "old.json").write_text(json.dumps(older))
    old = Plan.load(tmp_path / "old.json")
    assert (
        old.max_iter == 30000
        and old.epochs is None
        and "(the profile's full length fits in the budget)" in old.describe()
    )
