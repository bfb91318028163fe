"""The steps around :func:`train.train` that need no training: 02's Kaggle bring-in in its own cell, the run name it
brings in (``runs.wanted``), and the one refusal of a folder holding a run with another config."""

import re

import nbformat
import pytest

from tinyvoc.core.errors import TinyVocError
from tinyvoc.core.paths import NOTEBOOKS, Outputs, notebooks_dir
from tinyvoc.training import runs
from tinyvoc.training import train as training
from tinyvoc.training.budget import Plan


def test_02_brings_in_what_it_trains_from_before_it_trains():
    """train() reads only the project: on Kaggle, 02's training cell copies 01's record and the run to resume first."""
    cells = [c.source for c in nbformat.read(notebooks_dir() / NOTEBOOKS[2], as_version=4).cells]
    cell = next(c for c in cells if "= train_recipe(" in c)
    bring_in = cell.find("kaggle.bring_in_for_training(outputs, RESUME, runs.wanted(RUN, recipe))")
    assert 0 <= bring_in < cell.find("= train_recipe("), cell
    assert "runs.Recipe.given(PROFILE, OPTS, MAX_ITER, IMS_PER_BATCH, TIME_BUDGET_H, PRETRAINED, WEIGHTS)" in cell
    assert "train_recipe(outputs, recipe, RUN, RESUME" in cell  # the recipe that names the run is the one trained
    assert "bring_in_for_training(" not in (notebooks_dir() / "tinyvoc" / "training" / "train.py").read_text()


def test_wanted_is_the_name_auto_gives_the_recipe_else_run_itself():
    recipe = runs.Recipe.given("smoke", ["SOLVER.BASE_LR", "0.01"], 5, 0, None, True)
    assert (recipe.max_iter, recipe.ims_per_batch, recipe.opts) == (5, None, ("SOLVER.BASE_LR", "0.01"))
    assert runs.wanted("auto", recipe) == runs.wanted(" Auto ", recipe) == "smoke+BASE_LR=0.01+MAX_ITER=5"
    assert runs.wanted("", recipe) == recipe.auto_name()
    assert runs.wanted("mine", recipe) == "mine"
    assert runs.Recipe.given("auto").profile == "smoke"  # no GPU here: as train() resolves it


def _plan(hours: float) -> Plan:
    return Plan(hours, 1.0, 10, 2, (), 5, 5, 60.0)


@pytest.mark.parametrize(
    ("saved", "budget_h", "says"),
    [
        (_plan(3), 5, r"\(planned for 3 h; .*config.yaml\)\. Set TIME_BUDGET_H to its budget to continue it, RESUME="),
        (None, 5, r"\(not planned for this budget; .*config.yaml\)\. Set TIME_BUDGET_H to its budget"),
        (_plan(3), 3, r"\(/\S*config.yaml\)\. Set RESUME=False to start that run over"),  # the budget is not it
        (None, None, r"\(/\S*config.yaml\)\. Set RESUME=False to start that run over"),
    ],
)
def test_a_run_with_another_config_is_refused_in_one_message(tmp_path, saved, budget_h, says):
    files = Outputs.at(tmp_path / "output", tmp_path / "data").run("mine")
    files.dir.mkdir(parents=True)
    if saved:
        saved.save(files.plan)
    error = training._different_config(files, budget_h)
    assert isinstance(error, TinyVocError)
    assert re.search(f"{re.escape(str(files.dir))} holds a run with a different config {says}", str(error))
    assert str(error).endswith("(its checkpoints will be replaced), or choose another RUN.")
