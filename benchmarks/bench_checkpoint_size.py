"""Checkpoint sizes of the X-101 profiles, measured from real files, and the worst case on Drive.

Builds each profile's model on CPU (random weights: the size does not depend on the values),
gives its SGD optimizer momentum buffers with one step, and saves through the trainer's own
``AtomicCheckpointer``: a periodic checkpoint (model + optimizer + scheduler, what a resume needs)
and ``model_final.pth`` (weights only). The worst case a run leaves on Drive is two periodic
checkpoints plus ``model_best.pth`` and ``model_final.pth``.

    .venv/bin/python benchmarks/bench_checkpoint_size.py [--profiles reference,strong]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


class _TrainerState:
    """What ``DefaultTrainer.state_dict()`` holds: iteration, LR scheduler hook, optimizer."""

    def __init__(self, optimizer, scheduler):
        self.optimizer, self.scheduler = optimizer, scheduler

    def state_dict(self):
        return {
            "iteration": 999,
            "hooks": {"LRScheduler": {"scheduler": self.scheduler.state_dict()}},
            "_trainer": {"iteration": 999, "optimizer": self.optimizer.state_dict()},
        }


def measure(profile: str, folder: Path) -> dict:
    import torch
    from detectron2.modeling import build_model
    from detectron2.solver import build_lr_scheduler, build_optimizer

    from tinyvoc.training.engine import AtomicCheckpointer
    from tinyvoc.training.profiles import build_config

    cfg = build_config(profile, 20, str(folder), has_gpu=False)
    cfg.MODEL.WEIGHTS = ""
    cfg.MODEL.DEVICE = "cpu"
    model = build_model(cfg)
    params = sum(p.numel() for p in model.parameters())
    optimizer = build_optimizer(cfg, model)
    for p in model.parameters():
        if p.requires_grad:
            p.grad = torch.zeros_like(p)
    optimizer.step()  # creates the momentum buffers a real checkpoint carries
    trainer = _TrainerState(optimizer, build_lr_scheduler(cfg, optimizer))
    checkpointer = AtomicCheckpointer(model, str(folder), trainer=trainer)
    checkpointer.save("model_0000999", iteration=999)
    checkpointer.save("model_final", iteration=999)
    mib = {name: (folder / f"{name}.pth").stat().st_size / 2**20 for name in ("model_0000999", "model_final")}
    for name in mib:
        (folder / f"{name}.pth").unlink()
    return {
        "profile": profile,
        "params_m": params / 1e6,
        "periodic": mib["model_0000999"],
        "weights": mib["model_final"],
        "old_count": cfg.SOLVER.MAX_ITER // cfg.SOLVER.CHECKPOINT_PERIOD,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", default="reference,strong")
    args = parser.parse_args()
    from tinyvoc.training.engine import KEEP_PERIODIC

    for profile in args.profiles.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            r = measure(profile, Path(tmp))
        worst = KEEP_PERIODIC * r["periodic"] + 2 * r["weights"]
        # the old layout: every periodic checkpoint of the profile's full length, best/final with optimizer
        before = (r["old_count"] + 2) * r["periodic"]
        print(
            f"{r['profile']:9s} {r['params_m']:.1f} M parameters: periodic checkpoint (with optimizer) "
            f"{r['periodic']:.0f} MiB, weights only (best/final) {r['weights']:.0f} MiB; worst case on Drive "
            f"{KEEP_PERIODIC} periodic + best + final = {worst:.0f} MiB ({worst * 2**20 / 1e9:.2f} GB); keeping all "
            f"{r['old_count']} periodic + best + final with optimizer, as before: {before * 2**20 / 1e9:.1f} GB"
        )


if __name__ == "__main__":
    main()
