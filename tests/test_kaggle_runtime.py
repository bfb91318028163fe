"""Kaggle for real, simulated: the five notebooks session by session, the series as one batch run, Internet off.

What Kaggle does and this test reproduces:
* every notebook runs in its own session: a new folder standing for the machine (``kaggle/working`` the
  working directory, ``kaggle/input`` the attached inputs, ``tmp`` the scratch disk, ``root`` the home), its
  own Python environment and a fresh kernel; ``KAGGLE_KERNEL_RUN_TYPE`` is set (``Interactive``, ``Batch`` for
  the saved version); ``TINYVOC_KAGGLE_ROOT`` moves ``/kaggle`` into that folder;
* the session's Python has the packages Kaggle's image has (its published list, ``kaggle_image.txt``, taken
  from this venv) and not the others (the tinyvoc package itself, detectron2, fvcore, iopath, yacs,
  hydra-core, black, portalocker): the first cell really installs them;
* the course files are an uploaded dataset, as Kaggle shows it (the json files, ``train_images/train_images/``
  unzipped with the zip's own top folder, ``test_images.zip``), and each session's ``kaggle/working`` is kept
  afterwards only as that notebook's output, attached to the next sessions as inputs ("Your Work"); every
  input is hashed before and after: nothing may be written there (Kaggle mounts them read-only);
* 02 trains with two gloo workers (standing for the two T4s); a "Save Version" session runs
  ``pip install`` then ``tinyvoc run-all --profile smoke`` (no GPU here: ``auto`` would stop); a session with the
  network off installs from an attached ``tinyvoc wheelhouse``, another without one says how to turn Internet on.

What it cannot reproduce (see README): the GPUs and NCCL, the read-only mount itself, the 20 GB limit, the
12-hour cut. Under ``../shared/kaggle/replica.sh`` the session's packages are Kaggle's own versions.
"""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from tinyvoc.core.paths import NOTEBOOKS, notebooks_dir
from tinyvoc.dataset.sample import make_sample_dataset
from tinyvoc.submission.check import validate_submission

from ._processes import run

MAX_ITER = 40  # 02 session by session: as trained_sample, enough for detections above the profile's threshold
TRAIN = {"PROFILE": "smoke", "MAX_ITER": MAX_ITER, "NUM_GPUS": "2"}  # named: without a GPU, "auto" stops on Kaggle
# the batch session checks what only one session running `tinyvoc run-all` can break (the install in its cell, the
# command, the five notebooks in one folder, nothing brought in), not the training again: a few iterations
BATCH_MAX_ITER = 4


def tree_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


