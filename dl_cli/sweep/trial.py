"""One trial: a pure function of a resolved config and a folder, run by any executor.

``run_trial`` is importable at module level, takes and returns plain data, and never
raises: an exception becomes a ``failed`` result with the traceback in the trial folder's
``error.txt``, a non-finite loss a ``diverged`` result. Given ``until`` it trains only up
to that many epochs (a rung of successive halving) and reports ``paused``; called again
with a larger ``until`` it continues from ``checkpoints/last.npz``, with the learning-rate
schedule still spanning the configured epochs, so the run ends as an uninterrupted one.
It trains with ``threads`` BLAS threads wherever it runs, so its numbers are the same in
process, in a pool or on a cluster.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import math
import shutil
import time
import traceback
from pathlib import Path

from threadpoolctl import threadpool_limits

from .. import training
from ..config.validation import validate
from ..continuation import schedule_with_horizon
from ..crossval import assemble_fold
from ..layout import RunLayout
from ..schedules import Schedule
from ..runs import Run
from ..schema import Config
from ..stopping import Diverged, Interrupted
from ..storage import RunError, write_text


class FixedHorizon(Schedule):
    """A schedule that keeps the configured run length as its horizon while a rung trains
    only the first epochs: ``lr_at(t, lr₀, rung) = schedule.lr_at(t, lr₀, total)``."""

    def __init__(self, schedule: Schedule, total_epochs: int):
        self.schedule, self.total_epochs = schedule, total_epochs

    def lr_at(self, epoch, base_lr, total_epochs):
        return self.schedule.lr_at(epoch, base_lr, self.total_epochs)

    def observe(self, value, goal="min"):
        self.schedule.observe(value, goal)

    def state_dict(self):
        return self.schedule.state_dict()

    def load_state_dict(self, state):
        self.schedule.load_state_dict(state)


def finished(summary: dict, cfg: Config) -> bool:
    """Trained to the end: every epoch, stopped early, or diverged."""
    status = summary.get("status")
    return status in ("early_stopped", "diverged") or (
        status == "completed" and summary.get("epochs", 0) >= cfg.train.epochs)


def train_run(cfg: Config, run_dir: Path, until: int | None, fold: tuple[int, int] | None,
              break_lock: bool = False) -> dict:
    """Train the run in ``run_dir`` for ``until`` epochs in all (every epoch when None),
    continuing from its last checkpoint when it has one; return its summary, whose
    status is ``paused`` when a rung ends before the configured epochs. ``break_lock``:
    take the folder over from a process of another machine (``Run.acquire``)."""
    target = min(until or cfg.train.epochs, cfg.train.epochs)
    summary = Run(run_dir).read_summary()
    status = summary.get("status")
    if status in ("early_stopped", "diverged") or (
            status in ("completed", "paused") and summary["epochs"] >= target):
        return summary
    parts = assemble_fold(cfg, *fold) if fold else training.assemble(cfg)
    resuming = RunLayout(run_dir).checkpoint("last").exists()
    if resuming:
        _, run = training.resume(run_dir, break_lock=break_lock)
    else:  # what a trial killed in its first epoch left, unless another process holds it
        Run(run_dir).acquire(break_lock)
        shutil.rmtree(run_dir, ignore_errors=True)
        run = training.start(cfg, run_dir)
    if fold:
        run.log(f"fold {fold[1] + 1} of {fold[0]}: {parts.splits.info['sizes']}")
    last_rung = target == cfg.train.epochs
    if not last_rung:
        if parts.schedule is not None:
            parts.schedule = FixedHorizon(parts.schedule, cfg.train.epochs)
        cfg = dataclasses.replace(cfg, schedule=schedule_with_horizon(cfg),  # as recorded
                                  train=dataclasses.replace(cfg.train, epochs=target))
    try:  # the test split is scored once, when the trial ends
        summary = training.train(cfg, run, parts, resuming=resuming, progress=False,
                                 score_test=last_rung)
    except Diverged:
        return run.read_summary()
    if not last_rung and summary["status"] == "completed":  # `dl runs` shows it unfinished
        summary = {**summary, "status": "paused"}
        run.write_summary(summary)
    return summary


def best_metric(records: list[dict], metric: str, goal: str, until: int | None = None) -> float | None:
    """The best finite value of ``metric`` over the epochs logged up to ``until`` (all when
    None), None when there is none. A rung's score never sees a later epoch, even when a
    trial interrupted on its way further resumes from a checkpoint past the rung."""
    values = [r[metric] for r in records if isinstance(r.get(metric), (int, float))
              and math.isfinite(r[metric]) and (until is None or r.get("epoch", 0) <= until)]
    if not values:
        return None
    return max(values) if goal == "max" else min(values)


def run_trial(config: dict, trial_dir: str, until: int | None = None, kfold: int | None = None,
              metric: str = "val/acc", goal: str = "max", threads: int = 1,
              break_lock: bool = False) -> dict:
    """Train one trial into ``trial_dir`` (``fold-i/`` subfolders with ``kfold``) and return
    ``{status, metric, epochs, until, time_s, error, fold_metrics}``.

    status: ``completed`` (every epoch, or early stopping), ``paused`` (reached ``until``),
    ``diverged``, ``failed`` or ``interrupted`` (SIGTERM; continue by calling again).
    metric: the best value of ``metric`` over the epochs trained, the mean over folds.
    """
    started = time.perf_counter()
    trial_dir = Path(trial_dir)
    result = {"status": "failed", "metric": None, "epochs": 0, "until": until, "error": None}
    try:
        cfg = validate(config, keep_components=True)
        folds = [None] if kfold is None else [(kfold, i) for i in range(kfold)]
        summaries, scores = [], []
        for fold in folds:
            run_dir = trial_dir if fold is None else RunLayout(trial_dir).fold(fold[1])
            with threadpool_limits(limits=threads, user_api="blas"):
                summaries.append(train_run(cfg, run_dir, until, fold, break_lock))
            scores.append(best_metric(Run(run_dir).read_metrics(), metric, goal, until))
            if summaries[-1].get("status") == "diverged":
                break
        if any(s.get("status") == "diverged" for s in summaries):
            result["status"] = "diverged"
        else:
            result["status"] = "completed" if all(finished(s, cfg) for s in summaries) else "paused"
        result["epochs"] = max(s.get("epochs", 0) for s in summaries)
        if all(score is not None for score in scores):
            result["metric"] = sum(scores) / len(scores)
        if kfold is not None:
            result["fold_metrics"] = scores
    except Interrupted as error:
        result.update(status="interrupted", error=str(error))
    except Exception as error:
        if isinstance(error, OSError) and error.errno in NO_SPACE_ERRNOS:
            # not the trial's fault: a resume continues it from its last checkpoint
            result.update(status="interrupted", error=f"{NO_SPACE}: {error}")
        else:
            with contextlib.suppress(RunError, OSError):  # the result says what failed
                trial_dir.mkdir(parents=True, exist_ok=True)
                write_text(RunLayout(trial_dir).error, traceback.format_exc())
            result.update(status="failed", error=f"{type(error).__name__}: {error}")
    result["time_s"] = round(time.perf_counter() - started, 3)
    return result


NO_SPACE = "no space left to write the trial"  # how the error of its result starts
NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # a full disk, a quota, a size limit
