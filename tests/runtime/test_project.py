"""Colab without surprises, the runtime side: one project folder, no silent fallbacks, one first cell.

Each "stops" test checks the message and that nothing was written. Colab is stood in for by the
test double in ``tests/colab_double`` (``google.colab`` importable, ``drive.mount`` exposing a
temporary folder) and ``TINYVOC_DRIVE_MOUNT`` pointing the mount point into ``tmp_path``.
"""

import re

import nbformat
import pytest

from tinyvoc.cli import main as cli
from tinyvoc.core.errors import TinyVocError
from tinyvoc.core.paths import NOTEBOOKS, Outputs, checkout, notebooks_dir
from tinyvoc.runtime import colab, kaggle, project


def files_under(path):
    return sorted(path.rglob("*")) if path.exists() else []


# --- no silent fallbacks -------------------------------------------------------------------------


def test_not_colab_without_the_package():
    assert not colab.on_colab()


def test_project_on_unmounted_drive_stops_off_colab(drive):
    mount, _ = drive
    with pytest.raises(TinyVocError, match=r"is on Google Drive .* but Drive is not mounted\. Nothing was written"):
        project.start(str(mount / "MyDrive" / "tinyvoc"), install=False)
    assert not mount.exists()


def test_output_folder_on_unmounted_drive_stops_in_the_cli_and_outputs_write_nothing(drive, capsys):
    mount, _ = drive
    outputs = Outputs.at(mount / "MyDrive" / "out" / "output")  # a layout of paths: no folder, no Drive check
    assert outputs.run("smoke").dir == mount / "MyDrive" / "out" / "output" / "runs" / "smoke" and not mount.exists()
    assert cli(["export", "--project-dir", str(mount / "MyDrive" / "out")]) == 1
    assert re.search(r"PROJECT_DIR .* is on Google Drive .* but Drive is not mounted", capsys.readouterr().err)
    assert not mount.exists()


def test_drive_that_does_not_mount_stops_on_colab(drive, on_colab):
    mount, _ = drive  # no TINYVOC_FAKE_DRIVE: the double refuses, as Colab does when access is not allowed
    with pytest.raises(ValueError, match="mount failed"):
        project.start("", install=False)
    assert not mount.exists()


def test_relative_project_dir_stops(drive, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TinyVocError, match="PROJECT_DIR 'tinyvoc' is a relative path"):
        project.start("tinyvoc", install=False)
    assert not (tmp_path / "tinyvoc").exists()


def test_colab_default_project_is_on_drive_and_mounts_it(drive, on_colab, monkeypatch):
    mount, fake = drive
    monkeypatch.setenv("TINYVOC_FAKE_DRIVE", str(fake))
    proj = project.start("", install=False)
    assert proj.root == mount / "MyDrive" / "tinyvoc" and proj.on_colab and colab.drive_mounted()
    assert proj.data_dir == mount.parent / "tinyvoc-data"  # the runtime's local disk, not Drive


# --- the notebooks -------------------------------------------------------------------------------


def notebook(name):
    return nbformat.read(notebooks_dir() / name, as_version=4)


