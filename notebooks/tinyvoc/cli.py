"""Command line: one verb per notebook (executed headless), plus the checks that need no notebook.

Notebook verbs run the notebook itself through papermill, so the command line and the notebooks
can never drift apart; their flags are made from the settings' one declaration (``core/settings.py``):
each verb takes the flags of the parameters its notebook declares, ``run-all`` all of them. All the
command line's parsing is here, the two checkers' included. ``tinyvoc`` is the console script the
package installs (``python -m tinyvoc`` is the same), and works from any folder:

    tinyvoc run-all --profile smoke --dataset sample
    tinyvoc train --num-gpus 2                  # two workers (GPUs; on a CPU, two gloo processes)
    tinyvoc train --opts SOLVER.BASE_LR 0.01 INPUT.MIN_SIZE_TRAIN "(512, 640)"   # any config key
    tinyvoc train --profile /path/to/my_recipe.yaml   # your own YAML file, e.g. with _BASE_: strong.yaml
    tinyvoc export --score-thresh 0.3
    tinyvoc runs                                # every training run compared (--json; --remove NAME)
    tinyvoc run-all --dataset /path/to/my-export.zip   # your own COCO export (Roboflow, CVAT, Label Studio, ...)
    tinyvoc check-dataset /path/to/my-export.zip   # only the check
    tinyvoc validate                            # the project's submission.json against its test.json
    tinyvoc evaluate --split test               # a labelled test set's mask and box AP, from the cache
    tinyvoc predict photos/ more.zip            # new images: results, masks, overlays, pre-labels
    tinyvoc wheelhouse tinyvoc-wheelhouse       # for Kaggle with Internet off: upload it once as a dataset
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .core.errors import TinyVocError
from .core.paths import NOTEBOOKS, TEST_JSON, Outputs
from .core.settings import SETTINGS, default
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


def _on_off(text: str) -> bool:
    if text not in ("on", "off"):
        raise argparse.ArgumentTypeError(f"takes on or off, not {text!r}")
    return text == "on"


def add_setting_flags(parser: argparse.ArgumentParser, notebooks) -> None:
    """One flag per declared setting that one of ``notebooks`` takes (unset: None, the notebook's default).

    A True/False setting's flag sets the opposite of its default (``--no-resume``); ``--opts`` takes
    ``KEY VALUE ...`` as detectron2's ``tools/train_net.py`` does.
    """
    for setting in SETTINGS:
        if not setting.flag or not any(setting.declared_in(name) for name in notebooks):
            continue
        text = setting.help_in(notebooks[0]) if len(notebooks) == 1 else setting.help
        flag = dict(dest=setting.name, default=None, help=text.replace("%", "%%"))
        kind = setting.kind or type(setting.default)
        if kind is bool:
            parser.add_argument(setting.flag, action="store_const", const=not setting.default, **flag)
        elif kind is list:
            parser.add_argument(setting.flag, nargs="+", metavar="KEY VALUE", **flag)
        elif kind == "runs":  # once: one run (a string); --run A --run B: a list, fused
            parser.add_argument(setting.flag, action="append", metavar="RUN", **flag)
        elif kind == "on/off":
            parser.add_argument(setting.flag, type=_on_off, metavar="{on,off}", **flag)
        else:
            parser.add_argument(setting.flag, type=kind, choices=setting.choices or None, **flag)
    parser.add_argument(
        "-p", nargs=2, action="append", metavar=("NAME", "VALUE"), default=[], help="any other notebook parameter"
    )


def _parameters(args: argparse.Namespace) -> dict:
    """The notebook parameters given on the command line (``-p NAME VALUE`` last); papermill passes each
    notebook the ones it declares."""
    params = {s.name: getattr(args, s.name) for s in SETTINGS if getattr(args, s.name, None) is not None}
    for setting in SETTINGS:
        value = params.get(setting.name)
        if setting.kind == "runs" and isinstance(value, list) and len(value) == 1:
            params[setting.name] = value[0]  # one --run: the string it always was
    params.update(dict(args.p))
    return params


PROJECT_HELP = "the project folder (default: MyDrive/tinyvoc on Colab, /kaggle/working on Kaggle, else this repo)"


def project_folder(project_dir: str = "") -> Path:
    """The project the notebooks use here, as ``start`` finds it (on Colab the Drive folder), said on stderr.

    Every verb that reads or writes a project goes through here, so ``tinyvoc runs`` in a Colab cell sees the
    runs 02 trained on Drive. The command cannot mount Drive itself (Colab asks in the browser): an unmounted
    Drive stops, saying so (a notebook's first two cells mount it), before anything is read or written.
    stderr keeps ``--json`` clean.
    """
    root = project_root(os.path.abspath(project_dir) if project_dir else "")
    colab.require_mounted(root, "PROJECT_DIR")
    given = "--project-dir" if project_dir else "the notebooks' default here; --project-dir for another"
    print(f"project: {root} ({given})", file=sys.stderr)
    return root


def _add_check_dataset(verbs) -> None:
    check = verbs.add_parser(
        "check-dataset",
        help="check a COCO dataset before training (exit 1 on errors)",
        description="Check a COCO dataset's json files and images before registering them: the course's files, or "
        "your own export (a folder or .zip from Roboflow, CVAT, Label Studio, or a plain folder with one json).",
    )
    check.add_argument("train_json", help="an export's folder or .zip, or a training json, e.g. data/pascal_train.json")
    check.add_argument("train_images", nargs="?", help="folder of training images (a json's own: images/ beside it)")
    check.add_argument("--test-json", help="test json (images and categories only)")
    check.add_argument("--test-images", help="folder of test images")
    check.add_argument("--crowd-as-objects", action="store_true", help="an export's crowd regions count as objects")
    check.add_argument("--no-images", action="store_true", help="only check that image files exist; do not open them")
    check.add_argument("--limit", type=int, default=30, help="most problem lines to print (default 30)")
    check.add_argument("--workers", type=int, help="threads reading images (default: one per CPU, at most 8)")
    check.set_defaults(handler=check_dataset)


def check_dataset(args: argparse.Namespace) -> int:
    """Exit status 0 when there are no errors (warnings allowed), 1 when there are, so scripts and make
    targets can stop before training."""
    options = {"read_images": not args.no_images, "workers": args.workers}
    given = Path(args.train_json)
    if args.train_images is None and (given.is_dir() or given.suffix.lower() == ".zip"):  # an export: as 01 reads it
        import tempfile

        from .dataset.own_data import prepare

        with tempfile.TemporaryDirectory(prefix="tinyvoc-check-") as scratch:
            prepared = prepare(given, Path(scratch), test_images=args.test_images,
                               crowd_as_objects=args.crowd_as_objects)  # fmt: skip
            print(f"{given}: {prepared.layout.describe()}")
            report = dataset_check.check_files(prepared.files, found=prepared.problems, **options)
    else:
        if (args.test_json is None) != (args.test_images is None):
            raise TinyVocError("--test-json and --test-images go together")
        images = args.train_images or (given.parent / "images" if (given.parent / "images").is_dir() else given.parent)
        report = dataset_check.check_dataset(args.train_json, images, args.test_json, args.test_images, **options)
    print(report.summary(limit=args.limit))
    return 0 if report.ok else 1


def _add_validate(verbs) -> None:
    valid = verbs.add_parser(
        "validate",
        help="validate a submission: validate [SUBMISSION] [--test-json FILE] (default: the project's)",
        description="Check a submission json (list of image_id, category_id, segmentation RLE, score; COCO results "
        "add bbox).",
    )
    valid.add_argument(
        "submission", nargs="?", help="the submission json to check (default: the project's output/submission.json)"
    )
    valid.add_argument(
        "--test-json",
        help="the test set's COCO json, images and categories (default: the project's, as 01 registered it)",
    )
    valid.add_argument("--project-dir", dest="PROJECT_DIR", default="", help=PROJECT_HELP)
    valid.add_argument(
        "--format",
        choices=("course", "coco"),
        help="course: the grader's four keys; coco: COCO results (bbox too); default: the project's dataset decides "
        "(output/dataset.json: the course's data course, your own coco; no record: course)",
    )
    valid.add_argument(
        "--max-errors", type=int, default=50, help="how many errors to print to stderr (default 50; 0 = all kept)"
    )
    valid.set_defaults(handler=validate)


def project_test_json(root: Path) -> Path:
    """The project's test json: the one 01 registered (its dataset record), else ``data/test.json``."""
    from .dataset.record import DatasetRecord

    try:
        registered = DatasetRecord.load(Outputs.at(root / "output")).data_files.test_json
    except (TinyVocError, OSError, ValueError, KeyError):  # no record yet, or one this version cannot read
        registered = None
    return registered if registered is not None and registered.is_file() else root / "data" / TEST_JSON


def validate(args: argparse.Namespace) -> int:
    """0 valid, 1 invalid, 2 when the test json or the file cannot be read (as for a usage error).

    What is not given is the project's (:func:`project_folder`; on Colab the one on Drive): the submission 04 wrote,
    the test json 01 registered, and the format its dataset is exported in (the course's four keys, or COCO results
    for your own data)."""
    from .submission.coco_results import project_format

    try:
        submission, test_json, chosen = args.submission, args.test_json, args.format
        if submission is None or test_json is None:
            root = project_folder(args.PROJECT_DIR)
            if submission is None:
                submission = Outputs.at(root / "output").submission
                if not submission.is_file():
                    raise TinyVocError(f"{submission}: submission file not found (04_export_submission writes it)")
            test_json = test_json or project_test_json(root)
        else:  # both files given: the project is looked at for the format alone, quietly
            root = project_root(os.path.abspath(args.PROJECT_DIR) if args.PROJECT_DIR else "")
        chosen = chosen or project_format(Outputs.at(root / "output").dataset_record)
        report = submission_check.validate_submission(submission, test_json, format=chosen)
    except TinyVocError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.summary(max_errors=0))
    if report.ok:
        return 0
    shown = report.errors if args.max_errors <= 0 else report.errors[: args.max_errors]
    print(f"{report.path}: {report.num_errors} problem(s):", file=sys.stderr)
    for message in shown:
        print(f"  {message}", file=sys.stderr)
    if report.num_errors > len(shown):
        print(f"  ... and {report.num_errors - len(shown)} more", file=sys.stderr)
    return 1


def _add_evaluate(verbs) -> None:
    scored = verbs.add_parser(
        "evaluate",
        help="mask and box AP of a split with ground truth: evaluate [--split test|val] [--run best]",
        description="Score the cached predictions (made first where missing or stale) of the validation split, or of "
        "a labelled test set (an export's test/ with annotations): mask and box AP, AP50 per class.",
    )
    scored.add_argument("--split", choices=("test", "val"), default="val", help="which split (default val)")
    scored.add_argument("--run", dest="RUN", default="best", help='"best" (top val AP50) or a run\'s name')
    scored.add_argument("--checkpoint", dest="CHECKPOINT", default="best", help='"best", "final" or a .pth path')
    scored.add_argument("--score-thresh", dest="SCORE_THRESH", type=float, help="default: the profile's own")
    scored.add_argument("--max-per-image", dest="MAX_PER_IMAGE", type=int, default=100, help="default 100")
    scored.add_argument("--project-dir", dest="PROJECT_DIR", default="", help=PROJECT_HELP)
    scored.set_defaults(handler=evaluate)


def evaluate(args: argparse.Namespace) -> int:
    """Print the split's scores and per-class table; save them as ``output/<split>_metrics.json``."""
    from .inference import ensemble, split_scores

    root = project_folder(args.PROJECT_DIR)
    outputs = Outputs.at(root / "output")
    run = ensemble.load(outputs, args.CHECKPOINT, args.RUN)
    selection = run.selection(args.SCORE_THRESH, None, args.MAX_PER_IMAGE)
    if args.split == "val" and not run.record.val_split:
        raise TinyVocError("there is no validation split (VAL_FRACTION was 0); try --split test")
    predictions = ensemble.predict_split(run, args.split)
    metrics = split_scores.score_split(predictions, selection, save_to=outputs.metrics_of(args.split))
    print(f"{selection.describe()}\n{split_scores.report(metrics, run.record.class_map)}")
    return 0


def _add_predict(verbs) -> None:
    new = verbs.add_parser(
        "predict",
        help="the trained model on new images: predict IMAGES... [--run best] [--out DIR]",
        description="Predict every image of folders (recursive), image files or zips of images (no json needed): "
        "COCO results with your dataset's ids, 16-bit instance masks, overlays and pre-labels for a labelling tool, "
        "in one zip too. Each image is cached: run it again and only new images go through the model.",
    )
    new.add_argument("images", nargs="+", help="folders, image files or .zip files")
    new.add_argument("--run", dest="RUN", default="best", help='"best" (top val AP50) or a run\'s name')
    new.add_argument("--checkpoint", dest="CHECKPOINT", default="best", help='"best", "final" or a .pth path')
    new.add_argument("--score-thresh", dest="SCORE_THRESH", type=float, help="default: the profile's own")
    new.add_argument("--tta", dest="TTA", type=_on_off, metavar="{on,off}", help="default: the profile's setting")
    new.add_argument("--out", help="the output folder (default: output/predict/ in the project)")
    new.add_argument("--project-dir", dest="PROJECT_DIR", default="", help=PROJECT_HELP)
    new.set_defaults(handler=predict)


def predict(args: argparse.Namespace) -> int:
    """Predict, write, print where everything went; 0 even when some files were unreadable (they are listed)."""
    from .deliverables import predict_new_images
    from .inference.trained_run import TrainedRun

    root = project_folder(args.PROJECT_DIR)
    outputs = Outputs.at(root / "output")
    run = TrainedRun.load(outputs, args.CHECKPOINT, run=args.RUN)
    out = Path(os.path.abspath(args.out)) if args.out else outputs.predict_dir
    written = predict_new_images(run, args.images, out, run.selection(args.SCORE_THRESH), tta=args.TTA)
    print(written.summary())
    return 0


def _add_runs(verbs) -> None:
    runs = verbs.add_parser(
        "runs",
        help="every training run compared: runs [--json] [--remove NAME]",
        description="The training runs in output/runs/, sorted by best validation mask AP50, the best marked.",
    )
    runs.add_argument(
        "--json", action="store_true", help="a json list: name, dir, best_ap50, best_iteration, state, ..."
    )
    runs.add_argument("--remove", metavar="NAME", help="delete run NAME (its checkpoints and prediction caches)")
    runs.add_argument("--project-dir", dest="PROJECT_DIR", default="", help=PROJECT_HELP)
    runs.set_defaults(handler=list_runs)


def list_runs(args: argparse.Namespace) -> int:
    """Print the runs table (or its json); ``--remove NAME`` deletes that run first (asked for: nothing else does)."""
    from .training import runs

    outputs = Outputs.at(project_folder(args.PROJECT_DIR) / "output")
    runs.adopt_legacy(outputs)
    if args.remove:
        runs.remove(outputs, args.remove)
    if args.json:
        print(json.dumps([r.to_json() for r in runs.list_runs(outputs)], indent=2))
    else:
        print(repr(runs.table(outputs)))
    return 0


def install_detectron2(args: argparse.Namespace) -> int:
    from .runtime.detectron2_install import ensure_detectron2

    print(ensure_detectron2(args.method))
    return 0


def wheelhouse(args: argparse.Namespace) -> int:
    from .runtime.wheelhouse import build_wheelhouse

    build_wheelhouse(args.folder)
    print("Upload this folder once as a Kaggle dataset and attach it: the first cell installs from it offline.")
    return 0


def sample_data(args: argparse.Namespace) -> int:
    from .dataset.sample import make_sample_dataset

    print(make_sample_dataset(args.folder))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The verbs; each subparser names its handler (``args.handler``), as ``main`` calls it."""
    parser = argparse.ArgumentParser(prog="tinyvoc", description="Tiny VOC instance segmentation with detectron2.")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for verb, (notebook, text) in NOTEBOOK_VERBS.items():
        notebook_verb = verbs.add_parser(verb, help=text, description=text)
        add_setting_flags(notebook_verb, [notebook])
        notebook_verb.set_defaults(handler=run_notebooks)
    everything = verbs.add_parser("run-all", help="the main job: notebooks 00-04 in order")
    add_setting_flags(everything, NOTEBOOKS)
    everything.set_defaults(handler=run_notebooks)
    _add_check_dataset(verbs)
    _add_validate(verbs)
    _add_evaluate(verbs)
    _add_predict(verbs)
    _add_runs(verbs)
    d2 = verbs.add_parser(
        "install-detectron2", help="only detectron2, no notebook (make setup): install-detectron2 [wheel|git]"
    )
    d2.add_argument("method", nargs="?", default="wheel", choices=["wheel", "git"])
    d2.set_defaults(handler=install_detectron2)
    sample = verbs.add_parser("sample-data", help="write the built-in sample dataset to a folder")
    sample.add_argument("folder")
    sample.set_defaults(handler=sample_data)
    house = verbs.add_parser(
        "wheelhouse",
        help="write the package, detectron2 and what Kaggle's image lacks into a folder (for Kaggle, Internet off)",
    )
    house.add_argument("folder")
    house.set_defaults(handler=wheelhouse)
    return parser


def check_opts_early(params: dict) -> None:
    """Bad ``--opts`` stop before any notebook runs (``run-all`` would install and register first).
    Notebook 02 checks them again, as it checks ``OPTS`` set in the notebook."""
    if not params.get("OPTS"):
        return
    try:
        from .training.config import check_opts
    except ImportError:  # detectron2 is not installed yet: notebook 00 installs it, notebook 02 checks
        return
    check_opts(params.get("PROFILE") or default("PROFILE"), params["OPTS"])


def run_notebooks(args: argparse.Namespace) -> int:
    """A notebook verb, or ``run-all``: the notebooks executed with papermill, the settings given as parameters."""
    from .runner import run_all, run_notebook

    params = _parameters(args)
    check_opts_early(params)
    if params.get("PROJECT_DIR"):
        params["PROJECT_DIR"] = os.path.abspath(params["PROJECT_DIR"])  # relative to where the user typed it
    root = project_folder(params.get("PROJECT_DIR") or "")  # before papermill writes the executed copies there
    outputs = Outputs.at(root / "output")
    if args.verb != "run-all":
        run_notebook(NOTEBOOK_VERBS[args.verb][0], params, outputs)
        return 0
    executed = run_all(params, outputs)
    print("\nDone. Results:")
    print(f"  submission:         {outputs.submission}")
    print(f"  executed notebooks: {executed[0].parent}")
    print(f"  figures:            {outputs.figures_dir}")
    print(f"  training runs:      {outputs.runs_dir} (compared: tinyvoc runs)")
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage message (or --help) already
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return args.handler(args)
    except TinyVocError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
