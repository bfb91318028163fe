"""Processes a test starts are stopped whatever happens: a failing assertion, a timeout, Ctrl-C.

A process tree is more than its first process: ``papermill`` starts a kernel, ``jupyterlab`` starts kernels in
sessions of their own (jupyter_client's ``start_new_session``), a kernel starts training workers. Killing the
first one leaves the rest running after pytest ends, holding cores and ports. So every test that starts a
process starts it in its own session (``start``) and stops it with :func:`stop_tree` in a ``finally`` or a
fixture's teardown: the process and every descendant, found through ``/proc`` before any is signalled (a
child whose parent died is handed to init and could not be found afterwards).
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path


def _parents() -> dict[int, int]:
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])  # the field after the (command)
    return parents


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, children first."""
    parents = _parents()
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop_tree(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """Stop ``proc`` and everything it started: SIGTERM first (a server shuts its kernels down), then, after
    ``grace`` seconds or at once if it is gone, SIGKILL to each descendant found before and its process group.
    ``grace=0``: SIGKILL at once, as a machine that disconnects."""
    tree = descendants(proc.pid)
    if proc.poll() is None and grace > 0:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    tree += [pid for pid in descendants(proc.pid) if pid not in tree]
    for pid in tree:
        _signal(pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.kill()
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the group start() made (papermill's own helpers, a shell's jobs)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def start(cmd: list[str], **kwargs) -> subprocess.Popen:
    """``subprocess.Popen`` in a session of its own, so that :func:`stop_tree` can also kill its group."""
    return subprocess.Popen(cmd, start_new_session=True, **kwargs)


def run(cmd: list[str], timeout: float, **kwargs) -> subprocess.CompletedProcess:
    """``subprocess.run(cmd, capture_output=True, text=True, timeout=...)`` whose whole tree is stopped when it
    times out or the test is interrupted, not only its first process."""
    proc = start(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        stop_tree(proc, grace=0)  # a no-op for a tree that ended; kills whatever a finished process left behind
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
