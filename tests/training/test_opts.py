"""Any config key from the notebook (``OPTS``) or the command line (``--opts``), and a user's own YAML file:
checked before anything runs, shown as a diff against the profile, saved in the run's ``config.yaml``; other
opts are another run (``RUN = "auto"``), and a run name holding other opts is refused."""

import shutil

import pytest
import yaml

from tinyvoc import cli
from tinyvoc.core.errors import TinyVocError
from tinyvoc.core.paths import DataFiles, Outputs
from tinyvoc.dataset.record import DatasetRecord, prepare_dataset
from tinyvoc.dataset.sample import make_sample_dataset
from tinyvoc.training import train as training
from tinyvoc.training.config import apply_opts, config_changes, train_config
from tinyvoc.training.profiles import PROFILES, load_recipe

QUICK = ["TEST.EVAL_PERIOD", 0, "DATASETS.TEST", "()"]  # no validation: 4 iterations show the config saved


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A project folder as the command line sees it: the sample in data/, registered into output/."""
    root = tmp_path_factory.mktemp("project")
    shutil.copytree(make_sample_dataset(tmp_path_factory.mktemp("sample")), root / "data")
    outputs = Outputs.at(root / "output")
    prepare_dataset(DataFiles.in_folder(root / "data"), outputs, "sample", val_fraction=0.2, seed=0)
    return root, outputs


def saved_config(files) -> dict:
    return yaml.safe_load(files.config.read_text())


@pytest.mark.parametrize(
    "opts, message",
    [
        (["SOLVER.BASE_LRR", "0.01"], r"unknown config key 'SOLVER.BASE_LRR' in OPTS; did you mean SOLVER.BASE_LR\?"),
        (["SOLVER.NO_SUCH_THING", "1"], r"unknown config key 'SOLVER.NO_SUCH_THING' in OPTS \(detectron2's keys"),
        (["SOLVER.BASE_LR", "fast"], r"OPTS: SOLVER.BASE_LR takes a number with a decimal point .* not 'fast'"),
        (["SOLVER.MAX_ITER", "1.5"], r"OPTS: SOLVER.MAX_ITER takes a whole number \(now 300\), not '1.5'"),
        (["INPUT.MIN_SIZE_TRAIN", "512"], r"INPUT.MIN_SIZE_TRAIN takes a tuple, e.g. \(512, 640\) .* not '512'"),
        (["SOLVER", "1"], "SOLVER is a group of keys, not one"),
        (["SOLVER.BASE_LR", "0.01", "SOLVER.MAX_ITER"], "OPTS takes KEY VALUE pairs.* the last, 'SOLVER.MAX_ITER', "
         "has no value"),
    ],
)  # fmt: skip
def test_bad_opts_stop_naming_the_key_and_what_it_takes(opts, message):
    with pytest.raises(TinyVocError, match=message):
        apply_opts(load_recipe("smoke"), opts)


def test_opts_in_detectron2s_text_form_or_as_python_values_set_the_keys_and_the_diff_shows_them():
    cfg = load_recipe("strong")
    profile = cfg.clone()
    apply_opts(cfg, ["SOLVER.BASE_LR", "0.01", "INPUT.MIN_SIZE_TRAIN", "(512, 640)", "SOLVER.MAX_ITER", 5000])
    assert (cfg.SOLVER.BASE_LR, cfg.INPUT.MIN_SIZE_TRAIN, cfg.SOLVER.MAX_ITER) == (0.01, (512, 640), 5000)
    assert sorted(config_changes(profile, cfg)) == [
        "INPUT.MIN_SIZE_TRAIN: (480, 512, 544, 576, 608, 640, 672, 704, 736, 768, 800) -> (512, 640)",
        "SOLVER.BASE_LR: 0.005 -> 0.01",
        "SOLVER.MAX_ITER: 30000 -> 5000",
    ]
    assert config_changes(profile, profile.clone()) == []


def test_the_training_config_prints_what_differs_from_the_profile(project, capsys):
    _, outputs = project
    record = DatasetRecord.load(outputs)
    train_config(outputs, "smoke", 120, ["SOLVER.BASE_LR", "0.01"], record=record, ims_per_batch=2)
    printed = capsys.readouterr().out
    lines = printed[printed.index("differs from profile smoke in:") :].splitlines()[1:]
    assert sorted(line.strip() for line in lines) == [
        "SOLVER.BASE_LR: 0.02 -> 0.01",  # the batch's linear scaling gave 0.01 first; OPTS wins
        "SOLVER.IMS_PER_BATCH: 4 -> 2",
        "SOLVER.MAX_ITER: 300 -> 120",
        "SOLVER.STEPS: (240,) -> ()",
        "SOLVER.WARMUP_ITERS: 50 -> 100",
    ]
    train_config(outputs, "smoke", record=record)
    assert "differs" not in capsys.readouterr().out  # the profile as it is: nothing to show


@pytest.mark.parametrize("profile", ["reference", "strong"])
def test_a_users_file_on_a_gpu_profile_reaches_the_saved_config(project, tmp_path, profile):
    """The X-101 profiles do not train on a CPU here; their config is what config.yaml would hold."""
    from tinyvoc.training.config import config_signature

    _, outputs = project
    mine = tmp_path / "my_recipe.yaml"
    mine.write_text(f"_BASE_: {profile}.yaml\nMODEL:\n  ROI_HEADS:\n    BATCH_SIZE_PER_IMAGE: 96\n")
    record = DatasetRecord.load(outputs)  # pretrained=False: no download of the ImageNet weights here
    _, cfg = train_config(
        outputs, str(mine), overrides=["SOLVER.BASE_LR", "0.0007"], record=record, allow_cpu=True, pretrained=False
    )
    saved = yaml.safe_load(config_signature(cfg))
    assert saved["MODEL"]["ROI_HEADS"]["BATCH_SIZE_PER_IMAGE"] == 96 and saved["SOLVER"]["BASE_LR"] == 0.0007
    assert saved["SOLVER"]["MAX_ITER"] == load_recipe(profile).SOLVER.MAX_ITER  # the rest is the profile's


def test_a_users_smoke_file_and_opts_train_and_reach_config_yaml_and_other_opts_are_a_different_run(project, tmp_path):
    """Notebook 02's cell: ``train(outputs, PROFILE, ..., overrides=OPTS)`` with PROFILE a file on "Drive"."""
    _, outputs = project
    mine = tmp_path / "MyDrive" / "tinyvoc" / "my_recipe.yaml"
    mine.parent.mkdir(parents=True)
    mine.write_text(
        "_BASE_: smoke.yaml\nSOLVER:\n  BASE_LR: 0.015\nMODEL:\n  ROI_HEADS:\n    BATCH_SIZE_PER_IMAGE: 32\n"
    )
    opts = ["SOLVER.WARMUP_ITERS", "10", *QUICK]
    run = training.train(outputs, str(mine), max_iter=4, overrides=opts)
    assert run.finished and run.iteration == 4 and run.profile == str(mine)
    saved = saved_config(outputs.run(run.name))
    assert run.name == "my_recipe+WARMUP_ITERS=10+EVAL_PERIOD=0+TEST=_+MAX_ITER=4"  # named after the recipe
    assert saved["SOLVER"]["BASE_LR"] == 0.015 and saved["MODEL"]["ROI_HEADS"]["BATCH_SIZE_PER_IMAGE"] == 32
    assert saved["SOLVER"]["WARMUP_ITERS"] == 10 and saved["TEST"]["EVAL_PERIOD"] == 0
    assert saved["MODEL"]["RESNETS"]["DEPTH"] == 18  # smoke's, under the user's file
    before = {p.name: p.read_bytes() for p in outputs.run(run.name).dir.iterdir() if p.is_file()}
    other = training.train(outputs, str(mine), max_iter=4, overrides=["SOLVER.WARMUP_ITERS", "5", *QUICK])
    assert other.name == "my_recipe+WARMUP_ITERS=5+EVAL_PERIOD=0+TEST=_+MAX_ITER=4" and other.finished
    assert saved_config(outputs.run(other.name))["SOLVER"]["WARMUP_ITERS"] == 5
    assert {p.name: p.read_bytes() for p in outputs.run(run.name).dir.iterdir() if p.is_file()} == before


