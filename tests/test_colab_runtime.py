"""Colab for real, simulated: the five notebooks, each in its own fresh runtime, sharing only a "Drive".

What Colab does and this test reproduces:
* every notebook runs in a new runtime: an empty folder standing for the VM's disk (``content/`` is
  the working directory, ``root/`` the home), its own Python environment and a fresh kernel; the
  folder is deleted when the notebook ends, so nothing can be read from an earlier runtime's disk;
* the runtime's Python has Colab's preinstalled packages (torch, torchvision, numpy, opencv,
  pycocotools, ipykernel, ...) but not the ones Colab lacks (the tinyvoc package itself, detectron2,
  fvcore, iopath, yacs, hydra-core, black, papermill): the first cell really installs them, from PyPI and
  the repository, in every runtime;
* ``google.colab`` is importable (a test double whose ``drive.mount`` exposes a temporary folder
  standing for Google Drive at the mount point), and the data is only on that "Drive";
* the notebook is opened alone and its first cell pip-installs the helper package from
  ``REPO_URL``/``REPO_REF`` (here a local git repository made from this working tree), as on Colab;
* notebook 02 is interrupted mid-training (the kernel killed, as a disconnect does) and a new runtime
  resumes it from the checkpoint on "Drive"; in that runtime Drive drops while ``model_final.pth`` is
  written (the double's ``TINYVOC_FAKE_DRIVE_DROP_AT``: ENOTCONN until a forced remount) and the run
  remounts it, writes the file whole and finishes.

What it cannot reproduce (see README): a GPU, the real Drive (FUSE, latency) and Colab's authorisation
prompt. The runtime's preinstalled packages are the running interpreter's, linked in: this project's
venv under ``make test``, Colab's own versions (Python 3.13, torch 2.11, ...) under
``../shared/colab/replica.sh``.
"""

import json
import os
import re
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
from tinyvoc.training import runs

from ._processes import start, stop_tree
from .conftest import write_own_export

DOUBLE = Path(__file__).parent / "colab_double"
# what Colab's image lacks among this project's requirements (its pip freeze has everything else we use)
COLAB_LACKS = {"tinyvoc", "detectron2", "fvcore", "iopath", "yacs", "hydra-core", "black", "portalocker", "papermill"}
# 02's run: a checkpoint every 20 iterations (the smoke profile's is 100), interrupted after the first, resumed to 40.
# 40 iterations: as trained_sample, enough for detections above the profile's test threshold in 03 and 04.
MAX_ITER, CHECKPOINT = 40, 20
# PROFILE named: this simulated Colab has no GPU, where "auto" stops (tests/training/test_profiles.py).
TRAIN = {"PROFILE": "smoke", "MAX_ITER": MAX_ITER, "OPTS": ["SOLVER.CHECKPOINT_PERIOD", str(CHECKPOINT)]}
RUN = runs.Recipe("smoke", tuple(TRAIN["OPTS"]), MAX_ITER).auto_name()  # the run RUN = "auto" trains into


