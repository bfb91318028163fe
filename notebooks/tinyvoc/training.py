"""Training with validation mAP, a best-AP50 checkpoint, and resume after a Colab disconnect.

It is detectron2's ``DefaultTrainer`` with three changes: COCO evaluation (bbox + segm) of the
validation split every ``TEST.EVAL_PERIOD`` iterations, a ``model_best.pth`` that follows the best
validation mask AP50 (restored from the metrics file on resume, so a restart cannot forget it),
and writers that print progress and append metrics to ``output/train/metrics.jsonl``.
Re-running after a finished run does not train again.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .atomic import atomic_path, write_bytes, write_json
from .dataset import DatasetRecord, register_all
from .errors import TinyVocError
from .paths import Outputs, require
from .profiles import build_config, resolve_profile
from .weights import fetch

BEST_METRIC = "segm/AP50"


def read_metrics(path: Path) -> list[dict]:
    """Rows of the metrics file, one per iteration (a resumed run's repeated rows: the last wins)."""
    rows: dict[int, dict] = {}
    if not Path(path).exists():
        return []
    for line in Path(path).read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a crash mid-write
        rows.setdefault(row["iteration"], {}).update(row)
    return [rows[k] for k in sorted(rows)]


def best_from_metrics(path: Path) -> tuple[float, int] | None:
    evals = [(r[BEST_METRIC], r["iteration"]) for r in read_metrics(path) if BEST_METRIC in r]
    return max(evals, key=lambda e: (e[0], -e[1])) if evals else None


def _atomic_checkpointer_class():
    from detectron2.checkpoint import DetectionCheckpointer

    class AtomicCheckpointer(DetectionCheckpointer):
        """Checkpoints and the ``last_checkpoint`` tag written to a temporary file, then renamed.

        A process killed mid-save (a Colab disconnect) leaves the previous files intact, so resume
        and ``model_best.pth`` never meet a half-written file. Saving the best model does not move
        the resume tag (detectron2's would), so ``last_checkpoint`` ends at ``model_final.pth``.
        """

        def save(self, name: str, **kwargs) -> None:
            import torch

            data = {"model": self.model.state_dict()}
            data.update({key: obj.state_dict() for key, obj in self.checkpointables.items()})
            data.update(kwargs)
            target = Path(self.save_dir) / f"{name}.pth"
            self.logger.info(f"Saving checkpoint to {target}")
            with atomic_path(target) as tmp:
                torch.save(data, tmp)
            if name != "model_best":  # the resume point stays the periodic/final checkpoint
                self.tag_last_checkpoint(target.name)

        def tag_last_checkpoint(self, last_filename_basename: str) -> None:
            write_bytes(Path(self.save_dir) / "last_checkpoint", last_filename_basename.encode())

    return AtomicCheckpointer


def _trainer_class():
    from detectron2.engine import DefaultTrainer, hooks
    from detectron2.evaluation import COCOEvaluator
    from detectron2.utils.events import CommonMetricPrinter, JSONWriter

    class _WriteAfterEval(hooks.HookBase):
        """Write metrics right after each evaluation: the writer's own period (20) could merge two
        evaluations into one row and lose the first, which the best-checkpoint restore relies on."""

        def __init__(self, period: int, writers: list):
            self._period, self._writers = period, writers

        def after_step(self):
            next_iter = self.trainer.iter + 1
            if next_iter % self._period == 0 and next_iter != self.trainer.max_iter:
                for writer in self._writers:
                    writer.write()

    class TinyVocTrainer(DefaultTrainer):
        metrics_path: str = "metrics.jsonl"

        @classmethod
        def build_evaluator(cls, cfg, dataset_name):
            return COCOEvaluator(dataset_name, tasks=("bbox", "segm"), distributed=False, use_fast_impl=False)

        def build_writers(self):
            return [CommonMetricPrinter(self.max_iter), JSONWriter(self.metrics_path)]

        def build_hooks(self):
            # called by DefaultTrainer.__init__ right after it made its checkpointer: swap in ours first
            import weakref

            self.checkpointer = _atomic_checkpointer_class()(
                self.checkpointer.model, self.cfg.OUTPUT_DIR, trainer=weakref.proxy(self)
            )
            hook_list = super().build_hooks()
            if self.cfg.TEST.EVAL_PERIOD > 0 and self.cfg.DATASETS.TEST:
                best = hooks.BestCheckpointer(
                    self.cfg.TEST.EVAL_PERIOD, self.checkpointer, BEST_METRIC, mode="max", file_prefix="model_best"
                )
                previous = best_from_metrics(Path(self.metrics_path))
                if previous:
                    best.best_metric, best.best_iter = previous
                where = next(i for i, h in enumerate(hook_list) if isinstance(h, hooks.EvalHook))
                writer = next(h for h in hook_list if isinstance(h, hooks.PeriodicWriter))
                json_writers = [w for w in writer._writers if isinstance(w, JSONWriter)]
                hook_list[where + 1 : where + 1] = [best, _WriteAfterEval(self.cfg.TEST.EVAL_PERIOD, json_writers)]
            return hook_list

    return TinyVocTrainer


@dataclass
class RunRecord:
    """``output/train/run.json``: what was trained, how far, and which checkpoints exist."""

    profile: str
    max_iter: int
    iteration: int
    finished: bool
    seconds: float
    seconds_per_iter: float | None
    best_ap50: float | None
    best_iter: int | None
    checkpoint_final: str | None
    checkpoint_best: str | None


def _config_signature(cfg) -> str:
    """The config as saved and compared on resume, without this runtime's paths (a new runtime may resume)."""
    portable = cfg.clone()
    portable.defrost()
    portable.OUTPUT_DIR = ""
    portable.MODEL.WEIGHTS = Path(cfg.MODEL.WEIGHTS).name
    return portable.dump()


def prepare_config(
    outputs: Outputs,
    profile: str = "auto",
    max_iter: int | None = None,
    allow_cpu: bool = False,
    overrides: list | None = None,
):
    """Resolve the profile into a detectron2 config for this dataset, with local weights."""
    record = DatasetRecord.load(outputs)
    register_all(record)
    profile = resolve_profile(profile, allow_cpu=allow_cpu)
    cfg = build_config(profile, len(record.class_names), str(outputs.train_dir))
    if not record.val_split:
        cfg.DATASETS.TEST = ()
        cfg.TEST.EVAL_PERIOD = 0
    if max_iter:
        cfg.SOLVER.MAX_ITER = int(max_iter)
        cfg.SOLVER.STEPS = tuple(s for s in cfg.SOLVER.STEPS if s < max_iter)
    if overrides:
        cfg.merge_from_list([str(x) for x in overrides])
    cfg.MODEL.WEIGHTS = fetch(cfg.MODEL.WEIGHTS)
    return profile, cfg


def train(
    outputs: Outputs,
    profile: str = "auto",
    max_iter: int | None = None,
    resume: bool = True,
    allow_cpu: bool = False,
    overrides: list | None = None,
) -> RunRecord:
    """Train (or resume, or skip when already finished with the same config); return the run record."""
    from detectron2.utils.env import seed_all_rng
    from detectron2.utils.logger import setup_logger

    setup_logger(name="detectron2", abbrev_name="d2")
    profile, cfg = prepare_config(outputs, profile, max_iter, allow_cpu, overrides)
    train_dir = outputs.train_dir
    train_dir.mkdir(parents=True, exist_ok=True)
    config_text = _config_signature(cfg)
    previous_config = outputs.config.read_text() if outputs.config.exists() else None
    if previous_config is not None and previous_config != config_text:
        if resume and (train_dir / "last_checkpoint").exists():
            raise TinyVocError(
                f"{train_dir} holds a run with a different config ({outputs.config}). Set RESUME=False to "
                "start over (its checkpoints will be replaced), or choose another PROJECT_DIR."
            )
    if resume and outputs.train_record.exists() and previous_config == config_text:
        done = RunRecord(**json.loads(outputs.train_record.read_text()))
        if done.finished:
            print(
                f"Training already finished ({done.iteration} iterations, profile {done.profile}); not training again."
            )
            return done
    if not resume:
        for stale in [
            *train_dir.glob("model_*.pth"),
            train_dir / "last_checkpoint",
            outputs.metrics,
            outputs.train_record,
        ]:
            stale.unlink(missing_ok=True)
    write_bytes(outputs.config, config_text.encode())

    seed_all_rng(cfg.SEED)
    trainer_class = _trainer_class()
    trainer_class.metrics_path = str(outputs.metrics)
    trainer = trainer_class(cfg)
    trainer.resume_or_load(resume=resume)
    start_iter = trainer.start_iter
    if start_iter:
        print(f"Resuming from iteration {start_iter} of {cfg.SOLVER.MAX_ITER}")
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    best = best_from_metrics(outputs.metrics)
    run = RunRecord(
        profile=profile,
        max_iter=cfg.SOLVER.MAX_ITER,
        iteration=trainer.iter,
        finished=trainer.iter >= cfg.SOLVER.MAX_ITER,
        seconds=round(seconds, 1),
        seconds_per_iter=round(seconds / max(1, trainer.iter - start_iter), 3),
        best_ap50=best[0] / 100 if best else None,
        best_iter=best[1] if best else None,
        checkpoint_final="model_final.pth" if (train_dir / "model_final.pth").exists() else None,  # in train_dir
        checkpoint_best="model_best.pth" if (train_dir / "model_best.pth").exists() else None,
    )
    write_json(outputs.train_record, asdict(run), indent=2)
    return run


def chosen_checkpoint(outputs: Outputs, which: str = "best") -> Path:
    """The checkpoint notebooks 03/04 use: ``best`` (falls back to final), ``final``, or a path."""
    train_dir = outputs.train_dir
    if which not in ("best", "final"):
        path = Path(which)
        if not path.exists():
            raise TinyVocError(f"checkpoint {path} not found")
        return path
    candidates = [train_dir / "model_best.pth", train_dir / "model_final.pth"]
    if which == "final":
        candidates = candidates[1:]
    for path in candidates:
        if path.exists():
            return path
    raise TinyVocError(f"No trained checkpoint in {train_dir}. Run 02_train.ipynb first (with the same PROJECT_DIR).")


def load_checkpoint_state(path: str | Path, num_classes: int) -> dict:
    """Read a checkpoint's weights, with a clear error when it is truncated or for another dataset.

    detectron2's own loader only logs a warning when shapes differ and carries on with random
    weights for the class heads, which silently gives a useless model; here that is an error.
    """
    import torch

    path = Path(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same thing here
        raise TinyVocError(
            f"{path} cannot be read as a checkpoint ({type(exc).__name__}: {exc}); it may be truncated. "
            "Choose another CHECKPOINT, or delete it and re-run 02_train.ipynb to resume from the last good one."
        ) from None
    state = data.get("model") if isinstance(data, dict) else None
    if not isinstance(state, dict):
        raise TinyVocError(f"{path} is not a detectron2 training checkpoint (no 'model' weights in it)")
    head = state.get("roi_heads.box_predictor.cls_score.weight")
    if head is not None and head.shape[0] != num_classes + 1:
        raise TinyVocError(
            f"{path} was trained for {head.shape[0] - 1} classes, but this dataset has {num_classes}. "
            "Use a checkpoint trained on this dataset (02_train.ipynb with the same PROJECT_DIR)."
        )
    return state


def load_trained_config(outputs: Outputs):
    """The config notebook 02 saved, with the dataset registered so metadata is available."""
    from detectron2.config import get_cfg

    require(outputs.config, "02_train.ipynb", "The training config")
    register_all(DatasetRecord.load(outputs))
    cfg = get_cfg()
    cfg.merge_from_file(str(outputs.config))
    return cfg
