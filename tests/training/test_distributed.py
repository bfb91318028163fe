"""Training on N workers through detectron2's ``launch``, on this CPU with gloo (the same code as NCCL on GPUs).

Each run is real: spawned worker processes, torch.distributed, the smoke profile on the sample. They
check what a user is promised: 2 workers write what 1 writes, once; 1 and 2 workers learn alike;
two "machines" meet at a URL; the caller sees rank 0's progress and every failure by rank; stopping
or killing a worker leaves no process and no held port behind, and a plain re-run resumes, with
another worker count too; the data is sharded, every image once per epoch.
"""

import contextlib
import io
import json
import multiprocessing
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest
import torch

from tinyvoc.core.errors import TinyVocError
from tinyvoc.core.paths import DataFiles, Outputs
from tinyvoc.dataset.record import prepare_dataset
from tinyvoc.training import metrics, runs
from tinyvoc.training import train as training
from tinyvoc.training.budget import Plan
from tinyvoc.training.distributed import WorkerFailed, World

from .._processes import start, stop_tree

ITERS = 60
# a 10-iteration warmup (the profile's is 50) so that 60 iterations learn enough for AP to compare: with 50, AP at
# iteration 60 is on the curve's steepest part and spread 0.26-0.56 over seeds and worker counts
EVERY_30 = ["SOLVER.CHECKPOINT_PERIOD", 30, "TEST.EVAL_PERIOD", 30, "SOLVER.WARMUP_ITERS", 10]
SHORT = ["SOLVER.CHECKPOINT_PERIOD", 5, "TEST.EVAL_PERIOD", 0]  # checkpoints to resume from, no validation


def _outputs(sample, path):
    outputs = Outputs.at(path)
    prepare_dataset(DataFiles.in_folder(sample), outputs, "sample", val_fraction=0.2, seed=0)
    return outputs


def the_run(outputs):
    """The files of the project's one training run (``output/runs/<name>/``; a name not made yet before it starts)."""
    found = runs.names(outputs)
    assert len(found) <= 1, found
    return outputs.run(found[0] if found else "not-started-yet")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_is_free(port: int) -> bool:
    """Nothing listens on ``port``: the next run's rendezvous can take it (as torch's, with SO_REUSEADDR)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
        except OSError:
            return False
    return True


def _url(port: int) -> str:
    return f"tcp://127.0.0.1:{port}"


def _worker_pids(train_dir: Path) -> dict[int, int]:
    """Rank -> pid, as each worker's log says (``training worker rank 1 of 2, pid 1234``)."""
    pids = {}
    for log in train_dir.glob("log*.txt"):
        for rank, pid in re.findall(r"training worker rank (\d+) of \d+, pid (\d+)", log.read_text()):
            pids[int(rank)] = int(pid)
    return pids


