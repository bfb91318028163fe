"""Seconds per smoke training step with torch's threads set several ways, alone and beside another job.

Why: on this 2-core machine a smoke step goes from ~0.4 s to 6-14 s when another job runs beside it, far more
than sharing two cores explains. Each process runs torch's intra-op threads (OpenMP, one per core) and the
threads of two processes fight over the same cores. This prints, side by side in one run, the median seconds
per step of the smoke profile's real training step (R18-FPN Mask R-CNN, batch 4, short edge 128, synthetic
images as ``bench_training.py`` makes them) for each setting:

* ``default``: torch's own choice (one thread per core) and OpenMP's default waiting;
* ``threads=1`` / ``threads=2``: ``torch.set_num_threads(n)``;
* ``+PASSIVE``: ``OMP_WAIT_POLICY=PASSIVE`` (an idle OpenMP thread sleeps instead of spinning);

each measured alone ("quiet": no other job started by this script; the load average is printed, since other
programs may share the machine), beside a second process running the same step with the same setting (both
jobs follow the rule: pytest and a training worker or notebook kernel), and beside one with torch's defaults
(a job that does not). Every process is its own Python, so the environment is set before torch loads.

    .venv/bin/python benchmarks/bench_threads.py                 # about 10-20 minutes on 2 cores
    .venv/bin/python benchmarks/bench_threads.py --steps 4 --settings default,threads=1+PASSIVE
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time

SETTINGS = ["default", "default+PASSIVE", "threads=1", "threads=1+PASSIVE", "threads=2+PASSIVE"]


def _env(setting: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    if "PASSIVE" in setting:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    return env


def _threads(setting: str) -> int | None:
    return int(setting.split("=")[1].split("+")[0]) if setting.startswith("threads=") else None


def child(setting: str, steps: int, forever: bool, seconds: float) -> None:
    """Run smoke training steps; print one JSON line of step times (or loop until killed, as the load)."""
    import torch
    from bench_training import synthetic_batch
    from detectron2.modeling import build_model
    from detectron2.solver import build_optimizer
    from detectron2.utils.events import EventStorage

    from tinyvoc.training.profiles import build_config

    if _threads(setting):
        torch.set_num_threads(_threads(setting))
    torch.manual_seed(0)
    cfg = build_config("smoke", 20, "/tmp/bench-threads", has_gpu=False)
    cfg.MODEL.WEIGHTS = ""
    cfg.MODEL.DEVICE = "cpu"
    model = build_model(cfg).train()
    optimizer = build_optimizer(cfg, model)
    batch = synthetic_batch(cfg.SOLVER.IMS_PER_BATCH, max(cfg.INPUT.MIN_SIZE_TRAIN), 20, "cpu")
    times = []
    started = time.perf_counter()
    with EventStorage():
        k = 0
        while forever or k < steps + 2:
            start = time.perf_counter()
            loss = sum(model(batch).values())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if k == 1 and forever:
                print("ready", flush=True)
            if k >= 2:  # two warm-up steps
                times.append(time.perf_counter() - start)
                if not forever and time.perf_counter() - started > seconds and len(times) >= 2:
                    break
            k += 1
    print(json.dumps({"setting": setting, "threads": torch.get_num_threads(), "times": times}))


def _spawn(setting: str, args, forever: bool) -> subprocess.Popen:
    cmd = [sys.executable, __file__, "--child", setting, "--steps", str(args.steps), "--seconds", str(args.seconds)]
    return subprocess.Popen(
        [*cmd, *(["--forever"] if forever else [])],
        env=_env(setting),
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
        cwd=os.path.dirname(os.path.abspath(__file__)),
    )


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def measure(setting: str, load: str | None, args) -> dict:
    """Median seconds per step of ``setting``, with ``load`` (a setting) running beside it, or nothing."""
    neighbour = _spawn(load, args, forever=True) if load else None
    try:
        if neighbour:
            assert neighbour.stdout.readline().strip() == "ready", "the load process did not start"
        before = os.getloadavg()[0]
        measured = _spawn(setting, args, forever=False)
        try:
            out, _ = measured.communicate(timeout=1800)
        finally:
            _stop(measured)
        assert measured.returncode == 0, f"{setting} failed"
        row = json.loads(out.strip().splitlines()[-1])
    finally:
        if neighbour:
            _stop(neighbour)
    times = sorted(row["times"])
    return {**row, "median": times[len(times) // 2], "load_avg_before": before}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--steps", type=int, default=6, help="timed steps (after two warm-up ones)")
    parser.add_argument("--seconds", type=float, default=60.0, help="stop timing after this long (>= 2 steps)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--forever", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.steps, args.forever, args.seconds)
        return
    settings = args.settings.split(",")
    print(f"{os.cpu_count()} CPUs; the smoke step (batch 4, short edge 128): median s/step of {args.steps}", flush=True)
    print(f"{'setting':20s} {'quiet':>16s} {'beside the same':>18s} {'beside default':>18s}", flush=True)
    results = []
    for setting in settings:
        cells = []
        for load in (None, setting, "default"):
            row = measure(setting, load, args)
            results.append({**row, "load": load or "none"})
            cells.append(f"{row['median']:6.3f} (la {row['load_avg_before']:4.1f})")
        print(f"{setting:20s} {cells[0]:>16s} {cells[1]:>18s} {cells[2]:>18s}", flush=True)
    print("la: the 1-minute load average when the measured process started (other programs included)")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
