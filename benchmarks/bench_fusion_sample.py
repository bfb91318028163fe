"""Two smoke recipes on the sample, and their fusion by the binary vote and by mask voting, side by side.

One command trains (or resumes, when already trained) two smoke runs on the built-in sample, as
``make pictures`` does (300 iterations each; the second at BASE_LR 0.01), predicts their validation
split once (caches with the mask head's probabilities), fuses them twice (the binary vote, from the
caches without probabilities, and mask voting) and prints, for each member and each fusion, validation
mask AP50 and AP at its own best threshold, and for each fusion its AP50 gain over the better member
with the paired bootstrap's 95% interval (``inference.bootstrap``: 1,000 draws of the validation images).

    .venv/bin/python benchmarks/bench_fusion_sample.py [--iterations 300] [--project /tmp/fusion-sample]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time
from dataclasses import replace
from pathlib import Path

from tinyvoc.core.paths import DataFiles, Outputs
from tinyvoc.dataset.record import prepare_dataset
from tinyvoc.dataset.sample import make_sample_dataset
from tinyvoc.inference import ensemble, fusion
from tinyvoc.training.train import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=300, help="each smoke run's iterations")
    parser.add_argument("--project", default="/tmp/tinyvoc-fusion-sample", help="kept: a second call trains nothing")
    args = parser.parse_args()
    root = Path(args.project)
    outputs = Outputs.at(root / "output")
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        if not outputs.dataset_record.exists():
            sample = make_sample_dataset(root / "sample")
            prepare_dataset(DataFiles.in_folder(sample), outputs, "sample", val_fraction=0.2, seed=0)
        names = [
            train(outputs, "smoke", max_iter=args.iterations).name,
            train(outputs, "smoke", max_iter=args.iterations, overrides=["SOLVER.BASE_LR", "0.01"]).name,
        ]
        run = ensemble.load(outputs, "best", names)
        soft = ensemble.predict_split(run, "val")
        members = run.member_predictions("val")
        plain = [replace(m, detections=[{k: v for k, v in d.items() if k != "mask_probs"} for d in m.detections])
                 for m in members]  # fmt: skip
        binary = fusion.fuse(plain, run.iou_threshold)
        selection = run.selection(run.score_floor)
        verdicts = {
            "binary vote": ensemble.judge(list(zip(names, members)), ("binary vote", binary), selection),
            "mask voting": ensemble.judge(list(zip(names, members)), ("mask voting", soft), selection),
        }
    print(f"the sample, two smoke runs of {args.iterations} iterations ({time.perf_counter() - started:.0f} s here):")
    first = verdicts["mask voting"]
    for member in first.members:
        print(
            f"  {member.name:36s} val mask AP50 {member.ap50:.3f}  AP {member.ap:.3f}  (threshold {member.threshold:g})"
        )
    for name, verdict in verdicts.items():
        fused, (point, low, high) = verdict.fused, verdict.difference
        print(f"  {name:36s} val mask AP50 {fused.ap50:.3f}  AP {fused.ap:.3f}  (threshold {fused.threshold:g}); "
              f"less the better member {point:+.3f} AP50, 95% interval {low:+.3f}..{high:+.3f}")  # fmt: skip
    print(f"  ({first.num_images} validation images; mask IoU {run.iou_threshold:g})")


if __name__ == "__main__":
    main()
