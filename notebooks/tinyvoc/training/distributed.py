"""N training workers through detectron2's ``launch`` (torch.distributed: NCCL on GPU, gloo on CPU) as one process.

``launch`` with one worker calls the function in this process (the default: nothing changes for one GPU
or the CPU smoke run); with more it spawns them and waits. What it does not do, and a notebook cell
needs, is added around it here:

* **Output**: a spawned worker writes to the process's file descriptors, not to the caller's
  ``sys.stdout``: a cell shows that only where the kernel forwards them (ipykernel 6 and later do,
  older kernels and other callers do not), and every rank would print. Rank 0's stdout and stderr
  are relayed to the caller's through a queue, so the progress lines and messages appear where the
  call was made; the other ranks print nothing (their detectron2 log is in their own file,
  ``TrainFiles.log_for``).
* **Errors**: torch reports a failed worker as ``ProcessRaisedException`` (a traceback in a string)
  or ``ProcessExitedException`` (a signal). They become :class:`WorkerFailed`, naming the global rank,
  the pid and what to do; a worker's own :class:`TinyVocError` (a user-fixable problem, the same in
  every rank) is raised as it is, as with one process.
* **Two GPUs that cannot reach each other** (Kaggle's two T4s): NCCL's peer-to-peer transport hangs
  between them, as users report (Lightning #20523, ultralytics #3904), and ``NCCL_P2P_DISABLE=1`` is the
  workaround they report. It is set for the spawned workers where torch says a pair of the GPUs has no peer
  access, and the log says so; a value the user set is left alone.
* **Interrupting** (``KeyboardInterrupt`` in the caller, e.g. a notebook's stop button, which signals
  only the kernel) stops every worker this call started, and nothing is left behind: no process, no
  port (rank 0's rendezvous port closes with it).

The worker function must be importable (spawned workers import it by name), hence the package, never a cell.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import multiprocessing
import os
import sys
import threading
import time
from dataclasses import dataclass

from ..core.errors import TinyVocError
from ..runtime.quiet import quiet_known_warnings, quiet_warnings_option

AUTO = "auto"
STOP_SECONDS = 10  # after SIGTERM, how long a worker may take to exit before SIGKILL


def visible_gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


class WorkerFailed(TinyVocError):
    """A training worker stopped with an exception or a signal; ``rank`` is its global rank."""

    def __init__(self, message: str, rank: int, pid: int | None):
        super().__init__(message)
        self.rank, self.pid = rank, pid


@dataclass(frozen=True)
class World:
    """Where the workers run, in detectron2's terms: ``num_gpus`` worker processes on each of ``num_machines``.

    ``num_gpus`` is the number of processes per machine (``launch``'s ``num_gpus_per_machine``): one per
    GPU; on a CPU each is a gloo process. ``dist_url`` is where they meet (``tcp://<machine 0>:<port>``;
    ``auto``: a free port on this machine, one machine only).
    """

    num_gpus: int = 1
    num_machines: int = 1
    machine_rank: int = 0
    dist_url: str = AUTO

    @property
    def size(self) -> int:
        return self.num_gpus * self.num_machines

    def global_rank(self, local_rank: int) -> int:
        return self.machine_rank * self.num_gpus + local_rank

    @classmethod
    def resolve(cls, num_gpus=AUTO, num_machines=1, machine_rank=0, dist_url=AUTO, gpus: int | None = None) -> World:
        """Check and resolve the notebook's ``NUM_GPUS``, ``NUM_MACHINES``, ``MACHINE_RANK``, ``DIST_URL``.

        ``num_gpus="auto"``: every visible GPU, 1 on a CPU. ``gpus``: the visible GPUs (default: ask torch).
        """
        gpus = visible_gpus() if gpus is None else gpus
        text = str(num_gpus).strip().lower() if num_gpus is not None else AUTO
        if text in ("", AUTO, "0"):
            workers = max(1, gpus)
        elif text.isdigit():
            workers = int(text)
        else:
            raise TinyVocError(f'NUM_GPUS must be "auto" or a number of workers per machine, not {num_gpus!r}')
        if gpus and workers > gpus:
            raise TinyVocError(
                f"NUM_GPUS={workers}, but this machine shows {gpus} GPU(s) (torch.cuda.device_count()): "
                f'set NUM_GPUS to at most {gpus}, or "auto"'
            )
        machines, rank = int(num_machines or 1), int(machine_rank or 0)
        if machines < 1 or not 0 <= rank < machines:
            raise TinyVocError(f"MACHINE_RANK must be 0..{machines - 1} for NUM_MACHINES={machines}, not {rank}")
        url = str(dist_url or AUTO).strip()
        if machines > 1 and url == AUTO:
            raise TinyVocError(
                f"NUM_MACHINES={machines} needs DIST_URL: tcp://<machine 0's address>:<a free port>, the same on "
                "every machine (e.g. --dist-url tcp://10.0.0.1:29500)"
            )
        if url != AUTO and not url.startswith(("tcp://", "file://", "env://")):
            raise TinyVocError(f"DIST_URL must be auto or tcp://<host>:<port>, not {url!r}")
        return cls(workers, machines, rank, url)

    def describe(self) -> str:
        where = f"{self.num_gpus} per machine on {self.num_machines} machines" if self.num_machines > 1 else ""
        kind = "GPU" if visible_gpus() else "CPU (gloo)"
        return f"{self.size} {kind} workers" + (f" ({where}, this is machine {self.machine_rank})" if where else "")


# --- inside a worker --------------------------------------------------------------------------------


def rank() -> int:
    from detectron2.utils import comm

    return comm.get_rank()


def world_size() -> int:
    from detectron2.utils import comm

    return comm.get_world_size()


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    """Wait until every worker gets here (a no-op with one)."""
    from detectron2.utils import comm

    comm.synchronize()


def agree(value, what: str, where: str) -> None:
    """Stop unless every worker sees the same ``value`` (also a barrier: every worker has got this far).

    On several machines each reads its own copy of ``where``; a difference would make the workers
    take different decisions (one resumes, one starts over) and hang or diverge.
    """
    from detectron2.utils import comm

    digest = hashlib.sha1(repr(value).encode()).hexdigest()
    seen = comm.all_gather(digest)
    differs = [k for k, d in enumerate(seen) if d != seen[0]]
    if differs:
        raise TinyVocError(
            f"worker rank {differs[0]} sees a different {what} than rank 0 in {where}: every machine must train in "
            "the same folder (a shared PROJECT_DIR, e.g. NFS), or hold identical copies of it"
        )


def ddp_options(cfg) -> dict:
    """Extra ``DistributedDataParallel`` arguments for this config's device: ``device_ids=None`` on a CPU.

    detectron2's ``create_ddp_model`` passes ``device_ids=[local rank]`` unless told otherwise, which
    torch refuses for a CPU model ("device_ids ... only work with ... GPU modules"); None is torch's
    way for CPU modules. GPU workers keep detectron2's choice.
    """
    return {} if str(cfg.MODEL.DEVICE).startswith("cuda") else {"device_ids": None}


def seed_worker(seed: int) -> int:
    """Seed this worker's RNGs with ``seed + rank`` (detectron2's ``default_setup`` rule); returns the seed.

    Each worker then draws its own augmentations, while detectron2's ``TrainingSampler`` shuffles
    with one seed shared by all (``comm.shared_random_seed``: rank 0's draw) and gives rank r every
    world-size-th image of that order: the workers never see the same image in one pass.
    """
    from detectron2.utils.env import seed_all_rng

    seeded = seed + rank()
    seed_all_rng(seeded)
    return seeded


class _Lines(io.TextIOBase):
    """A text stream that sends whole lines to the caller's queue (rank 0's stdout or stderr)."""

    def __init__(self, queue, kind: str):
        self._queue, self._kind, self._buffer = queue, kind, ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._buffer += text
        if "\n" in self._buffer:
            done, _, self._buffer = self._buffer.rpartition("\n")
            self._queue.put((self._kind, done + "\n"))
        return len(text)

    def flush(self) -> None:
        if self._buffer:
            self._queue.put((self._kind, self._buffer))
            self._buffer = ""


def _worker(fn, args, queue, local_workers: int):
    """What each spawned worker runs (``launch``'s ``main_func``): rank 0 speaks through the queue, others are quiet.

    On a CPU the workers of one machine share its threads (torch's count: the cores, or ``OMP_NUM_THREADS``):
    N processes with every core each fight over them (measured on 2 cores: a process with both threads
    went from 0.6 to 6.6 s/iter while another program held one core).
    """
    import torch

    quiet_known_warnings()  # the kernel's filters do not reach a spawned process
    if not torch.cuda.is_available():
        torch.set_num_threads(max(1, torch.get_num_threads() // local_workers))
    main = is_main()
    out = _Lines(queue, "out") if main else open(os.devnull, "w")  # noqa: SIM115 - closed below
    err = _Lines(queue, "err") if main else sys.stderr
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                fn(*args)
            except TinyVocError as exc:
                queue.put(("error", rank(), str(exc)))
                raise
            finally:
                out.flush()
                err.flush()
    finally:
        if not main:
            out.close()


# --- in the caller ----------------------------------------------------------------------------------


class _Relay(threading.Thread):
    """Prints what rank 0 sends while the caller waits in ``launch``; keeps the workers' TinyVocErrors."""

    def __init__(self, queue):
        super().__init__(daemon=True, name="tinyvoc-relay")
        self.queue, self.errors, self._done = queue, [], threading.Event()

    def run(self) -> None:
        try:
            while not (self._done.is_set() and self.queue.empty()):
                if self.queue.empty():
                    time.sleep(0.05)
                    continue
                self._show(*self.queue.get())
        except (OSError, EOFError, ValueError):  # the queue was closed under a message cut by a killed worker
            return

    def _show(self, kind: str, *payload) -> None:
        if kind == "error":
            self.errors.append(payload)
        else:
            stream = sys.stdout if kind == "out" else sys.stderr
            stream.write(payload[0])
            stream.flush()

    def finish(self) -> None:
        self._done.set()
        self.join(timeout=5)


@contextlib.contextmanager
def _quiet_children():
    """``PYTHONWARNINGS`` with the known-harmless categories while workers are spawned (they read it at start)."""
    before = os.environ.get("PYTHONWARNINGS")
    os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [before, quiet_warnings_option()]))
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PYTHONWARNINGS", None)
        else:
            os.environ["PYTHONWARNINGS"] = before


