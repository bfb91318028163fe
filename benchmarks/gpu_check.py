"""The GPU check: what a Colab user needs to know, measured on one NVIDIA GPU in a few minutes, offline.

Stages (each in its own process, with its own time limit; the report is rewritten after every stage,
so a stage that fails or runs out of time costs only itself):

* ``env``: Python, torch, the GPU.
* ``train``: X-101 ``reference`` and ``strong`` training steps, fp32 and AMP: s/iter, peak GPU memory
  (``bench_training.py``'s measurement, synthetic batches at each profile's largest training size).
* ``infer``: the 100 real test images through the project's own prediction path (``predict_split``:
  read, model, masks, RLE, cache): batch 1 vs 4 without TTA, and with TTA.
* ``plan``: the time-budget planner fed with this GPU's measured ``strong`` speed.
* ``e2e``: the five notebooks, headless, on the sample dataset with the ``strong`` profile and a short
  time budget, so warm-up measurement, planning, AMP training, evaluation, TTA prediction and export
  all run for real on the GPU.

Pretrained weights cannot be downloaded on such a machine, so every model here is randomly
initialised, explicitly (``PRETRAINED = False``, BN instead of FrozenBN) and labelled so in the
report: speed and memory do not depend on the weights; accuracy does, and none is claimed.

    bash benchmarks/gpu_check.sh OUT_DIR     # installs carried wheels, then runs this file
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]  # the package itself comes installed (gpu_check.sh)

RANDOM_INIT = "random init (no pretrained weights offline); speeds and memory only, no accuracy claimed"


def _run_child(args: list[str], timeout: float) -> dict:
    """Run ``python gpu_check.py --child ...`` and return the json it prints last (or the error)."""
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", *args], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        tail = (exc.stdout or b"")[-1500:]
        return {"error": f"timed out after {timeout:.0f} s", "tail": tail.decode(errors="replace")}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": f"exit {proc.returncode}", "tail": (proc.stdout + proc.stderr)[-3000:]}
    result = json.loads(lines[-1])
    result["wall_s"] = round(time.perf_counter() - started, 1)
    return result


# ---------------------------------------------------------------- stages (each runs in a child process)


def stage_env() -> dict:
    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.cuda.is_available()}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(
            gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1), cuda_version=torch.version.cuda
        )
    try:
        import detectron2

        info["detectron2"] = detectron2.__version__
    except ImportError as exc:
        info["detectron2"] = f"missing: {exc}"
    return info


def stage_train(profile: str, amp: bool, iters: int) -> dict:
    from bench_training import measure  # a sibling script: its folder is the script's own import path

    row = measure(profile, amp, iters, cpu_size=256)
    row["weights"] = RANDOM_INIT
    return row


def _random_init_outputs(workdir: Path, shared: Path, profile: str):
    """An output folder with the real test images registered and a randomly initialised model saved
    as its final checkpoint, so ``predict_split`` runs exactly as notebooks 03 and 04 run it."""
    import torch
    from detectron2.modeling import build_model

    from tinyvoc.core.paths import DataFiles, Outputs
    from tinyvoc.dataset.record import prepare_dataset
    from tinyvoc.training.profiles import build_config

    outputs = Outputs.at(workdir)
    files = DataFiles(
        shared / "pascal_train_first10.json", shared / "train_images", shared / "test.json", shared / "test_images"
    )
    record = prepare_dataset(files, outputs, "tinyvoc", val_fraction=0.0, seed=0)
    files = outputs.run("random-init")
    cfg = build_config(profile, len(record.class_names), str(files.dir), pretrained=False)
    files.dir.mkdir(parents=True, exist_ok=True)
    files.config.write_text(cfg.dump())
    torch.manual_seed(0)
    model = build_model(cfg)
    torch.save({"model": model.state_dict()}, files.final)
    return outputs


def stage_infer(shared: str, profile: str, batch_size: int, tta: bool) -> dict:
    import torch

    from tinyvoc.inference import cached_predictions
    from tinyvoc.inference.trained_run import TrainedRun

    with tempfile.TemporaryDirectory() as tmp:
        outputs = _random_init_outputs(Path(tmp), Path(shared), profile)
        torch.cuda.reset_peak_memory_stats() if torch.cuda.is_available() else None
        started = time.perf_counter()
        run = TrainedRun.load(outputs, "final")
        cached = cached_predictions.predict_split(run, "test", tta=tta, batch_size=batch_size, refresh=True)
        seconds = time.perf_counter() - started
    n_images = len(cached.image_ids)
    return {
        "profile": profile,
        "weights": RANDOM_INIT,
        "batch_size": batch_size,
        "tta": tta,
        "images": n_images,
        "detections": len(cached.detections),
        "seconds": round(seconds, 2),
        "images_per_s": round(n_images / seconds, 2),
        "gpu_peak_mib": round(torch.cuda.max_memory_allocated() / 2**20) if torch.cuda.is_available() else None,
    }


def stage_plan(s_per_iter: float, eval_seconds: float, gpu: str) -> dict:
    """The budget planner (the pure part of what notebook 02 does) fed with this GPU's measurements."""
    from dataclasses import asdict

    from tinyvoc.training.budget import plan_budget
    from tinyvoc.training.profiles import build_config

    rows = []
    cfg = build_config("strong", 20, "/tmp/plan", has_gpu=True)
    for hours in (1, 3, 6, 12):
        plan = plan_budget(
            s_per_iter, hours, cfg, eval_seconds=eval_seconds, checkpoint_seconds=10.0, setup_seconds=60.0,
            device=gpu, profile="strong",
        )  # fmt: skip
        rows.append({"budget_h": hours, **asdict(plan), "base_config": "", "text": plan.describe()})
    return {"s_per_iter": s_per_iter, "eval_seconds": eval_seconds, "plans": rows}


