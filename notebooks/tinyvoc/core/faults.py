"""File-system faults in the project folder: a dropped Drive is waited for, a full disk stops, both say what is safe.

Colab's Drive is a FUSE mount. It drops mid-run, often hours in; every file operation under it then
fails with ``[Errno 107] Transport endpoint is not connected`` (or EIO, ESTALE) until Drive is
mounted again (``drive.mount(..., force_remount=True)``). :func:`retry` calls an operation again
while it fails that way, asking the caller's ``recover`` (the remount, where the platform can) between
tries, for up to :data:`RETRY_SECONDS`; then it gives up with :class:`StorageGone`. A full disk or
quota (ENOSPC, EDQUOT) does not pass by waiting: it is raised at once. Either way the user's last
words come from :func:`last_words`: what stopped and why, what is safe, what exists only on this
runtime, what to do; never a bare ``OSError``. :func:`retry_or_stop` (a call) and
:func:`stop_on_storage_fault` (a block) are the two ways from a fault to those words.

A storage fault is an ``OSError`` of those kinds, or an error raised *from* one (``raise ... from``). An
error raised while handling one (its ``__context__`` only) is another error, a bug in that handler:
it is raised as it is, never retried.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from contextlib import contextmanager
from typing import TypeVar

from .errors import TinyVocError
from .space import free_bytes
from .units import duration, size

DROPPED = frozenset({errno.ENOTCONN, errno.EIO, errno.ESTALE})  # a mount that stopped answering
FULL = frozenset({errno.ENOSPC, errno.EDQUOT})  # a full disk or Drive quota
RETRY_SECONDS = 300.0  # how long a dropped Drive is waited for (and remounted) before the run stops
RETRY_ENV = "TINYVOC_FAULT_RETRY_S"  # overrides RETRY_SECONDS (the tests use seconds)
WAITS = (1.0, 2.0, 5.0, 10.0, 20.0, 30.0)  # seconds between tries; the last repeats

T = TypeVar("T")


def retry_seconds() -> float:
    return float(os.environ.get(RETRY_ENV) or RETRY_SECONDS)


def storage_fault(exc: BaseException | None) -> OSError | None:
    """The OSError of a dropped mount or a full disk that ``exc`` is, or was raised from (``raise ... from``); else
    None. Not one it was raised while handling: that is another error (module docstring)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in DROPPED | FULL:
            return exc
        exc = exc.__cause__
    return None


def _described(error: OSError) -> str:
    """``[Errno 107] Transport endpoint is not connected: '.../metrics.jsonl'``, as Python prints it."""
    name = f": {os.fspath(error.filename)!r}" if error.filename else ""
    return f"[Errno {error.errno}] {error.strerror or os.strerror(error.errno)}{name}"


class StorageGone(TinyVocError):
    """The project folder did not answer again within the retry time; ``error`` is the last failure."""

    def __init__(self, error: OSError, waited: float, what: str):
        self.error, self.waited, self.what = error, waited, what
        super().__init__(f"{what}: {_described(error)}; still failing after {waited:.0f} s of retries")