def unreachable_pair(num_gpus: int) -> tuple[int, int] | None:
    """Two of the first ``num_gpus`` GPUs that cannot access each other's memory (torch's peer check), or None."""
    import torch

    if num_gpus < 2 or not torch.cuda.is_available():
        return None
    pairs = ((i, j) for i in range(num_gpus) for j in range(num_gpus) if i != j)
    return next(((i, j) for i, j in pairs if not torch.cuda.can_device_access_peer(i, j)), None)


@contextlib.contextmanager
def nccl_without_p2p(world: World):
    """``NCCL_P2P_DISABLE=1`` while the workers are spawned (they read it at start), where two of this machine's
    GPUs cannot reach each other; said in the log. A value the user set is left alone."""
    blocked = unreachable_pair(world.num_gpus)
    if blocked is None or "NCCL_P2P_DISABLE" in os.environ:
        yield
        return
    print(
        f"GPUs {blocked[0]} and {blocked[1]} cannot access each other's memory (no peer-to-peer): setting "
        "NCCL_P2P_DISABLE=1 for the workers, the known fix for NCCL hangs between such GPUs (Kaggle's two T4s).",
        flush=True,
    )
    os.environ["NCCL_P2P_DISABLE"] = "1"
    try:
        yield
    finally:
        os.environ.pop("NCCL_P2P_DISABLE", None)


