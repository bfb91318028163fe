"""detectron2's ``DefaultTrainer`` with what a Colab run on Drive needs.

* Checkpoints are written atomically; only the last two periodic ones are kept, and
  ``model_best.pth`` / ``model_final.pth`` hold weights only: an X-101 run stays under 3 GB on a
  15 GB Drive (one periodic checkpoint with SGD momentum is ~0.8 GB).
* Resume reads the newest checkpoint that can be read: after a disconnect Drive may still be
  uploading the file ``last_checkpoint`` names, so a truncated or missing one falls back to the
  previous periodic checkpoint, and says so.
* Validation mask AP50 keeps ``model_best.pth`` (its record restored from ``metrics.jsonl`` on resume).
* The cell output gets one compact progress line every ~1% of the run (:class:`ProgressPrinter`);
  detectron2's full log goes to ``log.txt`` and scalars to TensorBoard event files in the train folder.
* A Drive that drops mid-run costs no training: every hook's work after a step (checkpoints,
  ``last_checkpoint``, metrics, TensorBoard events, validation, which reads its split's json) goes
  through ``storage.retry_in_run`` (``core.faults.retry``), remounting Drive on Colab, for up to 5
  minutes; the metrics, event and log files are reopened after a drop (the old handles stay dead after
  a remount). When Drive does not come back, or the disk fills, training stops with last words naming the last complete
  checkpoint and the iteration a re-run resumes from (:meth:`TinyVocTrainer.last_words`).
* With several workers (``distributed.run_workers``) rank 0 alone writes: checkpoints (the
  checkpointer's ``save_to_disk``), the writers (metrics, TensorBoard, progress: DefaultTrainer adds
  them on rank 0 only) and the best checkpoint, whose choice is made once, on rank 0. Validation
  runs on every worker, each on its share of the split (``metrics.build_evaluator``).

Like ``tools/train_net.py``, the classes are declared here at module level and take their paths
from ``cfg.OUTPUT_DIR``. This module imports detectron2; ``run`` imports it only when training.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import io
import json
import logging
import math
import os
import sys
import time
import weakref
from pathlib import Path

import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.engine import DefaultTrainer, defaults, hooks
from detectron2.utils import comm
from detectron2.utils.events import EventWriter, JSONWriter, TensorboardXWriter, get_event_storage

from ..core.atomic import atomic_path, write_bytes
from ..core.errors import TinyVocError
from ..core.faults import last_words, storage_fault
from ..core.paths import TrainFiles
from .distributed import ddp_options
from .metrics import BEST_METRIC, best_from_metrics, build_evaluator
from .storage import report_unfinished_uploads, retry_in_run
from .weights import is_coco, without_class_heads

KEEP_PERIODIC = 2
LOSSES = (("loss_cls", "cls"), ("loss_box_reg", "box"), ("loss_mask", "mask"), ("loss_rpn_cls", "rpn"))


class UnreadableCheckpoint(TinyVocError):
    """A checkpoint file that cannot be unpickled: truncated by a killed save or a half-finished upload."""


class AtomicCheckpointer(DetectionCheckpointer):
    """Checkpoints and the ``last_checkpoint`` tag written to a temporary file, then renamed.

    A process killed mid-save leaves the previous files intact. Saving the best model does not
    move the resume tag (detectron2's would), so ``last_checkpoint`` ends at ``model_final.pth``.
    Only the main process writes (``save_to_disk``, detectron2's default: rank 0 of N workers).
    """

    def __init__(self, model, save_dir: str, keep: int = KEEP_PERIODIC, **checkpointables):
        super().__init__(model, save_dir, **checkpointables)
        self.files = TrainFiles(Path(save_dir))
        self.keep = keep
        self.resumed_from: Path | None = None
        self.saved: tuple[str, int] | None = None  # the last complete resume point: (file name, next iteration)
        self.saved_best: tuple[str, int] | None = None

    def save(self, name: str, **kwargs) -> None:
        if not self.save_to_disk:
            return
        data = {"model": self.model.state_dict()}
        # best and final hold weights only: they are for inference, not for resuming mid-run
        if name not in (self.files.best.stem, self.files.final.stem):
            data.update({key: obj.state_dict() for key, obj in self.checkpointables.items()})
        data.update(kwargs)  # the iteration
        target = self.files.dir / f"{name}.pth"
        periodic = name[len("model_") :].isdigit()
        if periodic:  # make room first: while this one is written, at most `keep` periodic files exist
            for old in [p for p in self.files.periodic() if p != target][: 1 - self.keep or None]:
                old.unlink(missing_ok=True)
        self.logger.info(f"Saving checkpoint to {target}")
        with atomic_path(target) as tmp, open(tmp, "wb") as fh:  # a file object: write errors keep their errno
            torch.save(data, fh)
        resumes_at = int(kwargs.get("iteration", -1)) + 1
        if name == self.files.best.stem:  # the resume point stays the periodic/final checkpoint
            self.saved_best = (target.name, resumes_at)
            return
        self.tag_last_checkpoint(target.name)
        self.saved = (target.name, resumes_at)

    def tag_last_checkpoint(self, last_filename_basename: str) -> None:
        if self.save_to_disk:
            write_bytes(self.files.last_checkpoint, last_filename_basename.encode())

    def _load_file(self, filename):
        """The file's contents; from the COCO Mask R-CNN file, without its class heads (``weights.without_class_heads``:
        detectron2 would load them whenever their shapes fit, i.e. on a dataset of 80 classes)."""
        try:
            loaded = super()._load_file(filename)
        except Exception as exc:  # noqa: BLE001 - whatever unpickling raises, the file is unusable
            raise UnreadableCheckpoint(f"{filename} cannot be read ({type(exc).__name__}: {exc})") from exc
        if is_coco(filename):
            loaded["model"], dropped = without_class_heads(loaded["model"])
            self.logger.info(f"COCO weights: their class heads are not loaded, these start fresh: {', '.join(dropped)}")
        return loaded

    def resume_candidates(self) -> list[Path]:
        """The file ``last_checkpoint`` names, then the periodic checkpoints, newest first."""
        tagged = []
        if self.files.last_checkpoint.exists():
            name = self.files.last_checkpoint.read_text(errors="replace").strip()
            tagged = [self.files.dir / name] if name else []
        return tagged + [p for p in reversed(self.files.periodic()) if p not in tagged]

    def resume_or_load(self, path: str, *, resume: bool = True) -> dict:
        """Resume from the newest readable checkpoint, or load ``path`` (weights only) when there is none."""
        self.resumed_from = None
        if resume and self.files.last_checkpoint.exists():
            for candidate in self.resume_candidates():
                if not candidate.is_file():
                    print(f"{candidate.name} is missing (not uploaded yet?); trying the previous checkpoint.")
                    continue
                try:
                    extra = self.load(str(candidate))
                except UnreadableCheckpoint as exc:
                    self._parsed_url_during_load = None  # DetectionCheckpointer.load resets it only on success
                    print(f"{exc}; it may be half-written or half-uploaded. Trying the previous checkpoint.")
                    continue
                self.resumed_from = candidate
                self.saved = (candidate.name, int(extra.get("iteration", -1)) + 1)
                return extra
            print(f"No readable checkpoint in {self.files.dir}: starting from the initial weights.")
        return self.load(path, checkpointables=[])


class ProgressPrinter(EventWriter):
    """One short line per ``period`` iterations for the notebook, in place of detectron2's log lines.

    ``iter 1200/4600  eta 1:42:10  loss 0.812 (cls 0.12 box 0.20 mask 0.31 rpn 0.05)  lr 0.0049  val AP50 0.512@1000``.
    The ETA counts the validation passes still to come, at the duration of the last one.
    """

    def __init__(self, max_iter: int, period: int, eval_period: int = 0, stream=None):
        self.max_iter, self.period, self.eval_period = max_iter, period, eval_period
        self.stream = stream or sys.stdout
        self._printed: tuple | None = None

    def _eta(self, storage, done: int) -> str:
        try:
            seconds = storage.history("time").median(100) * (self.max_iter - done)
        except KeyError:
            return "?"
        latest = storage.latest()
        if self.eval_period and "eval_seconds" in latest:
            later = math.ceil(self.max_iter / self.eval_period) - done // self.eval_period
            seconds += max(0, later) * latest["eval_seconds"][0]
        return str(datetime.timedelta(seconds=int(seconds)))

    def write(self) -> None:
        storage = get_event_storage()
        done = min(storage.iter + 1, self.max_iter)
        latest = storage.latest()
        ap = latest.get(BEST_METRIC)
        key = (done, ap[1] if ap else None)
        if key == self._printed or (done % self.period and done < self.max_iter) or "total_loss" not in latest:
            return
        self._printed = key
        parts = [f"iter {done}/{self.max_iter}", f"eta {self._eta(storage, done)}"]
        loss = storage.history("total_loss").median(20)
        terms = " ".join(f"{short} {storage.history(k).median(20):.3g}" for k, short in LOSSES if k in latest)
        parts.append(f"loss {loss:.3f} ({terms})")
        if "lr" in latest:
            parts.append(f"lr {latest['lr'][0]:.3g}")
        if ap:
            parts.append(f"val AP50 {ap[0] / 100:.3f}@{ap[1]}")
        print("  ".join(parts), file=self.stream, flush=True)


class MetricsWriter(JSONWriter):
    """``metrics.jsonl``, appended through a file opened for each write: after Drive dropped and was
    remounted, a handle kept open would stay dead. A line cut by a failed write is cut off before the
    next one, and the rows count as written only once they are, so a retried write repeats them."""

    def __init__(self, json_file: str, window_size: int = 20):
        self._path, self._window_size, self._last_write = Path(json_file), window_size, -1

    def write(self):
        storage = get_event_storage()
        rows: dict[int, dict] = {}
        for key, (value, it) in storage.latest_with_smoothing_hint(self._window_size).items():
            if it > self._last_write:
                rows.setdefault(it, {})[key] = value
        if not rows:
            return
        text = "".join(json.dumps({**rows[it], "iteration": it}, sort_keys=True) + "\n" for it in sorted(rows))
        with open(self._path, "ab+") as fh:
            _cut_partial_line(fh)
            fh.write(text.encode())
            fh.flush()
            os.fsync(fh.fileno())
        self._last_write = max(rows)

    def close(self):
        pass


def _cut_partial_line(fh) -> None:
    """Drop the unfinished last line of an append-mode file (a write cut by a drop), so every line parses."""
    end = fh.seek(0, os.SEEK_END)
    start = fh.seek(max(0, end - 65536))
    tail = fh.read()
    if not tail or tail.endswith(b"\n"):
        return
    cut = tail.rfind(b"\n")
    if cut >= 0 or start == 0:
        fh.truncate(start + cut + 1)  # cut == -1 with start 0: the only line is unfinished
    else:
        fh.write(b"\n")  # a line longer than the window: end it; read_metrics skips it


class EventsWriter(TensorboardXWriter):
    """TensorBoard events; after a failed write the event file is closed and a new one started on the next try."""

    def write(self):
        try:
            super().write()
            self._writer.flush()
        except Exception:
            with contextlib.suppress(Exception):
                self._writer.close()
            self.__dict__.pop("_writer", None)
            raise


def progress_period(max_iter: int) -> int:
    """About 1% of the run, in multiples of 20 (detectron2 writes events every 20 iterations)."""
    return max(20, round(max_iter / 100 / 20) * 20)


class _WriteAfterEval(hooks.HookBase):
    """Write metrics right after each evaluation: the writers' own period (20) could merge two
    evaluations into one row and lose the first, which the best-checkpoint restore relies on."""

    def __init__(self, period: int, writers: list):
        self._period, self._writers = period, writers

    def after_step(self):
        next_iter = self.trainer.iter + 1
        if next_iter % self._period == 0 and next_iter != self.trainer.max_iter:
            for writer in self._writers:
                writer.write()


@contextlib.contextmanager
def _ddp_options(cfg):
    """While ``DefaultTrainer.__init__`` runs, its DDP wrapping gets :func:`distributed.ddp_options`.

    The constructor calls ``create_ddp_model(model, broadcast_buffers=False)`` and offers no other way
    to pass DDP arguments; without ``device_ids=None`` CPU workers (gloo) cannot train at all. The
    module's function is swapped back right after, and only when there is something to pass.
    """
    options = ddp_options(cfg)
    if not options or comm.get_world_size() == 1:
        yield
        return
    original = defaults.create_ddp_model
    defaults.create_ddp_model = functools.partial(original, **options)
    try:
        yield
    finally:
        defaults.create_ddp_model = original


class TinyVocTrainer(DefaultTrainer):
    """``DefaultTrainer`` with COCO bbox+segm validation, a best-AP50 checkpoint and the writers above."""

    def __init__(self, cfg):
        self.files = TrainFiles(Path(cfg.OUTPUT_DIR))
        self.metric_writers: list = []
        self.stopped = False  # a storage fault ended the run: after_train writes nothing more
        with _ddp_options(cfg):
            super().__init__(cfg)

    @classmethod
    def build_evaluator(cls, cfg, dataset_name):
        return build_evaluator(dataset_name)

    @classmethod
    def test(cls, cfg, model, evaluators=None):
        """Validate; pycocotools' printed tables go to ``log.txt``, the duration to the metrics."""
        started = time.perf_counter()
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            results = super().test(cfg, model, evaluators)
        logging.getLogger("detectron2").info(printed.getvalue())
        with contextlib.suppress(AssertionError):  # outside training there is no event storage
            get_event_storage().put_scalar("eval_seconds", time.perf_counter() - started, smoothing_hint=False)
        return results

    def build_writers(self):
        self.metric_writers = [MetricsWriter(str(self.files.metrics)), EventsWriter(str(self.files.dir))]
        printer = ProgressPrinter(self.max_iter, progress_period(self.max_iter), self.cfg.TEST.EVAL_PERIOD)
        return [printer, *self.metric_writers]

    def build_hooks(self):
        # called by DefaultTrainer.__init__ right after it made its checkpointer: swap in ours first
        model, trainer = self.checkpointer.model, weakref.proxy(self)
        self.checkpointer = AtomicCheckpointer(model, self.cfg.OUTPUT_DIR, trainer=trainer)
        hook_list = super().build_hooks()
        if self.cfg.TEST.EVAL_PERIOD > 0 and self.cfg.DATASETS.TEST and comm.is_main_process():
            best = hooks.BestCheckpointer(
                self.cfg.TEST.EVAL_PERIOD, self.checkpointer, BEST_METRIC, mode="max", file_prefix=self.files.best.stem
            )
            previous = best_from_metrics(self.files.metrics)
            if previous:
                best.best_metric, best.best_iter = previous
            where = next(i for i, h in enumerate(hook_list) if isinstance(h, hooks.EvalHook))
            hook_list[where + 1 : where + 1] = [best, _WriteAfterEval(self.cfg.TEST.EVAL_PERIOD, self.metric_writers)]
        return hook_list

    def after_step(self):
        for hook in self._hooks:
            self._run_hook(hook.after_step, f"iteration {self.iter + 1}: {type(hook).__name__}")

    def after_train(self):
        self.storage.iter = self.iter
        if self.stopped:  # the folder is gone or full: writing the final files would fail (or wait) again
            return
        for hook in self._hooks:
            self._run_hook(hook.after_train, f"end of training: {type(hook).__name__}")

    def _run_hook(self, call, what: str):
        """A hook's work through ``storage.retry_in_run``; a fault it cannot wait out stops the run with
        :meth:`last_words`."""

        def stop(error: OSError, waited: float | None) -> str:
            self.stopped = True
            return self.last_words(error, waited)

        return retry_in_run(call, what, self.files.dir, stop)

    def last_words(self, error: OSError, waited: float | None = None) -> str:
        """What stopped training, what is safe on Drive, what only this runtime holds, and what to do."""
        done = self.iter + 1
        saved, best = self.checkpointer.saved, self.checkpointer.saved_best
        if saved:
            safe = f"{saved[0]} (the last complete checkpoint: a re-run resumes from iteration {saved[1]})"
            resume = f"it resumes from iteration {saved[1]} of {self.max_iter}"
        else:
            safe = "no checkpoint of this run yet"
            resume = "it starts this run over"
        if best:
            safe += f", {best[0]} (from iteration {best[1]})"
        since = saved[1] if saved else self.start_iter
        lost = f"iterations {since}-{done} (in memory only)" if done > since else "no training"
        return last_words(
            error,
            f"Training at iteration {done} of {self.max_iter}",
            safe,
            f"{lost}, and whatever Drive had not uploaded yet",
            f"run 02_train again with the same settings: {resume}",
            waited,
        )

    def resume_or_load(self, resume: bool = True):
        """Resume from the newest readable checkpoint; first say what the previous runtime's uploads left out."""
        extra = self.checkpointer.resume_or_load(self.cfg.MODEL.WEIGHTS, resume=resume)
        if resume and comm.is_main_process():
            used = self.checkpointer.resumed_from
            report_unfinished_uploads(self.files, self.cfg.SOLVER.CHECKPOINT_PERIOD, used.name if used else None)
        if self.checkpointer.resumed_from is not None:
            if "trainer" not in extra and "iteration" in extra:  # a weights-only model_final.pth
                self.iter = extra["iteration"]
            self.start_iter = self.iter + 1
            if self.checkpointer.resumed_from.name != self.files.last_checkpoint.read_text().strip():
                print(f"Resuming from {self.checkpointer.resumed_from.name} instead.")


class LogFile(logging.FileHandler):
    """``log.txt``, reopened on the next line after a write failed because the folder stopped answering (the
    old handle stays dead after a remount); the lines logged while it does not answer are lost, not the run."""

    def emit(self, record):
        try:
            super().emit(record)
        except Exception as exc:  # opening the file again failed: the folder still does not answer
            if storage_fault(exc) is None:
                raise
            self.stream = None

    def handleError(self, record):
        if storage_fault(sys.exc_info()[1]) is None:
            return super().handleError(record)
        with contextlib.suppress(Exception):
            self.stream.close()
        self.stream = None


def _not_our_message(record: logging.LogRecord) -> bool:
    """detectron2 logs "Exception during training" with its traceback; a TinyVocError reaches the cell by itself."""
    return not (record.exc_info and isinstance(record.exc_info[1], TinyVocError))


@contextlib.contextmanager
def quiet_console(log_file: Path):
    """detectron2's INFO log into ``log_file`` only; warnings and errors still reach the cell."""
    logger = logging.getLogger("detectron2")
    consoles = [h for h in logger.handlers if type(h) is logging.StreamHandler]
    levels = [h.level for h in consoles]
    log_file.parent.mkdir(parents=True, exist_ok=True)
    to_file = LogFile(log_file)
    to_file.setFormatter(logging.Formatter("[%(asctime)s %(name)s]: %(message)s", datefmt="%m/%d %H:%M:%S"))
    to_file.setLevel(logging.INFO)
    logger.addHandler(to_file)
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    for handler in consoles:
        handler.setLevel(max(handler.level, logging.WARNING))
        handler.addFilter(_not_our_message)
    try:
        yield
    finally:
        logger.removeHandler(to_file)
        with contextlib.suppress(OSError):
            to_file.close()
        for handler, level in zip(consoles, levels):
            handler.setLevel(level)
            handler.removeFilter(_not_our_message)