def retry(
    call: Callable[[], T],
    what: str,
    recover: Callable[[], object] | None = None,
    seconds: float | None = None,
    say: Callable[[str], object] = print,
) -> T:
    """``call()``; while it fails with a dropped-mount error, ``recover()`` (remount), wait, and call it again.

    Gives up with :class:`StorageGone` after ``seconds`` (default :func:`retry_seconds`). A full
    disk (ENOSPC, EDQUOT) and every other error are raised as they are, at once. ``call`` must be
    safe to repeat: every file it writes is written whole or not at all (``core.atomic``).
    """
    budget = retry_seconds() if seconds is None else seconds
    started, tries, remount_failed = None, 0, False
    while True:
        try:
            result = call()
        except Exception as exc:
            error = storage_fault(exc)
            if error is None or error.errno not in DROPPED:
                raise
            now = time.monotonic()
            started = now if started is None else started
            if now - started >= budget:
                raise StorageGone(error, now - started, what) from exc
            if tries == 0:
                say(f"{what}: {_described(error)}. The project folder stopped answering (a Drive that dropped?); "
                    f"retrying for up to {duration(budget)}{', remounting' if recover else ''}.")  # fmt: skip
            if recover is not None:
                try:
                    recover()
                except Exception as remount_error:  # noqa: BLE001 - a failed remount is one more failed try
                    if not remount_failed:
                        say(f"remounting failed ({type(remount_error).__name__}: {remount_error}); trying again")
                    remount_failed = True
            time.sleep(min(WAITS[min(tries, len(WAITS) - 1)], max(0.0, started + budget - time.monotonic())))
            tries += 1
            continue
        if started is not None:
            say(f"The project folder answers again after {time.monotonic() - started:.0f} s; {what}: done.")
        return result


def _cause(error: OSError, waited: float | None = None) -> str:
    """Why the work stopped, in one clause, with the free space when the disk is full."""
    if error.errno in FULL:
        free = free_bytes(error.filename) if error.filename else None
        room = f"; {size(free)} free there" if free is not None else ""
        return f"the disk or the Drive quota is full ({_described(error)}{room})"
    after = f" within {duration(waited)} of retries" if waited is not None else ""
    return f"the project folder stopped answering ({_described(error)}) and did not come back{after}"


def last_words(error: OSError, doing: str, safe: str, only_here: str, todo: str, waited: float | None = None) -> str:
    """The last words of work a dropped Drive or a full disk stopped: why, what is safe, what is not, what to do."""
    if error.errno in FULL:
        todo = (
            "free space where the project is (on Google Drive: delete files and empty the bin, deleted files still "
            f"count), or choose another PROJECT_DIR; then {todo}"
        )
    else:
        restart = "Runtime > Restart session; if Drive still fails, Disconnect and delete runtime"
        todo = f"restart the runtime ({restart}); then {todo}"
    return (
        f"{doing} stopped: {_cause(error, waited)}.\n"
        f"Safe in the project folder: {safe}.\n"
        f"Only on this runtime (gone with it): {only_here}.\n"
        f"What to do: {todo}."
    )


def _fault_of(exc: BaseException) -> tuple[OSError, float | None] | None:
    """The storage fault that ends the work behind ``exc``, as ``(error, seconds waited)``: a drop :func:`retry`
    could not wait out, a full disk, or a drop outside any retry. None for every other error (raise it as it is)."""
    if isinstance(exc, StorageGone):
        return exc.error, exc.waited
    error = storage_fault(exc)
    if error is None or isinstance(exc, TinyVocError):
        return None
    return error, None


def retry_or_stop(
    call: Callable[[], T],
    what: str,
    words: Callable[[OSError, float | None], str],
    recover: Callable[[], object] | None = None,
) -> T:
    """:func:`retry` ``call``; when a storage fault ends it, stop with a :class:`TinyVocError` of ``words(error,
    waited)`` (made with :func:`last_words`) and no traceback. The training loop, its setup and record come
    through here (``training.storage.retry_in_run``); the notebooks' own writes use :func:`stop_on_storage_fault`."""
    try:
        return retry(call, what, recover=recover)
    except Exception as exc:
        fault = _fault_of(exc)
        if fault is None:
            raise
        raise TinyVocError(words(*fault)) from None


@contextmanager
def stop_on_storage_fault(doing: str, safe: str, todo: str, only_here: str = "nothing of this step"):
    """A storage fault inside the block: a :class:`TinyVocError` with :func:`last_words`."""
    try:
        yield
    except Exception as exc:
        fault = _fault_of(exc)
        if fault is None:
            raise
        raise TinyVocError(last_words(fault[0], doing, safe, only_here, todo, fault[1])) from None