def _stop_workers(workers) -> int:
    """Stop the given worker processes: SIGTERM, then SIGKILL after ``STOP_SECONDS``; wait for each."""
    alive = [p for p in workers if p.is_alive()]
    for process in alive:
        process.terminate()
    deadline = time.monotonic() + STOP_SECONDS
    for process in alive:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()
    return len(alive)


def _failure(exc, world: World, errors: list) -> TinyVocError:
    """The caller's exception for a worker that failed: its own TinyVocError, or what happened, by rank."""
    from torch.multiprocessing.spawn import ProcessExitedException

    if errors:
        return TinyVocError(errors[0][1])
    failed = world.global_rank(exc.error_index)
    pid = exc.error_pid
    if isinstance(exc, ProcessExitedException):
        how = f"was killed by {exc.signal_name}" if exc.signal_name else f"exited with code {exc.exit_code}"
        hint = " (out of memory, or stopped from outside)" if exc.signal_name == "SIGKILL" else ""
        return WorkerFailed(
            f"training worker rank {failed} (pid {pid}) {how}{hint}; the other workers were stopped. "
            "Run again to resume from the last checkpoint.",
            failed,
            pid,
        )
    trace = str(exc).strip()
    return WorkerFailed(
        f"training worker rank {failed} (pid {pid}) failed; the other workers were stopped. Its traceback:\n{trace}",
        failed,
        pid,
    )


def run_workers(fn, world: World, *args):
    """Run ``fn(*args)`` on every worker of this machine through detectron2's ``launch``; return when all end.

    One worker in all: ``fn`` runs here, in this process, and its result is returned. More: spawned
    processes (``fn`` must be importable), rank 0's output relayed here, failures raised as described in
    the module docstring, and on any exception in the caller (an interrupt) every worker started here is
    stopped first; nothing is returned (``launch`` keeps no result of spawned workers), so what they make
    is read from disk.
    """
    from detectron2.engine import launch
    from torch.multiprocessing.spawn import ProcessException

    if world.size == 1:
        results = []  # launch calls fn here but drops its result
        launch(lambda *a: results.append(fn(*a)), 1, args=args)
        return results[0] if results else None
    queue = multiprocessing.get_context("spawn").SimpleQueue()
    before = set(multiprocessing.active_children())
    relay = _Relay(queue)
    relay.start()
    try:
        with _quiet_children(), nccl_without_p2p(world):
            launch(
                _worker,
                world.num_gpus,
                num_machines=world.num_machines,
                machine_rank=world.machine_rank,
                dist_url=world.dist_url,
                args=(fn, args, queue, world.num_gpus),
            )
    except ProcessException as exc:  # torch has stopped the other workers already
        relay.finish()
        raise _failure(exc, world, relay.errors) from None
    except BaseException:
        stopped = _stop_workers(set(multiprocessing.active_children()) - before)
        relay.finish()
        print(f"Stopped {stopped} training worker(s); run again to resume from the last checkpoint.", flush=True)
        raise
    finally:
        relay.finish()
        queue.close()