def _running(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


def _when(condition, action, timeout=300):
    """Run ``action`` in a thread as soon as ``condition()`` holds (what a user or the OS does mid-run)."""

    def watch():
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                action()
                return
            time.sleep(0.2)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def _assert_nothing_left(outputs, port):
    pids = _worker_pids(the_run(outputs).dir)
    assert pids and not [pid for pid in pids.values() if _running(pid)], pids
    assert multiprocessing.active_children() == []
    assert _port_is_free(port)


def _train_printing(outputs, **kwargs):
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # sys.stdout of this process: what a notebook cell shows
        run = training.train(outputs, "smoke", **kwargs)
    return run, printed.getvalue()


@pytest.fixture(scope="module")
def two_workers(sample, tmp_path_factory):
    outputs = _outputs(sample, tmp_path_factory.mktemp("two"))
    port = _free_port()
    started = time.perf_counter()
    run, printed = _train_printing(outputs, max_iter=ITERS, overrides=EVERY_30, num_gpus=2, dist_url=_url(port))
    print(f"\n2 workers: {time.perf_counter() - started:.0f} s, {run.seconds_per_iter} s/iter, AP50 {run.best_ap50}")
    return outputs, run, printed, port


@pytest.fixture(scope="module")
def one_worker(sample, tmp_path_factory):
    outputs = _outputs(sample, tmp_path_factory.mktemp("one"))
    started = time.perf_counter()
    run, printed = _train_printing(outputs, max_iter=ITERS, overrides=EVERY_30)
    print(f"\n1 worker: {time.perf_counter() - started:.0f} s, {run.seconds_per_iter} s/iter, AP50 {run.best_ap50}")
    return outputs, run, printed


def test_two_workers_finish_and_write_what_one_writes_once(two_workers, one_worker):
    outputs, run, _, port = two_workers
    single, single_run, _ = one_worker
    assert run.finished and run.iteration == ITERS and run.world_size == 2 and single_run.world_size == 1
    assert json.loads(the_run(outputs).record.read_text())["world_size"] == 2

    def files(o):
        return sorted(p.name for p in the_run(o).dir.iterdir() if not p.name.startswith("events.out"))

    assert files(outputs) == sorted([*files(single), "log_rank1.txt"])  # one set of checkpoints, one per-rank log
    assert the_run(outputs).periodic() == [] and the_run(single).periodic() == []  # finished: best and final stay
    assert len(list(the_run(outputs).dir.glob("events.out.tfevents.*"))) == 1
    lines = [json.loads(line) for line in the_run(outputs).metrics.read_text().splitlines()]
    iterations = [r["iteration"] for r in lines]
    assert len(iterations) == len(set(iterations))  # one row per logged iteration, not one per worker
    assert iterations == [json.loads(line)["iteration"] for line in the_run(single).metrics.read_text().splitlines()]
    evals = [r["iteration"] for r in metrics.read_metrics(the_run(outputs).metrics) if "segm/AP50" in r]
    assert evals == [29, 60]
    best = torch.load(the_run(outputs).best, map_location="cpu", weights_only=False)
    assert (
        best["iteration"] == run.best_iter
        and run.best_ap50
        == max(r["segm/AP50"] for r in metrics.read_metrics(the_run(outputs).metrics) if "segm/AP50" in r) / 100
    )
    assert _port_is_free(port) and multiprocessing.active_children() == []


def test_one_and_two_workers_with_the_same_batch_learn_alike(two_workers, one_worker):
    _, run, _, _ = two_workers
    _, single, _ = one_worker
    # measured (mask AP50 at 60): 1 worker 0.47-0.49, 2 workers 0.38-0.48 over two seeds; untrained: ~0
    assert run.best_ap50 > 0.25 and single.best_ap50 > 0.25, (run.best_ap50, single.best_ap50)
    assert abs(run.best_ap50 - single.best_ap50) < 0.2, (run.best_ap50, single.best_ap50)


def test_the_caller_sees_rank_0_speak_once(two_workers):
    outputs, _, printed, _ = two_workers
    assert "Training on 2 CPU (gloo) workers" in printed
    assert printed.count("Profile smoke, weights:") == 1  # rank 0 only, relayed to this process
    for done in (20, 40, 60):
        assert f"iter {done}/{ITERS}" in printed
    assert "val AP50" in printed
    logs = {p.name: p.read_text() for p in the_run(outputs).dir.glob("log*.txt")}
    assert set(logs) == {"log.txt", "log_rank1.txt"}
    assert "training worker rank 0 of 2" in logs["log.txt"] and "training worker rank 1 of 2" in logs["log_rank1.txt"]


def test_a_worker_exception_reaches_the_caller_with_its_rank_and_traceback(sample, tmp_path):
    outputs = _outputs(sample, tmp_path / "out")
    port = _free_port()
    with pytest.raises(WorkerFailed) as failed:
        training.train(
            outputs, "smoke", max_iter=5, overrides=["MODEL.RESNETS.DEPTH", 7], num_gpus=2, dist_url=_url(port)
        )  # a valid key and type (the config passes) that detectron2's backbone builder cannot build
    message = str(failed.value)
    assert (
        failed.value.rank in (0, 1) and f"training worker rank {failed.value.rank} (pid {failed.value.pid})" in message
    )
    assert "Traceback" in message and "KeyError: 7" in message
    _assert_nothing_left(outputs, port)


def test_a_batch_the_workers_cannot_share_stops_with_the_reason(sample, tmp_path):
    outputs = _outputs(sample, tmp_path / "out")
    with pytest.raises(TinyVocError, match="a batch of 4 images .* cannot be split evenly over 3 workers") as stopped:
        training.train(outputs, "smoke", max_iter=5, num_gpus=3)
    assert not isinstance(stopped.value, WorkerFailed)  # the workers' own message, as one process shows it
    assert runs.names(outputs) == []  # stopped before any run folder was made


def test_killed_worker_stops_the_run_by_rank_and_a_plain_rerun_resumes(sample, tmp_path, capsys):
    outputs = _outputs(sample, tmp_path / "out")
    port = _free_port()
    args = dict(max_iter=20, overrides=SHORT, num_gpus=2, dist_url=_url(port))
    killed = {}

    def kill_rank_1():
        killed["at"] = time.monotonic()
        os.kill(_worker_pids(the_run(outputs).dir)[1], signal.SIGKILL)

    _when(lambda: (the_run(outputs).dir / "model_0000004.pth").exists(), kill_rank_1)
    with pytest.raises(WorkerFailed, match=r"training worker rank 1 \(pid \d+\) was killed by SIGKILL") as failed:
        training.train(outputs, "smoke", **args)
    assert failed.value.rank == 1 and time.monotonic() - killed["at"] < 60
    _assert_nothing_left(outputs, port)
    resume_from = the_run(outputs).last_checkpoint.read_text()
    assert resume_from in ("model_0000004.pth", "model_0000009.pth", "model_0000014.pth")
    capsys.readouterr()

    run = training.train(outputs, "smoke", **args)
    assert f"Resuming from iteration {int(resume_from[6:13]) + 1} of 20" in capsys.readouterr().out
    assert run.finished and run.iteration == 20 and run.world_size == 2
    assert torch.load(the_run(outputs).final, map_location="cpu", weights_only=False)["iteration"] == 19


def test_interrupting_stops_every_worker_and_one_worker_continues_the_plan_all_measured(
    sample, tmp_path, monkeypatch, capsys
):
    """The notebook's stop button signals the kernel only: no worker may train on behind it. The budget's
    warm-up ran on both workers; a resume on one continues their plan (2 -> 1)."""
    from detectron2.engine import SimpleTrainer

    outputs = _outputs(sample, tmp_path / "out")
    port = _free_port()
    budget = dict(time_budget_h=0.1, overrides=["SOLVER.CHECKPOINT_PERIOD", 5])  # 12 checkpoints: the first early
    _when(lambda: runs.names(outputs) and the_run(outputs).periodic(), lambda: os.kill(os.getpid(), signal.SIGINT))
    with pytest.raises(KeyboardInterrupt):
        training.train(outputs, "smoke", **budget, num_gpus=2, dist_url=_url(port))
    printed = capsys.readouterr().out
    assert "Stopped 2 training worker(s)" in printed
    _assert_nothing_left(outputs, port)
    assert not the_run(outputs).record.exists()
    plan = Plan.load(the_run(outputs).plan)
    assert (plan.world_size, plan.ims_per_batch) == (2, 4) and f"Plan: {plan.describe()}" in printed
    assert (plan.train_images, plan.max_epochs) == (120, 12)  # the record's count reached the spawned workers' plan
    assert plan.describe().startswith("2 x CPU workers, batch 4, ")
    first = int(the_run(outputs).last_checkpoint.read_text()[6:13]) + 1

    original = SimpleTrainer.run_step

    def stop_after_two(self):  # one worker, in this process: two more steps show it trains on
        if self.iter == first + 2:
            raise KeyboardInterrupt("enough")
        return original(self)

    monkeypatch.setattr(SimpleTrainer, "run_step", stop_after_two)
    with pytest.raises(KeyboardInterrupt):
        training.train(outputs, "smoke", **budget)
    printed = capsys.readouterr().out
    assert "Continuing the saved plan" in printed and "measured with 2 worker(s), now 1" in printed
    assert "Measuring speed" not in printed and "different config" not in printed
    assert f"Resuming from iteration {first} of {plan.max_iter}" in printed
    assert Plan.load(the_run(outputs).plan) == plan


def test_a_run_started_on_one_worker_resumes_on_two(sample, tmp_path, monkeypatch, capsys):
    from detectron2.engine import SimpleTrainer

    outputs = _outputs(sample, tmp_path / "out")
    original = SimpleTrainer.run_step

    def disconnect_at_12(self):
        if self.iter == 12:
            raise KeyboardInterrupt("simulated disconnect")
        return original(self)

    monkeypatch.setattr(SimpleTrainer, "run_step", disconnect_at_12)  # in this process: the one worker
    with pytest.raises(KeyboardInterrupt):
        training.train(outputs, "smoke", max_iter=20, overrides=SHORT)
    monkeypatch.setattr(SimpleTrainer, "run_step", original)
    assert the_run(outputs).last_checkpoint.read_text() == "model_0000009.pth"
    capsys.readouterr()

    run = training.train(outputs, "smoke", max_iter=20, overrides=SHORT, num_gpus=2)
    printed = capsys.readouterr().out
    assert "different config" not in printed and "Resuming from iteration 10 of 20" in printed
    assert run.finished and run.iteration == 20 and run.world_size == 2


def test_two_machines_meet_at_the_url(sample, tmp_path, monkeypatch):
    """Two "machines" on this host: machine 0 runs the CLI (notebook 02 in a kernel), machine 1 this process."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # each "machine" would take every core of this one
    project = tmp_path / "project"
    outputs = _outputs(sample, project / "output")
    port = _free_port()
    flags = ["--max-iter", "20", "--num-gpus", "1", "--num-machines", "2", "--dist-url", _url(port)]
    machine_0 = start(
        [sys.executable, "-m", "tinyvoc", "train", "--project-dir", str(project), "--profile", "smoke", *flags]
        + ["--machine-rank", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        run = training.train(
            outputs, "smoke", max_iter=20, num_gpus=1, num_machines=2, machine_rank=1, dist_url=_url(port)
        )
        out, _ = machine_0.communicate(timeout=300)
    finally:
        stop_tree(machine_0)  # the command, notebook 02's kernel and its worker, whatever happened
    assert machine_0.returncode == 0, out
    assert run.finished and run.iteration == 20 and run.world_size == 2  # rank 0's record, read on machine 1
    assert _worker_pids(the_run(outputs).dir).keys() == {0, 1}
    executed = nbformat.read(outputs.executed_notebooks / "02_train.ipynb", as_version=4)
    shown = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "Training on 2 CPU (gloo) workers" in shown and "iter 20/20" in shown  # relayed into the notebook cell
    assert _port_is_free(port)


PROBE = r"""
import json, os, sys
from itertools import islice
import torch.distributed as dist
from detectron2.data import DatasetCatalog
from detectron2.data.samplers import TrainingSampler
from detectron2.utils import comm
from tinyvoc.core.paths import Outputs
from tinyvoc.dataset.record import DatasetRecord
from tinyvoc.dataset.registry import TRAIN, register_all
from tinyvoc.training.config import train_config
from tinyvoc.training.distributed import seed_worker
from tinyvoc.training.engine import TinyVocTrainer

root, url, rank, iterations = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
dist.init_process_group("gloo", init_method=url, world_size=2, rank=rank)
comm.create_local_process_group(2)
outputs = Outputs.at(root)
register_all(DatasetRecord.load(outputs))
_, cfg = train_config(outputs, "smoke", record=DatasetRecord.load(outputs), world_size=2)
seed = seed_worker(cfg.SEED)  # as each training worker does, before the trainer builds its loader
loader = iter(TinyVocTrainer.build_train_loader(cfg))
batches = [[d["image_id"] for d in next(loader)] for _ in range(iterations)]
size = len(DatasetCatalog.get(TRAIN))
epoch = list(islice(iter(TrainingSampler(size)), size // 2))
print(json.dumps({"seed": seed, "batches": batches, "epoch": epoch, "size": size}), flush=True)
dist.destroy_process_group()
# The answer is out. Tearing the interpreter down with the loader's iterator alive once aborted both probes
# ("terminate called without an active exception", SIGABRT) after they had printed: not what this test is about.
os._exit(0)
"""


def test_the_workers_see_different_images_and_every_image_once_an_epoch(sample, tmp_path):
    outputs = _outputs(sample, tmp_path / "out")
    train_ids = {im["id"] for im in json.loads(Path(outputs.split_dir / "train.json").read_text())["images"]}
    epoch_iters = len(train_ids) // 4  # the smoke profile's batch of 4: 2 images per worker
    url = _url(_free_port())
    probes = []
    try:
        for rank in (0, 1):
            probes.append(
                start(
                    [sys.executable, "-c", PROBE, str(outputs.root), url, str(rank), str(epoch_iters)],
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
        seen = [json.loads(p.communicate(timeout=240)[0].splitlines()[-1]) for p in probes]
    finally:
        for probe in probes:  # one that failed leaves the other waiting for its peer
            stop_tree(probe, grace=0)
    assert [p.returncode for p in probes] == [0, 0]
    assert [s["seed"] for s in seen] == [42, 43]  # every worker seeded, each its own augmentations
    ranks = [s["batches"] for s in seen]
    for it, (zero, one) in enumerate(zip(*ranks)):
        assert len(zero) == len(one) == 2 and not set(zero) & set(one), it  # within an iteration: different images
    delivered = [i for batches in ranks for batch in batches for i in batch]
    assert set(delivered) <= train_ids
    # aspect-ratio grouping holds back at most one image per orientation per worker: up to 4 late ones
    assert len(set(delivered)) >= len(train_ids) - 4
    first = [i for batches in ranks for batch in batches[: epoch_iters - 1] for i in batch]
    assert len(first) == len(set(first))  # none twice before the epoch ends
    # the sampler itself: the two shards of an epoch are every image once (one shuffle shared by both)
    assert sorted(seen[0]["epoch"] + seen[1]["epoch"]) == list(range(seen[0]["size"]))


# --- the parts, without processes -------------------------------------------------------------------


def test_num_gpus_auto_is_every_visible_gpu_and_one_on_a_cpu():
    assert World.resolve("auto", gpus=0) == World(1, 1, 0, "auto")
    assert World.resolve("auto", gpus=2).num_gpus == 2 and World.resolve("2", gpus=0).size == 2
    assert World.resolve(1, 2, 1, "tcp://10.0.0.1:29500", gpus=0) == World(1, 2, 1, "tcp://10.0.0.1:29500")
    assert World.resolve(4, 2, 1, "tcp://h:1", gpus=4).global_rank(3) == 7


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_gpus="many"), 'NUM_GPUS must be "auto" or a number'),
        (dict(num_gpus=3, gpus=2), "NUM_GPUS=3, but this machine shows 2 GPU"),
        (dict(num_machines=2), "NUM_MACHINES=2 needs DIST_URL: tcp://"),
        (dict(num_machines=2, machine_rank=2, dist_url="tcp://h:1"), "MACHINE_RANK must be 0..1"),
        (dict(dist_url="10.0.0.1:29500"), "DIST_URL must be auto or tcp://"),
    ],
)
def test_a_world_that_cannot_be_started_is_refused_before_any_worker(kwargs, message):
    with pytest.raises(TinyVocError, match=re.escape(message)):
        World.resolve(**{"gpus": 0, **kwargs})