def _norm(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def colab_image(target: Path) -> Path:
    """A folder of links to this venv's installed packages, less the ones Colab lacks: the preinstalled image."""
    import importlib.metadata as md

    site = Path(md.distribution("torch")._path).parent  # noqa: SLF001 - the venv's site-packages
    target.mkdir(parents=True)
    for dist in md.distributions():
        if Path(dist._path).parent != site or _norm(dist.metadata["Name"]) in COLAB_LACKS:  # noqa: SLF001
            continue
        tops = {Path(dist._path).name}  # noqa: SLF001
        for file in dist.files or []:
            first = file.parts[0]
            if first != ".." and first != "__pycache__" and not first.endswith(".pth"):
                tops.add(first)
        for top in tops:
            if (site / top).exists() and not (target / top).exists():
                (target / top).symlink_to(site / top)
    return target


class Colab:
    """Starts runtimes: a fresh folder, venv and kernel each, all mounting the same fake Drive."""

    def __init__(self, root: Path, repo: tuple[str, str], pip_cache: Path):
        self.root = root
        self.image = colab_image(root / "colab-image")
        self.drive = root / "drive"
        (self.drive / "MyDrive").mkdir(parents=True)
        self.repo_url, self.repo_ref = repo  # this working tree as a git repository, standing for GitHub
        self.executed = root / "executed"
        self.executed.mkdir()
        self.pip_cache = pip_cache  # stands for Colab's fast network, not for a preinstalled package
        self.count = 0
        self.runtimes: list[Path] = []

    def new_runtime(self, extra_env: dict | None = None) -> tuple[Path, dict]:
        self.count += 1
        runtime = self.root / f"runtime-{self.count:02d}"
        (runtime / "content").mkdir(parents=True)
        (runtime / "root").mkdir()
        subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(runtime / "venv")], check=True)  # noqa: SLF001
        site = next((runtime / "venv" / "lib").glob("python3*/site-packages"))
        (site / "colab_image.pth").write_text(f"{self.image}\n{DOUBLE}\n")  # Colab's image has google.colab
        kernel = self.root / "jupyter" / "kernels" / f"runtime-{self.count:02d}"
        kernel.mkdir(parents=True)
        env = {
            "HOME": str(runtime / "root"),
            "TINYVOC_DRIVE_MOUNT": str(runtime / "content" / "drive"),
            "TINYVOC_FAKE_DRIVE": str(self.drive),
            "PIP_CACHE_DIR": str(self.pip_cache),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            **(extra_env or {}),
        }
        spec = {
            "argv": [str(runtime / "venv" / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": f"Colab runtime {self.count}",
            "language": "python",
            "env": env,
        }
        (kernel / "kernel.json").write_text(json.dumps(spec))
        self.runtimes.append(runtime)
        return runtime, env

    def run(
        self, name: str, params: dict, interrupt_when: Path | None = None, env: dict | None = None
    ) -> nbformat.NotebookNode | None:
        """Execute notebook ``name`` alone in a new runtime (``env``: more of its environment); delete it afterwards."""
        runtime, _ = self.new_runtime(env)
        out = self.executed / f"{runtime.name}-{name}"
        params = {"REPO_URL": self.repo_url, "REPO_REF": self.repo_ref, **params}
        cmd = [sys.executable, "-m", "papermill", str(notebooks_dir() / name), str(out), "-k", runtime.name]
        cmd += ["--cwd", str(runtime / "content"), "--no-progress-bar", "-y", json.dumps(params)]
        env = {**os.environ, "JUPYTER_PATH": str(self.root / "jupyter")}
        started = time.perf_counter()
        proc = start(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            if interrupt_when is None:
                log = proc.communicate(timeout=1200)[0].decode()
                assert proc.returncode == 0, f"{name} failed in {runtime.name}:\n{log[-4000:]}"
                print(f"{name} in {runtime.name}: {time.perf_counter() - started:.0f} s")
                return nbformat.read(out, as_version=4)
            while not interrupt_when.exists():
                assert proc.poll() is None, f"{name} ended before {interrupt_when} appeared"
                assert time.perf_counter() - started < 1200
                time.sleep(0.5)
            print(f"{name} in {runtime.name}: interrupted after {time.perf_counter() - started:.0f} s")
            return None
        finally:
            self._stop(proc, runtime)
            shutil.rmtree(runtime)  # the runtime's disk is gone

    @staticmethod
    def _stop(proc: subprocess.Popen, runtime: Path) -> None:
        """Kill papermill, its kernel and the kernel's workers at once, as a disconnect does; then anything else
        running this runtime's interpreter."""
        stop_tree(proc, grace=0)
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmdline and cmdline[0].decode(errors="replace").startswith(str(runtime)):
                os.kill(int(pid), signal.SIGKILL)


def text_of(book) -> str:
    chunks = []
    for cell in book.cells:
        for out in cell.get("outputs", []):
            chunks.append(out.get("text", "") + "".join(out.get("data", {}).get("text/plain", "")))
    return "\n".join(chunks)


@pytest.fixture(scope="module")
def colab_series(tmp_path_factory, repo_snapshot, pip_cache):
    colab = Colab(tmp_path_factory.mktemp("colab"), repo_snapshot, pip_cache)
    sample = make_sample_dataset(colab.root / "made")
    data = colab.drive / "MyDrive" / "tinyvoc" / "data"  # the user's data, only on Drive
    data.mkdir(parents=True)
    for name in ("pascal_train.json", "test.json"):
        shutil.copy(sample / name, data / name)
    for name in ("train_images", "test_images"):
        shutil.make_archive(str(data / name), "zip", sample, name)
    shutil.rmtree(sample)
    output = colab.drive / "MyDrive" / "tinyvoc" / "output"
    started = time.perf_counter()
    books = {
        "00": colab.run(NOTEBOOKS[0], {}),
        "01": colab.run(NOTEBOOKS[1], {}),
        "02-interrupted": colab.run(NOTEBOOKS[2], TRAIN, interrupt_when=output / "runs" / RUN / "last_checkpoint"),
        "02": colab.run(NOTEBOOKS[2], TRAIN, env={"TINYVOC_FAKE_DRIVE_DROP_AT": "model_final.pth"}),
        "03": colab.run(NOTEBOOKS[3], {}),
        "04": colab.run(NOTEBOOKS[4], {}),
    }
    print(f"Colab simulation: {time.perf_counter() - started:.0f} s")
    return colab, output, books


def test_the_series_ends_with_a_valid_submission_on_drive(colab_series):
    colab, output, books = colab_series
    report = validate_submission(output / "submission.json", colab.drive / "MyDrive" / "tinyvoc" / "data" / "test.json")
    assert report.ok, report.summary()
    assert report.per_image, "no detections at all"
    said = text_of(books["04"])  # the export after the validation AP and the sweep, then the browser download
    assert said.index("validation mask AP50") < said.index("the export below uses it") < said.index("VALID: ")
    assert re.search(r"To upload: submission.json alone, at \S+/content/drive/MyDrive/tinyvoc/output/submission.json; "
                     "your browser is downloading it", said)  # fmt: skip


def test_every_runtime_was_fresh_and_is_gone(colab_series):
    colab, output, books = colab_series
    assert "Using cached predictions" in text_of(books["04"])  # 03's cache, made in another runtime
    assert len(colab.runtimes) == 6 and not any(r.exists() for r in colab.runtimes)
    for path in output.rglob("*"):  # no record points into a runtime's disk
        if path.suffix in (".json", ".yaml", ".jsonl") or path.name == "last_checkpoint":
            assert str(colab.root) not in path.read_text(), path


def test_each_runtime_really_installs_the_package_detectron2_and_the_missing_packages(colab_series):
    colab, output, books = colab_series
    for key in ("00", "01", "02", "03", "04"):
        text = text_of(books[key])
        assert "installed detectron2-0.7.2+purepy-py3-none-any.whl with " in text, key
        assert "fvcore-" in text and "iopath-" in text and "hydra-core-" in text, key
        assert "Mounted at" in text and "data ready on local disk" in text, key
    environment = json.loads((output / "environment.json").read_text())
    assert environment["detectron2"] == "0.7.2+purepy"
    assert environment["tinyvoc_ref"] == colab.repo_ref  # pip installed the package from REPO_URL at REPO_REF


def test_interrupted_training_resumes_in_a_new_runtime(colab_series):
    _, output, books = colab_series
    assert books["02-interrupted"] is None
    assert f"Resuming from iteration {CHECKPOINT}" in text_of(books["02"])
    run = json.loads((output / "runs" / RUN / "run.json").read_text())
    assert run["finished"] and run["iteration"] == MAX_ITER


def test_a_drive_that_drops_mid_run_is_remounted_and_the_run_finishes(colab_series):
    _, output, books = colab_series
    text = text_of(books["02"])
    assert "(test double: Drive dropped at " in text and "model_final.pth" in text
    assert "[Errno 107] Transport endpoint is not connected" in text and "retrying for up to 5 min, remounting" in text
    assert text.count("Mounted at") == 2 and "The project folder answers again after" in text
    assert "Uploads that never finished" not in text  # the interrupted runtime's checkpoint had arrived whole
    run = output / "runs" / RUN  # the run named after the recipe (RUN = "auto")
    assert (run / "last_checkpoint").read_text() == "model_final.pth"
    assert (run / "model_final.pth").stat().st_size > 0 and not list(output.rglob("*.tmp"))


def test_your_own_export_as_a_zip_on_drive_is_registered_from_a_new_runtime(colab_series):
    """01 with ``DATASET`` a zip on Drive, in a fresh runtime and another project folder: the zip is unpacked onto
    the runtime's disk (never into Drive), and the record on Drive knows the data and its classes."""
    colab, _, _ = colab_series
    export = write_own_export(colab.root / "made" / "my-pets", n=8, masks="rle")
    drive = colab.drive / "MyDrive"
    shutil.make_archive(str(drive / "my-pets"), "zip", export.parent, export.name)
    mount = "/".join(("{mount}", "MyDrive"))  # the runtime's own mount point: resolved below, per runtime
    params = {"DATASET": mount + "/my-pets.zip", "PROJECT_DIR": mount + "/pets", "VAL_FRACTION": 0.25}
    runtime_mount = colab.root / f"runtime-{colab.count + 1:02d}" / "content" / "drive"
    book = colab.run(NOTEBOOKS[1], {k: v.replace("{mount}", str(runtime_mount)) if isinstance(v, str) else v
                                    for k, v in params.items()})  # fmt: skip
    text = text_of(book)
    assert "unpacking" in text and "Dataset check passed" in text, text[-3000:]
    record = json.loads((drive / "pets" / "output" / "dataset.json").read_text())
    assert (record["source"], record["name"], record["mask_format"]) == ("own", "my-pets", "bitmask")
    assert record["category_ids"] == [3, 7, 12] and record["class_names"] == ["cat", "dog", "zebra"]
    assert sorted(p.name for p in drive.iterdir()) == ["my-pets.zip", "pets", "tinyvoc"]  # nothing unpacked on Drive
