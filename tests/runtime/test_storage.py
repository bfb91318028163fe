"""A Drive that drops, a disk that fills: retried, remounted on Colab, and stopped with words that say what is safe.

The file system is not really filled nor disconnected: ``os.statvfs`` is made to report a small disk,
and file functions are made to fail with the errno a dropped Drive mount gives. The Colab test double's
``drive.drop()`` stands for the mount dropping; its ``mount(..., force_remount=True)`` brings it back.
"""

import builtins
import errno
import os
import sys
import time

import pytest

from tinyvoc.core import atomic, faults, space
from tinyvoc.core.errors import TinyVocError
from tinyvoc.runtime import colab, project


def small_disk(free_bytes, blocks=1000):
    """An ``os.statvfs`` that reports ``free_bytes`` free (``blocks`` 0: a filesystem that tells nothing)."""
    return lambda path: os.statvfs_result((4096, 4096, blocks, 0, free_bytes // 4096, 0, 0, 0, 0, 255))


def test_too_little_space_stops_with_both_figures_and_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(space.os, "statvfs", small_disk(300 * 2**20))
    with pytest.raises(TinyVocError) as stop:
        space.require_free(tmp_path / "not-yet" / "train", 2_570_000_000, "this run's checkpoints")
    message = str(stop.value)
    assert "needs 2.57 GB in" in message and "300 MiB is free there" in message
    assert "empty the bin too, deleted files still count" in message and "another PROJECT_DIR" in message
    assert not (tmp_path / "not-yet").exists()
    assert space.require_free(tmp_path, 200 * 2**20, "a download") == 300 * 2**20


@pytest.mark.parametrize("statvfs", [small_disk(0, blocks=0), "raises"])
def test_a_filesystem_that_cannot_tell_is_said_in_one_line(tmp_path, monkeypatch, capsys, statvfs):
    def raises(path):
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(space.os, "statvfs", raises if statvfs == "raises" else statvfs)
    assert space.require_free(tmp_path, 10**15, "this run's checkpoints") is None
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "cannot be told here; not checked (this run's checkpoints: 1000000.00 GB)" in out


def failing_until(monkeypatch, folder, until, error=errno.ENOTCONN):
    """Make open/os.open/os.replace under ``folder`` fail with ``error`` while ``until()`` is true."""
    folder = str(folder)

    def wrap(function):
        def call(path, *args, **kwargs):
            if not isinstance(path, int) and os.fsdecode(path).startswith(folder) and until():
                raise OSError(error, os.strerror(error), os.fsdecode(path))
            return function(path, *args, **kwargs)

        return call

    for module, name in ((builtins, "open"), (os, "open"), (os, "replace"), (os, "unlink")):
        monkeypatch.setattr(module, name, wrap(getattr(module, name)))


def test_a_dropped_colab_drive_is_remounted_and_the_write_lands_whole(drive, on_colab, monkeypatch, capsys):
    mount, fake = drive
    monkeypatch.setenv("TINYVOC_FAKE_DRIVE", str(fake))
    root = project.start("", install=False).root
    double = sys.modules["google.colab.drive"]
    target = root / "output" / "train" / "last_checkpoint"
    atomic.write_bytes(target, b"model_0000004.pth")
    double.drop()
    failing_until(monkeypatch, mount / "MyDrive", lambda: double.is_dropped(str(target)))
    write = lambda: atomic.write_bytes(target, b"model_0000009.pth")  # noqa: E731
    with pytest.raises(OSError, match="Transport endpoint is not connected"):
        write()  # as it is without the retry
    faults.retry(write, "saving last_checkpoint", recover=colab.remounter(root))
    out = capsys.readouterr().out
    assert "saving last_checkpoint: [Errno 107] Transport endpoint is not connected" in out
    assert "retrying for up to 5 min, remounting" in out and "Mounted at" in out and "answers again after" in out
    assert not double.is_dropped(str(target)) and target.read_bytes() == b"model_0000009.pth"
    assert [p.name for p in target.parent.iterdir()] == ["last_checkpoint"]  # no temporary file left behind


def test_a_folder_that_does_not_come_back_gives_up_in_time_with_the_last_words(tmp_path, monkeypatch):
    monkeypatch.setenv(faults.RETRY_ENV, "1.5")
    failing_until(monkeypatch, tmp_path, lambda: True)
    started = time.monotonic()
    with pytest.raises(TinyVocError) as stop:
        with faults.stop_on_storage_fault("Exporting", safe="the previous submission.json", todo="run 04 again"):
            faults.retry(lambda: atomic.write_json(tmp_path / "submission.json", []), "writing submission.json")
    assert 1.5 <= time.monotonic() - started < 5
    lines = str(stop.value).splitlines()
    assert lines[0].startswith("Exporting stopped: the project folder stopped answering ([Errno 107] Transport")
    assert lines[0].endswith("and did not come back within 2 s of retries.")
    assert lines[1:] == [
        "Safe in the project folder: the previous submission.json.",
        "Only on this runtime (gone with it): nothing of this step.",
        "What to do: restart the runtime (Runtime > Restart session; if Drive still fails, Disconnect and delete "
        "runtime); then run 04 again.",
    ]


def test_a_full_disk_is_not_waited_for_and_says_the_free_space(tmp_path, monkeypatch):
    monkeypatch.setattr(space.os, "statvfs", small_disk(12 * 2**20))
    failing_until(monkeypatch, tmp_path, lambda: True, errno.ENOSPC)
    started = time.monotonic()
    with pytest.raises(TinyVocError) as stop:
        with faults.stop_on_storage_fault("Exporting", safe="the previous submission.json", todo="run 04 again"):
            faults.retry(lambda: atomic.write_json(tmp_path / "submission.json", []), "writing submission.json")
    assert time.monotonic() - started < 1
    message = str(stop.value)
    assert "the disk or the Drive quota is full ([Errno 28] No space left on device: " in message
    assert "12 MiB free there" in message and "empty the bin, deleted files still count" in message
    assert "OSError" not in message.splitlines()[-1]


def test_other_errors_pass_through_untouched(tmp_path):
    with pytest.raises(FileNotFoundError):
        with faults.stop_on_storage_fault("Reading", safe="-", todo="-"):
            faults.retry(lambda: open(tmp_path / "absent"), "reading")


def test_a_download_that_will_not_fit_stops_before_it_starts(tmp_path, monkeypatch):
    from tinyvoc.dataset import download

    monkeypatch.setattr(space.os, "statvfs", small_disk(50 * 2**20))
    fetched = []
    with pytest.raises(TinyVocError) as stop:
        download.fetch_course_files(tmp_path / "data", downloader=lambda file_id, target: fetched.append(target))
    assert "Not enough space for the course files (pascal_train.json, test.json, train_images.zip" in str(stop.value)
    assert "it needs 191 MiB in" in str(stop.value)
    assert "50 MiB is free there" in str(stop.value) and not fetched and not (tmp_path / "data").exists()


def test_an_error_raised_while_handling_a_storage_error_is_not_retried(tmp_path):
    """A bug in an ``except OSError`` block is that bug: raised at once, not waited on as a dropped Drive."""
    calls = []

    def handler_with_a_bug():
        calls.append(1)
        try:
            raise OSError(errno.ENOTCONN, "Transport endpoint is not connected", str(tmp_path / "metrics.json"))
        except OSError:
            raise KeyError("a bug in the handler")  # noqa: B904 - its __context__ is the OSError, as in a real handler

    with pytest.raises(KeyError, match="a bug in the handler"):
        faults.retry(handler_with_a_bug, "writing metrics", seconds=2)
    assert calls == [1]
    with pytest.raises(KeyError), faults.stop_on_storage_fault("Writing", safe="-", todo="-"):
        handler_with_a_bug()  # and no "stopped: the project folder stopped answering" last words for it

    def wrapped():
        raise RuntimeError("could not save") from OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(TinyVocError, match="the disk or the Drive quota is full"):
        faults.retry_or_stop(wrapped, "saving", lambda error, waited: faults.last_words(error, "Saving", "-", "-", "-"))
