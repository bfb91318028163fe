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
    default[, help])`` where a notebook's default or comment differs (``RUN``: 02 names its run, 03 and 04 take
    the best); a comment says what the setting means in that notebook, where a student reads it.
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
        return next((e[1] for e in self.elsewhere if e[0] == notebook[:2]), self.default)

    def help_in(self, notebook: str) -> str:
        """The comment in ``notebook``'s parameters cell, and its CLI verb's help (``help`` unless ``elsewhere``
        gives one); ``help`` itself serves ``run-all``, which passes the setting to every notebook."""
        return next((e[2] for e in self.elsewhere if e[0] == notebook[:2] and len(e) > 2), self.help)


SETTINGS: tuple[Setting, ...] = (
    # 01: the dataset
    Setting(
        name="DATASET",
        default="auto",
        help='"auto": the course data (off Colab: the sample if none), "tinyvoc", "sample", or your export\'s path',
        notebooks=("01",),
        flag="--dataset",
        kind=str,
    ),
    Setting(
        name="TEST_IMAGES",
        default="",
        help="own data: a folder of new images to predict (no json needed); empty: the export's test set or val",
        notebooks=("01",),
        flag="--test-images",
    ),
    Setting(
        name="CROWD_AS_OBJECTS",
        default=False,
        help="your own data: train crowd regions (iscrowd: 1, CVAT's brush masks) as objects",
        notebooks=("01",),
        flag="--crowd-as-objects",
    ),
    Setting(
        name="KEEP_EMPTY_IMAGES",
        default=False,
        help="train on images without objects as negatives (False: left out, as detectron2 does)",
        notebooks=("01",),
        flag="--keep-empty-images",
    ),
    Setting(
        name="DOWNLOAD_DATA",
        default=True,
        help="Colab, Kaggle (Internet on): fetch the course files when they are missing",
        notebooks=("01",),
        flag="--no-download",
    ),
    Setting(
        name="VAL_FRACTION",
        default=0.1,
        help="share of training images held out for validation; 0 trains on all",
        notebooks=("01",),
        flag="--val-fraction",
    ),
    Setting(name="SEED", default=0, help="the validation split's seed", notebooks=("01",), flag="--seed"),
    Setting(name="N_SHOW", default=8, help="training images drawn with their ground truth", notebooks=("01",)),
    # 02: training
    Setting(
        name="PROFILE",
        default="auto",
        help='"auto": strong on a GPU (none on Colab/Kaggle: stops), else smoke; "reference", "smoke", your .yaml',
        notebooks=("02",),
        flag="--profile",
    ),
    Setting(
        name="OPTS",
        default=[],
        help='any config keys: ["SOLVER.BASE_LR", "0.01", "INPUT.MIN_SIZE_TRAIN", "(512, 640)"]',
        notebooks=("02",),
        flag="--opts",
        kind=list,
    ),
    Setting(
        name="MAX_ITER",
        default=0,
        help="0: the profile's own, or what the budget plans; set: wins over the budget",
        notebooks=("02",),
        flag="--max-iter",
    ),
    Setting(
        name="TIME_BUDGET_H",
        default=None,
        help="hours; None: 3 on a GPU profile, the profile's own length for smoke; 0: none",
        notebooks=("02",),
        flag="--time-budget-h",
        kind=float,
    ),
    Setting(
        name="RESUME",
        default=True,
        help="False: start this recipe's run over, replacing its checkpoints (the other runs stay)",
        notebooks=("02",),
        flag="--no-resume",
    ),
    Setting(
        name="RUN",
        default="auto",
        help='02: "auto" (named after its recipe) or a name; 03/04: "best" (top val AP50), a name, or a list to fuse',
        notebooks=("02", "03", "04"),
        flag="--run",
        kind="runs",
        elsewhere=(
            ("02", "auto", '"auto": this recipe\'s run (named after it, resumed if there), or a name of yours'),
            ("03", "best", '"best": show the run with the top val AP50; or a run\'s name, or a list of names to fuse'),
            ("04", "best", '"best": export the run with the top val AP50; or a run\'s name, or a list to fuse'),
        ),
    ),
    Setting(
        name="PRETRAINED",
        default=True,
        help="False: random init, only for machines that cannot download weights",
        notebooks=("02",),
        flag="--random-init",
    ),
    Setting(
        name="WEIGHTS",
        default="auto",
        help='"auto": ImageNet for the course\'s data, COCO\'s Mask R-CNN for your own; or "imagenet", "coco"',
        notebooks=("02",),
        flag="--weights",
        kind=str,
        choices=("auto", "imagenet", "coco"),
    ),
    Setting(
        name="NUM_GPUS",
        default="auto",
        help="worker processes here; auto: every visible GPU, 1 on a CPU (N: N gloo processes)",
        notebooks=("02",),
        flag="--num-gpus",
    ),
    Setting(
        name="NUM_MACHINES",
        default=1,
        help="several machines: this notebook on each, the same DIST_URL, its own MACHINE_RANK",
        notebooks=("02",),
        flag="--num-machines",
    ),
    Setting(
        name="MACHINE_RANK",
        default=0,
        help="0 .. NUM_MACHINES - 1; machine 0 writes the outputs",
        notebooks=("02",),
        flag="--machine-rank",
    ),
    Setting(
        name="DIST_URL",
        default="auto",
        help='where the workers meet; several machines: "tcp://<machine 0\'s address>:<port>"',
        notebooks=("02",),
        flag="--dist-url",
    ),
    Setting(
        name="IMS_PER_BATCH",
        default=0,
        help="0: the profile's batch (the total over all workers); another scales LR and warmup",
        notebooks=("02",),
        flag="--ims-per-batch",
    ),
    # 03 and 04: the trained model
    Setting(
        name="N_IMAGES",
        default=12,
        help="test images drawn with their predictions",
        notebooks=("03",),
        flag="--n-images",
    ),
    Setting(
        name="SCORE_THRESH",
        default=None,
        help="None: the profile's own (0.4 reference, 0.01 strong, 0.05 smoke)",
        notebooks=("03", "04"),
        flag="--score-thresh",
        kind=float,
    ),
    Setting(
        name="GRAYSCALE",
        default=False,
        help="the original notebook's look: gray background, coloured objects",
        notebooks=("03",),
        flag="--grayscale",
    ),
    Setting(
        name="PREDICT_IMAGES",
        default="",
        help="new images to predict: a folder, an image or a .zip (written to output/predict/)",
        notebooks=("03",),
        flag="--predict-images",
    ),
    Setting(
        name="MAX_PER_IMAGE",
        default=100,
        help="the most instances per image in the submission",
        notebooks=("04",),
        flag="--max-per-image",
    ),
    Setting(
        name="CLASS_THRESHOLDS", default={}, help="e.g. {15: 0.3}: dataset category id -> threshold", notebooks=("04",)
    ),
    Setting(
        name="CHECKPOINT",
        default="best",
        help='"best", "final" or a .pth path',
        notebooks=("03", "04"),
        flag="--checkpoint",
    ),
    Setting(
        name="TTA",
        default=None,
        help="test-time augmentation; None: the profile's setting",
        notebooks=("03", "04"),
        flag="--tta",
        kind="on/off",
    ),
    Setting(
        name="FUSION_IOU",
        default=0.5,
        help="RUN a list: the mask IoU at which the runs' detections are one object (04 sweeps it on validation)",
        notebooks=("03", "04"),
        flag="--fusion-iou",
        kind=float,
    ),
    Setting(
        name="FUSION_WEIGHTS",
        default=None,
        help="RUN a list: one weight per run, in RUN's order, e.g. [2, 1]; None: equal",
        notebooks=("03", "04"),
    ),
    # every notebook: how detectron2 is installed, where the project is, and the package's source on Colab
    Setting(
        name="DETECTRON2_METHOD",
        default="wheel",
        help='"git": build upstream with its C++/CUDA ops (~5 min)',
        notebooks=ALL,
        flag="--method",
        kind=str,
        choices=("wheel", "git"),
    ),
    Setting(
        name="PROJECT_DIR",
        default="",
        help="empty: MyDrive/tinyvoc on Colab, /kaggle/working on Kaggle, else this repo; holds data/ and output/",
        notebooks=ALL,
        flag="--project-dir",
    ),
    Setting(
        name="REPO_URL",
        default="https://github.com/tinyvoc/tinyvoc-detectron2.git",
        help="Colab and Kaggle install the package from here",
        notebooks=ALL,
    ),
    Setting(name="REPO_REF", default="main", help="at this ref: a branch, tag or commit", notebooks=ALL),
)

BY_NAME = {s.name: s for s in SETTINGS}


def default(name: str):
    """The declared default of one setting (a copy: list and dict defaults are never shared)."""
    import copy

    return copy.deepcopy(BY_NAME[name].default)


def declared_in(notebook: str) -> list[Setting]:
    """The settings a notebook's parameters cell declares, in the cell's order."""
    return [s for s in SETTINGS if s.declared_in(notebook)]
