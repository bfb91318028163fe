"""Every setting a user can change, declared once: name, default, help, the notebooks that take it, the CLI flag.

The notebooks' ``parameters`` cells say the same (tests/runtime/test_project.py holds each cell to this
list: the same names, defaults and comments), the command line's flags are made from it (``cli.py``),
and the package functions those cells call default to the same values (tests hold them to it). A new
setting is one line here, then one line in each notebook's parameters cell.
"""

from __future__ import annotations

from dataclasses import dataclass

ALL = ("00", "01", "02", "03", "04")


@dataclass(frozen=True)
class Setting:
    """One notebook parameter. ``flag``: its command-line flag, or None (``-p NAME VALUE`` still sets it).

    A flag takes a value of ``kind`` (the default's type when not given); a True/False setting's flag
    takes none and sets the opposite of the default (``--no-resume``); ``kind="on/off"`` takes on or off;
    ``kind=list`` takes one or more values (``--opts KEY VALUE ...``); ``kind="runs"`` is repeatable (``--run A
    --run B``: a list; once: a string). ``elsewhere``: ``(notebook prefix,
    default)`` pairs where a notebook's default differs (``RUN``: 02 names its run, 03 and 04 take the best).
    """

    name: str
    default: object
    help: str
    notebooks: tuple[str, ...]  # the notebooks' number prefixes, "00" .. "04"
    flag: str | None = None
    kind: object = None
    choices: tuple = ()
    elsewhere: tuple = ()

    def declared_in(self, notebook: str) -> bool:
        return notebook[:2] in self.notebooks

    def default_in(self, notebook: str):
        """The default in ``notebook``'s parameters cell (``default`` unless ``elsewhere`` says otherwise)."""
        return dict(self.elsewhere).get(notebook[:2], self.default)


SETTINGS: tuple[Setting, ...] = (
    # 01: the dataset
    Setting("DATASET", "auto", '"auto": the project\'s data (off Colab: the sample if none), "tinyvoc" or "sample"',
            ("01",), "--dataset", str, ("auto", "tinyvoc", "sample")),
    Setting("DOWNLOAD_DATA", True, "Colab, Kaggle (Internet on): fetch the course files when they are missing",
            ("01",), "--no-download"),
    Setting("VAL_FRACTION", 0.1, "share of training images held out for validation; 0 trains on all", ("01",),
            "--val-fraction"),
    Setting("SEED", 0, "the validation split's seed", ("01",), "--seed"),
    Setting("N_SHOW", 8, "training images drawn with their ground truth", ("01",)),
    # 02: training
    Setting("PROFILE", "auto", '"auto": strong on GPU, smoke on CPU; or "reference", or your .yaml file\'s path',
            ("02",), "--profile"),
    Setting("OPTS", [], 'any config keys: ["SOLVER.BASE_LR", "0.01", "INPUT.MIN_SIZE_TRAIN", "(512, 640)"]',
            ("02",), "--opts", list),
    Setting("MAX_ITER", 0, "0: the profile's own, or what the budget plans; set: wins over the budget", ("02",),
            "--max-iter"),
    Setting("TIME_BUDGET_H", None, "hours; None: 3 on a GPU profile, the profile's own length for smoke; 0: none",
            ("02",), "--time-budget-h", float),
    Setting("RESUME", True, "False: start this recipe's run over, replacing its checkpoints (the other runs stay)",
            ("02",), "--no-resume"),
    Setting("RUN", "auto", '02: "auto" (named after its recipe) or a name; 03/04: "best" (top val AP50), a name, or '
            "a list to fuse", ("02", "03", "04"), "--run", "runs",
            (), (("03", "best"), ("04", "best"))),
    Setting("PRETRAINED", True, "False: random init, only for machines that cannot download "
            "weights", ("02",), "--random-init"),
    Setting("NUM_GPUS", "auto", "worker processes here; auto: every visible GPU, 1 on a CPU (N: N gloo processes)",
            ("02",), "--num-gpus"),
    Setting("NUM_MACHINES", 1, "several machines: this notebook on each, the same DIST_URL, its own MACHINE_RANK",
            ("02",), "--num-machines"),
    Setting("MACHINE_RANK", 0, "0 .. NUM_MACHINES - 1; machine 0 writes the outputs", ("02",), "--machine-rank"),
    Setting("DIST_URL", "auto", 'where the workers meet; several machines: "tcp://<machine 0\'s address>:<port>"',
            ("02",), "--dist-url"),
    Setting("IMS_PER_BATCH", 0, "0: the profile's batch (the total over all workers); another scales LR and warmup",
            ("02",), "--ims-per-batch"),
    # 03 and 04: the trained model
    Setting("N_IMAGES", 12, "test images drawn with their predictions", ("03",), "--n-images"),
    Setting("SCORE_THRESH", None, "None: the profile's own (0.4 reference, 0.01 strong, 0.05 smoke)", ("03", "04"),
            "--score-thresh", float),
    Setting("GRAYSCALE", False, "the original notebook's look: gray background, coloured objects", ("03",),
            "--grayscale"),
    Setting("MAX_PER_IMAGE", 100, "the most instances per image in the submission", ("04",), "--max-per-image"),
    Setting("CLASS_THRESHOLDS", {}, "e.g. {15: 0.3}: dataset category id -> threshold", ("04",)),
    Setting("CHECKPOINT", "best", '"best", "final" or a .pth path', ("03", "04"), "--checkpoint"),
    Setting("TTA", None, "test-time augmentation; None: the profile's setting", ("03", "04"), "--tta", "on/off"),
    # every notebook: how detectron2 is installed, where the project is, and the package's source on Colab
    Setting("DETECTRON2_METHOD", "wheel", '"git": build upstream with its C++/CUDA ops (~5 min)', ALL, "--method",
            str, ("wheel", "git")),
    Setting("PROJECT_DIR", "",
            "empty: MyDrive/tinyvoc on Colab, /kaggle/working on Kaggle, else this repo; holds data/ and output/",
            ALL, "--project-dir"),
    Setting("REPO_URL", "https://github.com/tinyvoc/tinyvoc-detectron2.git",
            "Colab and Kaggle install the package from here", ALL),
    Setting("REPO_REF", "main", "at this ref: a branch, tag or commit", ALL),
)  # fmt: skip

BY_NAME = {s.name: s for s in SETTINGS}


def default(name: str):
    """The declared default of one setting (a copy: list and dict defaults are never shared)."""
    import copy

    return copy.deepcopy(BY_NAME[name].default)


def declared_in(notebook: str) -> list[Setting]:
    """The settings a notebook's parameters cell declares, in the cell's order."""
    return [s for s in SETTINGS if s.declared_in(notebook)]
