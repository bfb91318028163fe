"""Training seconds per iteration and peak memory for each profile, on the machine it runs on.

Each (profile, mixed precision) pair runs in its own process on synthetic batches at the profile's
own image size and batch size (random weights: weights do not change the speed). On a CPU the
X-101 profiles are far too slow at full size, so ``--cpu-size`` shrinks their images (printed).

    .venv/bin/python benchmarks/bench_training.py                # CPU: all profiles, small sizes
    .venv/bin/python benchmarks/bench_training.py --profiles reference,strong --amp both   # on a GPU
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from _common import peak_rss_mib


def synthetic_batch(batch_size: int, size: int, num_classes: int, device: str):
    import torch
    from detectron2.structures import BitMasks, Boxes, Instances

    batch = []
    g = torch.Generator().manual_seed(0)
    for k in range(batch_size):
        h, w = size, int(size * 4 / 3)
        inst = Instances((h, w))
        boxes, masks = [], torch.zeros(3, h, w, dtype=torch.bool)
        for j in range(3):
            x0, y0 = int(w * 0.1 * (j + 1)), int(h * 0.1 * (j + 1))
            x1, y1 = x0 + w // 4, y0 + h // 4
            boxes.append([x0, y0, x1, y1])
            masks[j, y0:y1, x0:x1] = True
        inst.gt_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32))
        inst.gt_classes = torch.tensor([(k + j) % num_classes for j in range(3)])
        inst.gt_masks = BitMasks(masks)
        image = torch.randint(0, 255, (3, h, w), generator=g).float()
        batch.append({"image": image.to(device), "instances": inst.to(device), "height": h, "width": w})
    return batch


def measure(profile: str, amp: bool, iters: int, cpu_size: int) -> dict:
    import torch
    from detectron2.modeling import build_model
    from detectron2.solver import build_optimizer
    from detectron2.utils.events import EventStorage

    from tinyvoc.training.profiles import build_config

    has_gpu = torch.cuda.is_available()
    cfg = build_config(profile, 20, "/tmp/bench", has_gpu=has_gpu)
    cfg.MODEL.WEIGHTS = ""
    device = "cuda" if has_gpu else "cpu"
    cfg.MODEL.DEVICE = device
    size = max(cfg.INPUT.MIN_SIZE_TRAIN) if has_gpu or profile == "smoke" else cpu_size
    model = build_model(cfg).train()
    optimizer = build_optimizer(cfg, model)
    scaler = torch.amp.GradScaler("cuda", enabled=amp and has_gpu)
    batch = synthetic_batch(cfg.SOLVER.IMS_PER_BATCH, size, 20, device)
    times = []
    with EventStorage():
        for k in range(iters + 2):  # two warm-up iterations
            if has_gpu:
                torch.cuda.synchronize()
            start = time.perf_counter()
            with torch.autocast(device_type=device, enabled=amp and has_gpu):
                loss = sum(model(batch).values())
            optimizer.zero_grad()
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            if has_gpu:
                torch.cuda.synchronize()
            if k >= 2:
                times.append(time.perf_counter() - start)
    return {
        "profile": profile,
        "amp": amp and has_gpu,
        "device": torch.cuda.get_device_name(0) if has_gpu else "cpu",
        "batch": cfg.SOLVER.IMS_PER_BATCH,
        "short_edge": size,
        "s_per_iter": sorted(times)[len(times) // 2],
        "gpu_peak_mib": torch.cuda.max_memory_allocated() / 2**20 if has_gpu else None,
        "rss_peak_mib": peak_rss_mib(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", default="smoke,reference,strong")
    parser.add_argument("--amp", choices=["on", "off", "both"], default="on")
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--cpu-size", type=int, default=256, help="short edge for X-101 profiles on CPU")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        profile, amp = args.child.split(":")
        print(json.dumps(measure(profile, amp == "1", args.iters, args.cpu_size)))
        return
    amps = {"on": [True], "off": [False], "both": [False, True]}[args.amp]
    rows = []
    for profile in args.profiles.split(","):
        for amp in amps:
            cmd = [
                sys.executable,
                __file__,
                "--child",
                f"{profile}:{int(amp)}",
                "--iters",
                str(args.iters),
                "--cpu-size",
                str(args.cpu_size),
            ]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            r = rows[-1]
            gpu = f"{r['gpu_peak_mib']:.0f}" if r["gpu_peak_mib"] is not None else "-"
            print(
                f"{r['profile']:9s} amp={'on ' if r['amp'] else 'off'} {r['device']:>24s} batch {r['batch']} "
                f"short edge {r['short_edge']:4d}: {r['s_per_iter']:.3f} s/iter "
                f"(x{r['s_per_iter'] / rows[0]['s_per_iter']:.1f} vs first row), "
                f"GPU peak {gpu} MiB, RSS peak {r['rss_peak_mib']:.0f} MiB",
                flush=True,
            )


if __name__ == "__main__":
    main()
