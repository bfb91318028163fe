"""Command line: one verb per notebook (executed headless), plus the checks that need no notebook.

Notebook verbs run the notebook itself through papermill, so the command line and the notebooks
can never drift apart. ``tinyvoc`` is the console script the package installs (``python -m tinyvoc``
is the same), and works from any folder:

    tinyvoc run-all --profile smoke --dataset sample
    tinyvoc train --num-gpus 2                  # two workers (GPUs; on a CPU, two gloo processes)
    tinyvoc export --score-thresh 0.3
    tinyvoc validate output/submission.json --test-json data/test.json
    tinyvoc wheelhouse tinyvoc-wheelhouse       # for Kaggle with Internet off: upload it once as a dataset
"""

from __future__ import annotations

import argparse
import os
import sys

from .core.errors import TinyVocError
from .core.paths import NOTEBOOKS, Outputs
from .dataset import check as dataset_check
from .runtime import colab
from .runtime.project import project_root
from .submission import check as submission_check

# verb -> (notebook, help)
NOTEBOOK_VERBS = {
    "install": (NOTEBOOKS[0], "00: install missing packages and detectron2, report the environment"),
    "register": (NOTEBOOKS[1], "01: check the dataset, split it, register it, show statistics"),
    "train": (NOTEBOOKS[2], "02: train (or resume) Mask R-CNN with the chosen profile"),
    "visualize": (NOTEBOOKS[3], "03: draw predictions and training curves"),
    "export": (NOTEBOOKS[4], "04: write and validate output/submission.json"),
}

# CLI flag -> notebook parameter; each notebook receives the ones it declares
FLAGS = {
    "--project-dir": ("PROJECT_DIR", str, "folder holding data/ and output/ (default: the repo)"),
    "--method": ("DETECTRON2_METHOD", str, "detectron2 install: wheel (default) or git"),
    "--dataset": ("DATASET", str, "auto, tinyvoc (PROJECT_DIR/data) or sample"),
    "--val-fraction": ("VAL_FRACTION", float, "share of training images held out for validation"),
    "--seed": ("SEED", int, "split seed"),
    "--profile": ("PROFILE", str, "auto, smoke, reference or strong"),
    "--max-iter": ("MAX_ITER", int, "override the profile's number of iterations (wins over the budget)"),
    "--time-budget-h": (
        "TIME_BUDGET_H",
        float,
        "hours for training + validation, planned from a measured speed (default: 3 on GPU, none for smoke; 0: none)",
    ),
    "--num-gpus": (
        "NUM_GPUS",
        str,
        "training worker processes on this machine: auto (every visible GPU, 1 on a CPU) or N; on a CPU, N worker "
        "processes with gloo (detectron2's launch)",
    ),
    "--num-machines": ("NUM_MACHINES", int, "machines training together: the same command on each (default 1)"),
    "--machine-rank": ("MACHINE_RANK", int, "this machine's rank, 0 .. NUM_MACHINES-1; machine 0 writes the outputs"),
    "--dist-url": (
        "DIST_URL",
        str,
        "where the workers meet: tcp://<machine 0's address>:<free port>, the same on every machine (default: auto, "
        "a free port on this one)",
    ),
    "--ims-per-batch": (
        "IMS_PER_BATCH",
        int,
        "images per iteration, the total over all workers (default: the profile's); another total scales BASE_LR and "
        "warmup linearly",
    ),
    "--checkpoint": ("CHECKPOINT", str, "best, final or a .pth path"),
    "--n-images": ("N_IMAGES", int, "images to draw"),
    "--score-thresh": ("SCORE_THRESH", float, "score threshold for drawing / exporting"),
    "--max-per-image": ("MAX_PER_IMAGE", int, "maximum instances per image in the submission"),
}