class Kaggle:
    """Starts sessions: a fresh folder, venv and kernel each; saved outputs and datasets attached as inputs."""

    def __init__(self, root: Path, image: Path, repo: tuple[str, str], pip_cache: Path):
        self.root = root
        self.image = image  # what Kaggle's image has (conftest's kaggle_like_image)
        self.repo_url, self.repo_ref = repo  # this working tree as a git repository, standing for GitHub
        self.saved = root / "saved"  # datasets and notebook outputs, as Kaggle stores them
        self.saved.mkdir()
        self.executed = root / "executed"
        self.executed.mkdir()
        self.pip_cache = pip_cache  # stands for Kaggle's network, not for a preinstalled package
        self.count = 0
        self.sessions: list[Path] = []
        self.hashes: dict[str, str] = {}

    def save(self, name: str, folder: Path) -> Path:
        """Keep ``folder`` as a dataset or a notebook's output called ``name``; hashed to check it stays unchanged."""
        target = self.saved / name
        shutil.copytree(folder, target, symlinks=True)
        self.hashes[name] = tree_hash(target)
        return target

    def new_session(self, attach: list[str], run_type: str, offline: bool = False) -> tuple[Path, dict]:
        self.count += 1
        session = self.root / f"session-{self.count:02d}"
        for sub in ("kaggle/working", "kaggle/input", "tmp", "root"):
            (session / sub).mkdir(parents=True)
        for name in attach:
            (session / "kaggle" / "input" / name).symlink_to(self.saved / name, target_is_directory=True)
        subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(session / "venv")], check=True)  # noqa: SLF001
        site = next((session / "venv" / "lib").glob("python3*/site-packages"))
        (site / "kaggle_image.pth").write_text(f"{self.image}\n")
        env = {
            "HOME": str(session / "root"),
            "TMPDIR": str(session / "tmp"),
            "KAGGLE_KERNEL_RUN_TYPE": run_type,
            "TINYVOC_KAGGLE_ROOT": str(session / "kaggle"),
            "PIP_CACHE_DIR": str(self.pip_cache),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PATH": f"{session / 'venv' / 'bin'}:{os.environ['PATH']}",
        }
        if offline:  # Internet off: nothing answers, no cache, no local wheels
            env.update({"PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_CONFIG_FILE": os.devnull,
                        "PIP_NO_CACHE_DIR": "1", "PIP_FIND_LINKS": ""})  # fmt: skip
            env.pop("PIP_CACHE_DIR")
        self.sessions.append(session)
        return session, env

    def _kernel(self, session: Path, env: dict) -> str:
        kernel = self.root / "jupyter" / "kernels" / session.name
        kernel.mkdir(parents=True)
        spec = {
            "argv": [str(session / "venv" / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": f"Kaggle session {session.name}",
            "language": "python",
            "env": env,
        }
        (kernel / "kernel.json").write_text(json.dumps(spec))
        return session.name

    def run(
        self, name: str, params: dict, attach: list[str], run_type="Interactive", offline=False, ok=True, save_as=""
    ):
        """Execute notebook ``name`` alone in a new session; save its working folder as output ``save_as``
        (default: ``NN-output``, NN the notebook's number)."""
        session, env = self.new_session(attach, run_type, offline)
        out = self.executed / f"{session.name}-{name}"
        params = {"REPO_URL": self.repo_url, "REPO_REF": self.repo_ref, **params}
        kernel = self._kernel(session, env)
        cmd = [sys.executable, "-m", "papermill", str(notebooks_dir() / name), str(out), "-k", kernel]
        cmd += ["--cwd", str(session / "kaggle" / "working"), "--no-progress-bar", "-y", json.dumps(params)]
        proc_env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
        proc_env["JUPYTER_PATH"] = str(self.root / "jupyter")
        started = time.perf_counter()
        try:
            proc = run(cmd, timeout=900, env=proc_env)
            assert (proc.returncode == 0) == ok, f"{name} in {session.name}:\n{(proc.stdout + proc.stderr)[-4000:]}"
            print(f"{name} in {session.name}: {time.perf_counter() - started:.0f} s")
            self.save(save_as or f"{name[:2]}-output", session / "kaggle" / "working")
            return nbformat.read(out, as_version=4)
        finally:
            self._end(session)

    def batch(self, attach: list[str]) -> tuple[str, Path]:
        """A "Save Version" session running one cell's commands: pip install the package, then ``tinyvoc run-all``."""
        session, env = self.new_session(attach, "Batch")
        python = session / "venv" / "bin" / "python"
        script = (
            f'"{python}" -m pip install -q "git+{self.repo_url}@{self.repo_ref}" && '
            f"tinyvoc run-all --profile smoke --max-iter {BATCH_MAX_ITER}"  # no GPU here: "auto" would stop
        )
        started = time.perf_counter()
        try:
            proc = run(
                ["bash", "-c", script], cwd=session / "kaggle" / "working", timeout=1500,
                env={**{k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "VIRTUAL_ENV"))}, **env},
            )  # fmt: skip
            assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
            print(f"batch run-all in {session.name}: {time.perf_counter() - started:.0f} s")
            return proc.stdout, self.save("batch-output", session / "kaggle" / "working")
        finally:
            self._end(session)

    @staticmethod
    def _end(session: Path) -> None:
        """Kill what the session left running (found by its interpreter) and delete its disk."""
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmdline and cmdline[0].decode(errors="replace").startswith(str(session)):
                os.kill(int(pid), signal.SIGKILL)
        shutil.rmtree(session)


def text_of(book) -> str:
    chunks = []
    for cell in book.cells:
        for out in cell.get("outputs", []):
            chunks.append(out.get("text", "") + "".join(out.get("data", {}).get("text/plain", "")))
            chunks.append(out.get("evalue", ""))
    return "\n".join(chunks)


@pytest.fixture(scope="module")
def kaggle(tmp_path_factory, kaggle_like_image, repo_snapshot, pip_cache):
    kaggle = Kaggle(tmp_path_factory.mktemp("kaggle"), kaggle_like_image[0], repo_snapshot, pip_cache)
    sample = make_sample_dataset(kaggle.root / "made")
    upload = kaggle.root / "upload"  # the course files as Kaggle shows an uploaded dataset
    upload.mkdir()
    for name in ("pascal_train.json", "test.json"):
        shutil.copy(sample / name, upload / name)
    shutil.copytree(sample / "train_images", upload / "train_images" / "train_images")
    shutil.make_archive(str(upload / "test_images"), "zip", sample / "test_images")
    kaggle.save("tinyvoc-course", upload)
    return kaggle