def test_every_notebook_starts_with_the_same_setup_cell_and_repo():
    for name in NOTEBOOKS:
        cells = [c for c in notebook(name).cells if c.cell_type == "code"]
        assert "parameters" in cells[0].metadata.get("tags", []), name
        params = cells[0].source
        assert f'REPO_URL = "{project.REPO_URL}"' in params and f'REPO_REF = "{project.REPO_REF}"' in params, name
        assert 'PROJECT_DIR = ""' in params and "OUTPUT_DIR" not in params and "DATA_DIR" not in params, name
        method = 'DETECTRON2_METHOD = "wheel"  # "git": build upstream with its C++/CUDA ops (~5 min)\nPROJECT_DIR = ""'
        assert method in params, f"{name}: DETECTRON2_METHOD, just before PROJECT_DIR, as in notebook 00"
        assert cells[1].source == project.FIRST_CELL, f"{name}: first cell differs from runtime.project.FIRST_CELL"
        assert cells[2].source == project.START_CELL, f"{name}: second cell differs from runtime.project.START_CELL"
        assert not any("noqa" in c.source or "TINYVOC_" in c.source for c in cells), f"{name}: noqa or a test hook"
    code = [line for line in project.FIRST_CELL.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert len(code) <= 5, code  # install: from git, or an attached wheelhouse
    assert "start(PROJECT_DIR, REPO_REF, DETECTRON2_METHOD)" in project.START_CELL


def _names(cell_source: str) -> tuple[set[str], set[str], set[str]]:
    """A code cell's names: read anywhere, bound anywhere, and bound by its top-level statements (for sure:
    a name bound only inside an ``if``, ``for``, ``with`` or ``try`` may be unset when the cell has run)."""
    import ast

    tree = ast.parse("\n".join("pass" if line.lstrip().startswith(("%", "!")) else line
                               for line in cell_source.splitlines()))  # fmt: skip
    read = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    bound = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    bound |= {(a.asname or a.name).split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)
              for a in n.names}  # fmt: skip
    surely = set()
    for statement in tree.body:
        if isinstance(statement, ast.Import | ast.ImportFrom):
            surely |= {(a.asname or a.name).split(".")[0] for a in statement.names}
        elif isinstance(statement, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            surely |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return read, bound, surely


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_cell_runs_after_the_cells_above_whatever_branch_they_took(name):
    """A name a cell reads is set for sure by a cell above (or by the cell itself): never only inside an ``if``
    that another runtime, another dataset (no validation split) or a headless run skips."""
    import builtins

    known = set(dir(builtins)) | {"display", "get_ipython"}  # IPython's, in every kernel
    unset = []
    for cell in notebook(name).cells:
        if cell.cell_type != "code":
            continue
        read, bound, surely = _names(cell.source)
        unset += [f"{n!r} in: {cell.source.splitlines()[0][:60]}" for n in sorted(read - known - bound)]
        known |= surely
    assert not unset, f"{name} reads names set only on some branch of an earlier cell: {unset}"


def test_each_notebooks_comment_names_that_notebooks_default():
    """``RUN`` means this recipe's run in 02 and the run to show or export in 03 and 04: each parameters cell's
    comment says its own default, and no other notebook's."""
    from tinyvoc.core.settings import SETTINGS

    for setting in (s for s in SETTINGS if s.elsewhere):
        defaults = {setting.default_in(n) for n in NOTEBOOKS if setting.declared_in(n)}
        for name in (n for n in NOTEBOOKS if setting.declared_in(n)):
            own, text = setting.default_in(name), setting.help_in(name)
            assert f'"{own}"' in text and not any(f'"{d}"' in text for d in defaults - {own}), (setting.name, name)


def test_the_first_cell_installs_from_an_attached_wheelhouse_else_from_git(tmp_path, monkeypatch):
    """What the first cell hands to pip, as IPython expands its %pip line: Kaggle's inputs are ../input from
    /kaggle/working, the wheelhouse may sit one folder down, and without one the source is REPO_URL at REPO_REF."""
    from IPython.core.interactiveshell import InteractiveShell

    lines = project.FIRST_CELL.splitlines()
    search, install = lines[-2].strip(), lines[-1].strip()  # names apart from the cell's: IPython sees our locals too
    shell = InteractiveShell.instance()
    (tmp_path / "kaggle" / "working").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "kaggle" / "working")
    namespace = {"glob": __import__("glob").glob, "REPO_URL": "https://x.invalid/r.git", "REPO_REF": "v1"}

    def expanded():
        exec(search, namespace)
        shell.user_ns.update(namespace)
        return shell.var_expand(install.removeprefix("%pip "))

    assert expanded().startswith("install -q git+https://x.invalid/r.git@v1 || echo")
    house = tmp_path / "kaggle" / "input" / "my-wheels" / "tinyvoc-wheelhouse"
    house.mkdir(parents=True)
    (house / "wheelhouse.json").write_text("{}")
    offline = "install -q --no-index -f ../input/my-wheels/tinyvoc-wheelhouse/ tinyvoc detectron2 ||"
    assert expanded().startswith(offline)
    assert expanded().endswith(f'echo "{project.NO_NETWORK}"') and "Internet" in project.NO_NETWORK


def test_readme_badges_point_to_the_same_repo():
    owner_repo = re.fullmatch(r"https://github.com/(.+)\.git", project.REPO_URL).group(1)
    readme = (checkout() / "README.md").read_text()
    badges = re.findall(r"colab.research.google.com/github/([^/]+/[^/]+)/blob/([^/]+)/", readme)
    assert len(badges) == 5 and set(badges) == {(owner_repo, project.REPO_REF)}


def test_only_the_notebooks_that_use_it_ask_for_a_gpu():
    asks = {name: notebook(name).metadata.get("accelerator") == "GPU" for name in NOTEBOOKS}
    assert asks == {n: n[:2] in ("02", "03", "04") for n in NOTEBOOKS}


# --- every setting declared once (core/settings.py) ----------------------------------------------


def test_every_notebooks_parameters_cell_declares_the_settings_of_the_declaration():
    """The same names, defaults and comments (the help) as ``core/settings.py``: papermill reads them so."""
    import ast

    from tinyvoc.core.settings import declared_in
    from tinyvoc.runner import inspect_parameters

    for name in NOTEBOOKS:
        found = inspect_parameters(notebooks_dir() / name)
        declared = {s.name: s for s in declared_in(name)}
        missing = set(declared) - set(found)
        assert not missing and set(found) <= set(declared), (name, missing, set(found) - set(declared))
        for key, parameter in found.items():
            setting = declared[key]
            assert ast.literal_eval(parameter["default"]) == setting.default_in(name), (name, key)
            assert parameter["help"] == setting.help_in(name), (name, key)