def stage_e2e(profile: str, budget_h: float, timeout: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable, "-m", "tinyvoc", "run-all", "--project-dir", tmp, "--dataset", "sample",
            "--val-fraction", "0.2", "--profile", profile, "--time-budget-h", str(budget_h), "--random-init",
        ]  # fmt: skip
        started = time.perf_counter()
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
        seconds = time.perf_counter() - started
        out = Path(tmp) / "output"
        result = {"exit": proc.returncode, "seconds": round(seconds, 1), "weights": RANDOM_INIT}
        for record in sorted((out / "runs").glob("*/run.json")):  # the one run run-all trained
            result["run"] = json.loads(record.read_text())
        if (out / "val_metrics.json").exists():
            result["val_metrics"] = json.loads((out / "val_metrics.json").read_text())
        if (out / "submission.json").exists():
            result["submission_instances"] = len(json.loads((out / "submission.json").read_text()))
        plan_lines = [line for line in proc.stdout.splitlines() if "s/iter ->" in line or "Profile " in line]
        result["plan_lines"] = plan_lines[:3]
        if proc.returncode != 0:
            result["tail"] = (proc.stdout + proc.stderr)[-3000:]
    return result


# ---------------------------------------------------------------- the report


def text_report(report: dict) -> str:
    env = report.get("env", {})
    lines = [f"GPU check on {env.get('gpu', 'no GPU')} (torch {env.get('torch')}, Python {env.get('python')})"]
    lines.append(f"weights: {RANDOM_INIT}")
    row_lines = {
        "train": lambda r: (
            f"{r['profile']:9s} {'AMP ' if r['amp'] else 'fp32'} batch {r['batch']} short edge {r['short_edge']}: "
            f"{r['s_per_iter']:.3f} s/iter, peak GPU {r['gpu_peak_mib'] or 0:.0f} MiB"
        ),
        "infer": lambda r: (
            f"{r['profile']} batch {r['batch_size']} TTA {'on ' if r['tta'] else 'off'}: {r['images']} test images "
            f"in {r['seconds']:.1f} s ({r['images_per_s']:.2f} img/s), {r['detections']} detections, "
            f"peak GPU {r['gpu_peak_mib']} MiB"
        ),
    }
    for stage, line in row_lines.items():
        for row in report.get(stage, []):
            lines.append(
                f"{stage} {row.get('label')}: ERROR {row['error']}" if "error" in row else f"{stage} {line(row)}"
            )
    plan = report.get("plan", {})
    for row in plan.get("plans", []):
        lines.append(f"plan {row['budget_h']:>2} h: {row['text']}")
    if "error" in plan:
        lines.append(f"plan: ERROR {plan['error']}")
    e2e = report.get("e2e")
    if e2e:
        if e2e.get("exit") == 0:
            run = e2e.get("run", {})
            segm = e2e.get("val_metrics", {}).get("segm", {})
            lines.append(
                f"e2e five notebooks (strong, sample data): {e2e['seconds']:.0f} s, trained {run.get('iteration')}"
                f"/{run.get('max_iter')} iterations in {run.get('seconds')} s, val segm AP50 {segm.get('AP50')}, "
                f"{e2e.get('submission_instances')} instances exported"
            )
            lines += [f"  {line.strip()}" for line in e2e.get("plan_lines", [])]
        else:
            lines.append(f"e2e: ERROR {e2e.get('error') or 'exit ' + str(e2e.get('exit'))}")
    lines.append(f"total {report.get('total_s', 0):.0f} s")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(REPO / "output" / "gpu_check"), help="folder for the report")
    parser.add_argument("--shared", default="", help="folder with test.json, test_images/ (default: ../shared)")
    parser.add_argument("--stages", default="env,train,infer,plan,e2e")
    parser.add_argument("--train-iters", type=int, default=10)
    parser.add_argument("--e2e-budget-h", type=float, default=0.05, help="time budget of the e2e training run")
    parser.add_argument("--train-profiles", default="reference,strong")
    parser.add_argument("--profile", default="strong", help="profile for the inference and e2e stages")
    parser.add_argument("--deadline-s", type=float, default=540, help="skip stages that would end after this")
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, *rest = args.child
        stage = {"env": stage_env, "train": stage_train, "infer": stage_infer, "plan": stage_plan}[name]
        typed = [json.loads(x) for x in rest]
        print(json.dumps(stage(*typed)), flush=True)
        return

    shared = Path(args.shared) if args.shared else REPO.parent / "shared" / "tinyvoc"
    for candidate in (shared, REPO / ".gpu" / "tinyvoc"):
        if (candidate / "test.json").exists():
            shared = candidate
            break
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stages = args.stages.split(",")
    report: dict = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "weights": RANDOM_INIT}
    started = time.perf_counter()

    def save() -> None:
        report["total_s"] = round(time.perf_counter() - started, 1)
        (out / "gpu_check.json").write_text(json.dumps(report, indent=2))
        try:
            text = text_report(report)
        except (KeyError, TypeError, ValueError) as exc:  # the json is the record; the text is a summary
            text = f"(summary failed: {exc!r}; see gpu_check.json)"
        (out / "gpu_check.txt").write_text(text + "\n")

    def time_left() -> float:
        return args.deadline_s - (time.perf_counter() - started)

    def child(args_: list[str], limit: float, label: str) -> dict:
        if time_left() < 20:
            return {"error": "skipped: out of time", "label": label}
        row = _run_child(args_, min(limit, time_left()))
        row["label"] = label
        print(json.dumps({k: v for k, v in row.items() if k != "tail"}), flush=True)
        return row

    if "env" in stages:
        report["env"] = child(["env"], 120, "env")
        save()
    if "train" in stages:
        report["train"] = []
        for profile in args.train_profiles.split(","):
            for amp in (False, True):
                args_ = ["train", json.dumps(profile), json.dumps(amp), str(args.train_iters)]
                report["train"].append(child(args_, 180, f"{profile} amp={amp}"))
                save()
    if "infer" in stages:
        report["infer"] = []
        for batch, tta in ((1, False), (4, False), (1, True)):
            args_ = ["infer", json.dumps(str(shared)), json.dumps(args.profile), str(batch), json.dumps(tta)]
            report["infer"].append(child(args_, 180, f"batch {batch} tta={tta}"))
            save()
    if "plan" in stages:
        rows = [r for r in report.get("train", []) if "s_per_iter" in r]
        speed = sorted(rows, key=lambda r: (r["profile"] != "strong", not r["amp"]))  # strong with AMP first
        tta = [r for r in report.get("infer", []) if r.get("tta") and "images_per_s" in r]
        if speed:
            # one validation pass over a 135-image split (10% of 1349) at the TTA speed measured above
            eval_s = round(135 / tta[0]["images_per_s"], 1) if tta else 60.0
            gpu = report.get("env", {}).get("gpu", "GPU")
            args_ = ["plan", json.dumps(speed[0]["s_per_iter"]), json.dumps(eval_s), json.dumps(gpu)]
            report["plan"] = child(args_, 60, "plan")
        else:
            report["plan"] = {"error": "no training speed measured"}
        save()
    if "e2e" in stages:
        if time_left() < 120:
            report["e2e"] = {"error": "skipped: out of time"}
        else:
            try:
                report["e2e"] = stage_e2e(args.profile, args.e2e_budget_h, timeout=time_left())
            except subprocess.TimeoutExpired:
                report["e2e"] = {"error": "timed out"}
        save()
    save()
    print((out / "gpu_check.txt").read_text())


if __name__ == "__main__":
    main()
