"""The tests' own process handling (tests/_processes.py): a stopped tree leaves nothing running, not even a
grandchild in a session of its own (as Jupyter starts kernels), and a timed-out command takes its children along."""

import subprocess
import sys
import time

import pytest

from ._processes import descendants, run, start, stop_tree

# a parent that starts a child in its own session (as jupyter_client starts a kernel) and prints the child's pid
PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
print(child.pid, flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is gone, waiting to be reaped
    except FileNotFoundError:
        return False


def _gone(pid: int, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _alive(pid)


@pytest.mark.parametrize("grace", [5.0, 0.0])
def test_stop_tree_stops_a_grandchild_in_its_own_session(grace):
    parent = start([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        assert descendants(parent.pid) == [child]
    finally:
        stop_tree(parent, grace=grace)
    assert parent.returncode is not None and _gone(child)


def test_a_command_that_times_out_is_stopped_with_its_children(tmp_path):
    pid_file = tmp_path / "child.pid"
    script = PARENT.replace("print(child.pid, flush=True)", f"open({str(pid_file)!r}, 'w').write(str(child.pid))")
    with pytest.raises(subprocess.TimeoutExpired):
        run([sys.executable, "-c", script], timeout=3)
    child = int(pid_file.read_text())
    assert _gone(child), f"pid {child} still running"
    assert run([sys.executable, "-c", "print('ok')"], timeout=60).stdout == "ok\n"
