"""The README's and the docs' pictures, regenerated from the main job's model: ``make pictures``.

``make pictures`` runs the main job (``make submission``: the five notebooks, smoke profile, the sample),
trains a second recipe beside it (``SOLVER.BASE_LR 0.01``) so the runs table has two rows to compare,
then runs this script, which copies what the notebooks saved in ``output/figures/`` into
``notebooks/images/`` and draws two more pictures the notebooks only show inline: the runs table and
the threshold view at the main job's run and threshold (its picture and its summary line, rendered by
the same ``visualize.render`` as every figure). So every picture shows the product as a user meets it,
from the model ``make submission`` trains, and none comes from a test's half-trained model.
"""

from __future__ import annotations

import io
import re
import shutil
import sys
from pathlib import Path

from tinyvoc.core.paths import Outputs
from tinyvoc.inference import cached_predictions, evaluate
from tinyvoc.inference.trained_run import TrainedRun
from tinyvoc.training import runs
from tinyvoc.visualize import inspector

REPO = Path(__file__).resolve().parents[1]
IMAGES = REPO / "notebooks" / "images"
FIGURES = ("test_predictions", "val_gt_vs_pred", "training_curves", "dataset_statistics", "threshold_sweep",
           "runs_ap50")  # fmt: skip
MAIN_RUN = "smoke"  # the run `make submission` trains (RUN = "auto" names it after its profile)


def text_picture(text: str, path: Path) -> Path:
    """A plain-text table as a PNG, in a monospaced font, as a notebook cell prints it."""
    import matplotlib.pyplot as plt

    lines = text.splitlines()
    fig = plt.figure(figsize=(0.075 * max(map(len, lines)), 0.22 * len(lines) + 0.2))
    fig.text(0.005, 0.5, text, family="monospace", fontsize=9, va="center")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def threshold_view_picture(outputs: Outputs, path: Path) -> Path:
    """The view as notebook 04 opens it on the main job's run: its summary line above its picture."""
    from PIL import Image, ImageDraw

    run = TrainedRun.load(outputs, "best", run=MAIN_RUN)
    test = cached_predictions.predict_split(run, "test")
    val = cached_predictions.predict_split(run, "val")
    view = inspector.ThresholdView(test, run.record.class_map, run.selection(), evaluate.Matching(val))
    summary = re.sub(r"<table>.*", "", view.summary.value).replace("<br>", "\n")
    summary = re.sub(r"<[^>]+>", "", summary)
    picture = Image.open(io.BytesIO(view.picture.value)).convert("RGB")
    summary = summary.strip()
    left, top, right, bottom = ImageDraw.Draw(picture).multiline_textbbox((0, 0), summary)
    above = bottom - top + 8  # the summary's lines, whole: the canvas is as wide as the longest
    canvas = Image.new("RGB", (max(picture.width, right - left + 8), picture.height + above), "white")
    canvas.paste(picture, (0, above))
    ImageDraw.Draw(canvas).multiline_text((4 - left, 4 - top), summary, fill="black")
    canvas.save(path, format="JPEG", quality=90)
    return path


def main(project: Path = REPO) -> int:
    outputs = Outputs.at(project / "output")
    if not outputs.run(MAIN_RUN).final.exists():
        print(f"No finished main-job run in {outputs.run(MAIN_RUN).dir}: run `make submission` first "
              "(`make pictures` does).", file=sys.stderr)  # fmt: skip
        return 1
    for name in FIGURES:
        shutil.copyfile(outputs.figures_dir / f"{name}.png", IMAGES / f"{name}.png")
    text_picture(repr(runs.table(outputs)), IMAGES / "runs_table.png")
    threshold_view_picture(outputs, IMAGES / "threshold_view.jpg")
    print(f"pictures written to {IMAGES}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