def test_every_cli_flag_is_made_from_the_declaration_of_its_notebooks_settings():
    """``tinyvoc train`` takes the flags of 02's settings (with 02's help), ``run-all`` every flag."""
    import argparse

    from tinyvoc.cli import NOTEBOOK_VERBS, build_parser
    from tinyvoc.core.settings import SETTINGS, declared_in

    verbs = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    for verb, (notebook, _) in NOTEBOOK_VERBS.items():
        flags = {a.option_strings[0]: a for a in verbs[verb]._actions if a.option_strings[0] not in ("-h", "-p")}
        assert set(flags) == {s.flag for s in declared_in(notebook) if s.flag}, verb
        for setting in declared_in(notebook):
            if setting.flag:
                assert (flags[setting.flag].dest, flags[setting.flag].help) == (setting.name, setting.help_in(notebook))
    every = {a.option_strings[0] for a in verbs["run-all"]._actions} - {"-h", "-p"}
    assert every == {s.flag for s in SETTINGS if s.flag}
    assert len({s.flag for s in SETTINGS if s.flag}) == len([s for s in SETTINGS if s.flag])  # one flag, one setting


def test_the_flags_set_the_notebook_parameters_they_name():
    from tinyvoc.cli import _parameters, build_parser

    def given(*argv):
        return _parameters(build_parser().parse_args(list(argv)))

    assert given("train", "--no-resume", "--random-init", "--ims-per-batch", "8", "--num-gpus", "2") == {
        "RESUME": False, "PRETRAINED": False, "IMS_PER_BATCH": 8, "NUM_GPUS": "2"
    }  # fmt: skip
    assert given("visualize", "--tta", "off", "--grayscale", "--score-thresh", "0.3") == {
        "TTA": False, "GRAYSCALE": True, "SCORE_THRESH": 0.3
    }  # fmt: skip
    assert given("register", "--no-download", "-p", "N_SHOW", "4") == {"DOWNLOAD_DATA": False, "N_SHOW": "4"}
    assert cli(["export", "--max-iter", "5"]) == 2  # 04 has no MAX_ITER: argparse says so, exit 2


def test_the_functions_the_cells_call_default_to_the_declaration():
    """A cell passes its parameters on; called without them, the functions behave as the notebook's defaults."""
    import inspect

    from tinyvoc.core.settings import BY_NAME, default
    from tinyvoc.dataset.record import prepare_dataset
    from tinyvoc.dataset.sources import dataset_files, dataset_source
    from tinyvoc.inference import ensemble
    from tinyvoc.inference.trained_run import TrainedRun
    from tinyvoc.training.train import train, train_recipe

    held = {
        train: {"profile": "PROFILE", "max_iter": "MAX_ITER", "resume": "RESUME", "overrides": "OPTS",
                "time_budget_h": "TIME_BUDGET_H", "pretrained": "PRETRAINED", "num_gpus": "NUM_GPUS",
                "num_machines": "NUM_MACHINES", "machine_rank": "MACHINE_RANK", "dist_url": "DIST_URL",
                "ims_per_batch": "IMS_PER_BATCH", "run": "RUN", "weights": "WEIGHTS"},
        train_recipe: {"run": "RUN", "resume": "RESUME", "num_gpus": "NUM_GPUS", "num_machines": "NUM_MACHINES",
                       "machine_rank": "MACHINE_RANK", "dist_url": "DIST_URL"},
        prepare_dataset: {"val_fraction": "VAL_FRACTION", "seed": "SEED"},
        dataset_files: {"dataset": "DATASET", "download": "DOWNLOAD_DATA"},
        dataset_source: {"dataset": "DATASET", "download": "DOWNLOAD_DATA", "test_images": "TEST_IMAGES",
                         "crowd_as_objects": "CROWD_AS_OBJECTS", "keep_empty_images": "KEEP_EMPTY_IMAGES"},
        TrainedRun.load: {"checkpoint": "CHECKPOINT", "run": ("RUN", "03")},  # 03 and 04 take "best"
        ensemble.load: {"checkpoint": "CHECKPOINT", "run": ("RUN", "03"), "iou_threshold": "FUSION_IOU",
                        "weights": "FUSION_WEIGHTS"},
        kaggle.bring_in_trained_run: {"checkpoint": "CHECKPOINT", "run": ("RUN", "03")},
        project.start: {"project_dir": "PROJECT_DIR"},
    }  # fmt: skip
    for function, arguments in held.items():
        signature = inspect.signature(function).parameters
        for argument, setting in arguments.items():
            value = signature[argument].default
            setting, notebook = setting if isinstance(setting, tuple) else (setting, None)
            declared = BY_NAME[setting].default_in(notebook) if notebook else default(setting)
            assert (list(value) if isinstance(value, tuple) else value) == declared, (function, argument)


def test_the_repository_is_declared_where_the_first_cell_reads_it():
    from tinyvoc.core.settings import default

    assert (default("REPO_URL"), default("REPO_REF")) == (project.REPO_URL, project.REPO_REF)