@pytest.fixture(scope="module")
def series(kaggle):
    started = time.perf_counter()
    books = {
        "01": kaggle.run(NOTEBOOKS[1], {}, ["tinyvoc-course"]),
        "02": kaggle.run(NOTEBOOKS[2], TRAIN, ["tinyvoc-course", "01-output"]),
        "03": kaggle.run(NOTEBOOKS[3], {}, ["tinyvoc-course", "01-output", "02-output"]),
        "04": kaggle.run(NOTEBOOKS[4], {}, ["tinyvoc-course", "02-output", "03-output"]),
    }
    print(f"Kaggle sessions: {time.perf_counter() - started:.0f} s")
    return books


def test_session_by_session_ends_with_a_valid_submission(kaggle, series):
    output = kaggle.saved / "04-output" / "output"
    report = validate_submission(output / "submission.json", kaggle.saved / "tinyvoc-course" / "test.json")
    assert report.ok, report.summary()
    assert report.per_image, "no detections at all"


def test_each_session_brings_in_only_what_it_needs_and_says_from_where(kaggle, series):
    assert "brought in dataset record and splits: from input '01-output'" in text_of(series["02"])
    assert "2 CPU (gloo) workers" in text_of(series["02"])
    assert f"brought in run smoke+MAX_ITER={MAX_ITER} (best model): from input '02-output'" in text_of(series["03"])
    assert f"brought in run smoke+MAX_ITER={MAX_ITER} (best model): from input '02-output'" in text_of(series["04"])
    assert "prediction cache file(s) of run smoke+MAX_ITER=" in text_of(series["04"])
    assert "from input '03-output'" in text_of(series["04"])
    assert "Using cached predictions" in text_of(series["04"])  # 03's cache, made in another session
    train = kaggle.saved / "03-output" / "output" / "runs" / f"smoke+MAX_ITER={MAX_ITER}"
    assert sorted(p.name for p in train.iterdir()) == [
        "config.yaml", "metrics.jsonl", "model_best.pth", "recipe.json", "run.json"
    ]  # fmt: skip
    for key in ("01", "02", "03", "04"):
        assert "train_images/train_images (read in place)" in text_of(series[key]), key
        assert "data ready" in text_of(series[key]) and "(Kaggle, Interactive)" in text_of(series[key]), key


def test_inputs_are_unchanged_and_sessions_are_gone(kaggle, series):
    for name, digest in kaggle.hashes.items():
        assert tree_hash(kaggle.saved / name) == digest, f"input {name} was written to"
    assert not any(s.exists() for s in kaggle.sessions)
    for path in (kaggle.saved / "04-output").rglob("*"):  # no record points into a session's disk
        if path.suffix in (".json", ".yaml", ".jsonl") or path.name == "last_checkpoint":
            assert "session-" not in path.read_text(), path


def test_each_session_really_installs_the_package_and_detectron2(kaggle, series):
    for key in ("01", "02", "03", "04"):
        assert "installed detectron2-0.7.2+purepy-py3-none-any.whl with " in text_of(series[key]), key


def test_a_batch_session_runs_the_whole_series_with_run_all(kaggle):
    log, saved = kaggle.batch(["tinyvoc-course"])
    output = saved / "output"
    environment = json.loads((output / "environment.json").read_text())
    assert environment["tinyvoc_ref"] == kaggle.repo_ref  # pip installed the package from REPO_URL at REPO_REF
    assert sorted(p.name for p in (output / "notebooks").iterdir()) == sorted(NOTEBOOKS)
    assert validate_submission(output / "submission.json", kaggle.saved / "tinyvoc-course" / "test.json").ok
    assert any((output / "figures").glob("*.png"))
    assert list((output / "runs").glob("*/model_best.pth")) or list((output / "runs").glob("*/model_final.pth"))
    assert "brought in" not in log  # one session: nothing to bring in


def test_internet_off_says_how_and_installs_from_an_attached_wheelhouse(kaggle, offline_wheelhouse):
    unreachable = {"REPO_URL": "https://github.invalid/x.git"}
    book = kaggle.run(NOTEBOOKS[0], unreachable, [], offline=True, ok=False, save_as="offline-00")
    assert "Internet" in text_of(book) and "tinyvoc wheelhouse" in text_of(book)
    kaggle.save("tinyvoc-wheelhouse", offline_wheelhouse[0])  # `tinyvoc wheelhouse` for this Python (conftest)
    book = kaggle.run(
        NOTEBOOKS[1], unreachable, ["tinyvoc-wheelhouse", "tinyvoc-course"], offline=True, save_as="offline-01"
    )
    assert "data ready" in text_of(book)  # the package and detectron2 came from the wheelhouse: nothing else answers
    assert (kaggle.saved / "offline-01" / "output" / "dataset.json").is_file()