# --- the command line ---


def _args(*argv):
    return cli._parameters(cli.build_parser().parse_args(list(argv)))


def test_opts_on_the_command_line_reach_the_notebook_parameters():
    opts = ["SOLVER.BASE_LR", "0.01", "INPUT.MIN_SIZE_TRAIN", "(512, 640)"]
    assert _args("train", "--opts", *opts, "--max-iter", "5") == {"OPTS": opts, "MAX_ITER": 5}
    assert _args("run-all", "--profile", "smoke", "--opts", *opts)["OPTS"] == opts  # run-all passes them to 02
    assert _args("train") == {}  # nothing given: every notebook keeps its own defaults


@pytest.mark.parametrize(
    "opts, message",
    [
        (["SOLVER.BASE_LRR", "0.01"], "unknown config key 'SOLVER.BASE_LRR' in OPTS; did you mean SOLVER.BASE_LR?"),
        (["SOLVER.MAX_ITER", "many"], "OPTS: SOLVER.MAX_ITER takes a whole number (now 300), not 'many'"),
        (["SOLVER.MAX_ITER"], "OPTS takes KEY VALUE pairs"),
    ],
)
@pytest.mark.parametrize("verb", ["train", "run-all"])
def test_bad_opts_stop_the_command_with_exit_1_before_any_notebook_runs(verb, opts, message, tmp_path, capsys):
    assert cli.main([verb, "--project-dir", str(tmp_path), "--profile", "smoke", "--opts", *opts]) == 1
    out, err = capsys.readouterr()
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "output").exists()  # stopped before papermill wrote the executed copies


def test_other_opts_under_a_taken_run_name_exit_1_through_the_notebook_and_no_resume_replaces_that_run(project, capsys):
    """``tinyvoc train`` runs notebook 02 (papermill): the same checks and files as in the notebook."""
    root, outputs = project
    training.train(outputs, "smoke", max_iter=4, resume=False, overrides=QUICK, run="mine")
    common = ["train", "--project-dir", str(root), "--profile", "smoke", "--max-iter", "4", "--run", "mine"]
    assert cli.main([*common, "--opts", "SOLVER.BASE_LR", "0.01", *map(str, QUICK)]) == 1
    err = capsys.readouterr().err
    assert "run mine (" in err and "holds another recipe" in err and "RESUME = False" in err
    assert cli.main([*common, "--no-resume", "--opts", "SOLVER.BASE_LR", "0.01", *map(str, QUICK)]) == 0
    assert saved_config(outputs.run("mine"))["SOLVER"]["BASE_LR"] == 0.01
    executed = (outputs.executed_notebooks / "02_train.ipynb").read_text()
    assert "SOLVER.BASE_LR: 0.02 -> 0.01" in executed  # the cell showed what this run changed


@pytest.mark.parametrize("profile", PROFILES)
def test_every_built_in_profile_takes_opts(profile):
    cfg = load_recipe(profile)
    apply_opts(cfg, ["MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "32"])
    assert cfg.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE == 32