def _add_notebook_flags(parser: argparse.ArgumentParser) -> None:
    for flag, (_, kind, text) in FLAGS.items():
        parser.add_argument(flag, type=kind, help=text)
    parser.add_argument("--no-resume", action="store_true", help="train from scratch, replacing the last run")
    parser.add_argument(
        "--random-init", action="store_true", help="train without pretrained weights (offline machines; labelled)"
    )
    parser.add_argument("--tta", choices=["on", "off"], help="test-time augmentation (default: the profile's)")
    parser.add_argument("--grayscale", action="store_true", help="draw predictions on a gray background")
    parser.add_argument(
        "-p", nargs=2, action="append", metavar=("NAME", "VALUE"), default=[], help="any other notebook parameter"
    )


def _parameters(args: argparse.Namespace) -> dict:
    params = {name: getattr(args, flag[2:].replace("-", "_")) for flag, (name, _, _) in FLAGS.items()}
    if args.no_resume:
        params["RESUME"] = False
    if args.random_init:
        params["PRETRAINED"] = False
    if args.tta:
        params["TTA"] = args.tta == "on"
    if args.grayscale:
        params["GRAYSCALE"] = True
    for name, value in args.p:
        params[name] = value
    return params


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tinyvoc", description="Tiny VOC instance segmentation with detectron2.")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for verb, (_, text) in NOTEBOOK_VERBS.items():
        _add_notebook_flags(verbs.add_parser(verb, help=text, description=text))
    _add_notebook_flags(verbs.add_parser("run-all", help="the main job: notebooks 00-04 in order"))
    check = verbs.add_parser(
        "check-dataset", help="check a COCO dataset before training (exit 1 on errors)", add_help=False
    )
    check.add_argument("rest", nargs=argparse.REMAINDER)
    valid = verbs.add_parser(
        "validate", help="validate a submission: validate SUBMISSION --test-json FILE", add_help=False
    )
    valid.add_argument("rest", nargs=argparse.REMAINDER)
    d2 = verbs.add_parser(
        "install-detectron2", help="only detectron2, no notebook (make setup): install-detectron2 [wheel|git]"
    )
    d2.add_argument("method", nargs="?", default="wheel", choices=["wheel", "git"])
    sample = verbs.add_parser("sample-data", help="write the built-in sample dataset to a folder")
    sample.add_argument("folder")
    house = verbs.add_parser(
        "wheelhouse",
        help="write the package, detectron2 and what Kaggle's image lacks into a folder (for Kaggle, Internet off)",
    )
    house.add_argument("folder")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.verb == "check-dataset":
            return dataset_check.main(args.rest)
        if args.verb == "validate":
            return submission_check.main(args.rest)
        if args.verb == "install-detectron2":
            from .runtime.detectron2_install import ensure_detectron2

            print(ensure_detectron2(args.method))
            return 0
        if args.verb == "wheelhouse":
            from .runtime.wheelhouse import build_wheelhouse

            build_wheelhouse(args.folder)
            print("Upload this folder once as a Kaggle dataset and attach it: the first cell installs from it offline.")
            return 0
        if args.verb == "sample-data":
            from .dataset.sample import make_sample_dataset

            print(make_sample_dataset(args.folder))
            return 0
        from .runner import run_all, run_notebook

        params = _parameters(args)
        if params.get("PROJECT_DIR"):
            params["PROJECT_DIR"] = os.path.abspath(params["PROJECT_DIR"])  # relative to where the user typed it
        root = project_root(params.get("PROJECT_DIR") or "", on_colab=False)
        colab.require_mounted(root, "PROJECT_DIR")  # before papermill writes the executed copies there
        outputs = Outputs.at(root / "output")
        if args.verb == "run-all":
            executed = run_all(params, outputs)
            print("\nDone. Results:")
            print(f"  submission:         {outputs.submission}")
            print(f"  executed notebooks: {executed[0].parent}")
            print(f"  figures:            {outputs.figures_dir}")
            print(f"  training run:       {outputs.train.dir}")
        else:
            run_notebook(NOTEBOOK_VERBS[args.verb][0], params, outputs)
    except TinyVocError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
