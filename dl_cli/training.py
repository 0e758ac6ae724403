"""From a validated config to a trained run folder (the data flow of DESIGN.md).

```
Config.data      ─► data.load   ─► Splits
Config.model     ─► Model       (shapes inferred from the data)
Config.optimizer ─► OPTIMIZERS  (+ SCHEDULES)
all of them      ─► Solver.train() ─► run folder
```
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__
from .config import dump_config, load_saved_config
from .data import DataError, Splits, build_augment, load
from .loggers import start_loggers
from .metrics import resolve_monitor
from .nn import ShapeError
from .nn.model import Model
from .registry import OPTIMIZERS, SCHEDULES
from .runs import Run, RunError, check_compatible, new_run_dir, versions
from .schema import Config
from .solver import Solver


def build_model(cfg: Config, in_shape: tuple[int, ...], dtype: str | None = None) -> Model:
    """The config's model for samples of ``in_shape``; a layer that does not fit its
    input is a ShapeError that starts with its key path (``model.layers.3 (maxpool)``,
    ``model.layers.2.layers.0 (affine)`` inside a residual block)."""
    return Model(cfg.model.layers, in_shape, loss=cfg.model.loss, init=cfg.model.init,
                 l1=cfg.regularization.l1, l2=cfg.regularization.l2,
                 dtype=dtype or cfg.train.dtype, seed=cfg.seed, path="model.layers")


@dataclass
class Assembled:
    """Everything a training run is made of, built from one config."""

    splits: Splits
    model: Model
    optimizer: object
    schedule: object | None
    augment: object | None


def integer_hint(y: np.ndarray) -> str:
    """Why whole-number targets (±1, say) were read as regression, and the fix."""
    values = np.unique(y)
    if not 1 < len(values) <= 100 or np.any(values != np.round(values)):
        return ""
    shown = ", ".join(f"{v:g}" for v in values[:6]) + (", …" if len(values) > 6 else "")
    mapping = ", ".join(f"{v:g} → {i}" for i, v in enumerate(values[:3]))
    return (f" (whole numbers {shown}, read as regression because class labels must be "
            f"0..K-1: for classes, map them, e.g. {mapping})")


def check_fits(model: Model, splits: Splits) -> None:
    """Refuse (ShapeError) a model whose output the loss cannot compare with the targets:
    a regression loss needs one output per target value; a class loss needs labels and
    a score per class on the last axis (one logit for binary_cross_entropy); a first
    layer reading token ids needs them (``check_tokens``)."""
    check_tokens(model, splits)
    loss, out = model.loss_fn, model.out_shape
    target = splits.train.y.shape[1:]
    name = f"model.loss '{loss.registered_name}'"
    if loss.task == "regression":
        values = math.prod(target)
        if math.prod(out) != values:
            raise ShapeError(f"{name}: the model gives {math.prod(out)} values per sample, the "
                             f"targets have {values}; set the last layer's units to {values}")
        return
    if splits.task != "classification":
        raise ShapeError(f"{name} needs class labels, but the data has real-valued targets"
                         f"{integer_hint(splits.train.y)}; use mse")
    classes = splits.num_classes
    if loss.task == "classification" and len(target) != loss.label_axes:
        takes = "a label at every step, (N, T)" if loss.label_axes else "one label per sample, (N,)"
        has = "one label per sample" if not target else f"labels of shape {target} per sample"
        other = "temporal_softmax_cross_entropy" if len(target) == 1 else "softmax_cross_entropy"
        raise ShapeError(f"{name} takes {takes}, but the data has {has}; use {other}")
    if loss.task == "binary":
        if classes > 2:
            raise ShapeError(f"{name} takes labels 0 and 1, but the data has {classes} "
                             f"classes; use softmax_cross_entropy")
        wanted = (*target, 1)
        fits = out == wanted
    else:
        wanted = (*target, classes)
        fits = out[:-1] == target and out[-1] >= classes
    if not fits:
        raise ShapeError(f"{name}: the model gives scores of shape {out} per sample, but "
                         f"{classes} classes need {wanted}; set the last layer's units to "
                         f"{wanted[-1]}")


def check_tokens(model: Model, splits: Splits) -> None:
    """Refuse (ShapeError naming the key) a first layer that reads token ids (embedding)
    given real-valued features, or ids beyond its vocabulary."""
    first = model.layers[0]
    if not first.takes_tokens:
        return
    key = f"model.layers.0 ({first.registered_name})"
    features = splits.train.X
    if not np.issubdtype(features.dtype, np.integer):
        raise ShapeError(f"{key} reads integer token ids, but the data gives {features.dtype} "
                         f"features: use a token data set (text) or another first layer")
    largest = max((int(part.X.max()) for part in (splits.train, splits.val, splits.test)
                   if part.X.size), default=-1)
    if largest >= first.vocab:
        raise ShapeError(f"model.layers.0.vocab: {first.vocab} ids are too few, the data's token "
                         f"ids go up to {largest}; set it to {largest + 1}")


def unused_scores(model: Model, splits: Splits) -> str | None:
    """A class model with more scores than the data has classes trains, but the extra
    scores are never a target: their softmax share is only ever pushed down. Often a
    typo in the last layer's units, so it is said (a text model sized for a larger
    vocabulary than its text uses is the legitimate case)."""
    if model.loss_fn.task != "classification" or splits.num_classes is None:
        return None
    scores, classes = model.out_shape[-1], splits.num_classes
    if scores <= classes:
        return None
    return (f"the model gives {scores} scores per sample but the data has {classes} classes: "
            f"scores {classes}..{scores - 1} are never a target; set the last layer's units "
            f"to {classes}")


def check_monitored_split(cfg: Config, model: Model, splits: Splits) -> None:
    """A monitored split must hold samples: a fraction of a small data set can round to
    none, and a run monitoring it would keep no best checkpoint and score no test."""
    task = model.loss_fn.task
    monitors = [cfg.checkpoint.monitor]
    if cfg.train.early_stopping is not None:
        monitors.append(cfg.train.early_stopping.monitor)
    for monitor in monitors:
        name = resolve_monitor(monitor, "auto", task)[0]
        if name.startswith("val/") and len(splits.val.X) == 0:
            total = len(splits.train.X) + len(splits.test.X)
            raise DataError(f"data.split.val: {cfg.data.split.val:g} of {total} "
                            f"sample{'s' * (total != 1)} rounds to none, and the run monitors {name}; use more samples "
                            f"or a larger fraction")


def assemble(cfg: Config, splits: Splits | None = None) -> Assembled:
    """Data (loaded from the config unless given), model, optimizer, schedule, augmentation."""
    if splits is None:
        splits = load(cfg.data, seed=cfg.seed, dtype=cfg.train.dtype)
    model = build_model(cfg, splits.in_shape)
    check_fits(model, splits)
    check_monitored_split(cfg, model, splits)
    return Assembled(
        splits=splits,
        model=model,
        optimizer=OPTIMIZERS.create(cfg.optimizer),
        schedule=SCHEDULES.create(cfg.schedule) if cfg.schedule is not None else None,
        augment=build_augment(cfg.data.augment, splits.in_shape, splits.train.X.dtype),
    )


def config_hash(cfg: Config) -> str:
    return hashlib.sha256(dump_config(cfg).encode()).hexdigest()[:16]


def make_solver(cfg: Config, parts: Assembled, run: Run | None, progress: bool,
                observers=()) -> Solver:
    return Solver(parts.model, parts.splits, parts.optimizer, cfg.train,
                  schedule=parts.schedule, checkpoint=cfg.checkpoint, augment=parts.augment,
                  seed=cfg.seed, run=run, progress=progress, observers=observers)


def start(cfg: Config, run_dir: Path | None = None) -> Run:
    """A new run folder holding the resolved config; a folder that already holds a run
    (or a sweep) is refused, so its checkpoints are never overwritten by another run."""
    path = Path(run_dir) if run_dir is not None else new_run_dir(cfg.runs_dir, cfg.name)
    if (path / "ledger.jsonl").exists():
        raise RunError(f"{path} is a sweep folder; a run goes in a folder of its own")
    run = Run(path)
    run.acquire()
    if (path / "config.yaml").exists():
        run.release()
        raise RunError(f"{path} already holds a run; continue it with "
                       f"dl train --resume {path}, or choose another folder")
    run.write_text("config.yaml", dump_config(cfg))
    return run


def resume(run_dir: Path) -> tuple[Config, Run]:
    """Reopen a run folder: its config and its lock."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").exists():
        raise RunError(f"{run_dir} is not a run folder (no config.yaml)")
    cfg = load_saved_config(run_dir / "config.yaml")
    run = Run(run_dir)
    run.acquire()
    return cfg, run


def resume_state(run: Run, model: Model) -> tuple[dict, dict | None]:
    """The run's last and best checkpoints, refused (RunError naming the file) when one
    is unreadable or its names, shapes or values do not fit ``model``."""
    states = {}
    for kind in ("last", "best"):
        path = run.checkpoints / f"{kind}.npz"
        if kind == "best" and not path.exists():
            continue
        try:
            states[kind] = state = run.load_checkpoint(kind)
            check_compatible(model.params, state["params"], "parameters", path)
            check_compatible(model.buffers, state["buffers"], "buffers", path)
        except RunError as error:
            raise RunError(f"{error}; nothing was resumed and the run folder is "
                           f"unchanged") from None
    return states["last"], states.get("best")


def version_changes(meta: dict) -> list[str]:
    """How the software resuming a checkpoint differs from the software that wrote it."""
    written, now = meta.get("versions", {}), versions()
    return [f"resuming a checkpoint written with {name} {written.get(name, 'unknown')} "
            f"under {name} {now[name]}; results may differ from an uninterrupted run"
            for name in now if written.get(name) != now[name]]


def train(cfg: Config, run: Run, parts: Assembled | None = None, resuming: bool = False,
          progress: bool = True, warn=None, score_test: bool = True) -> dict:
    """Train into ``run`` (new or resumed) and write ``summary.json``; ``score_test``
    False leaves the test split alone unless training stops early (see ``Solver.train``).

    Raises the Solver's ``Diverged`` and ``Interrupted`` after recording the state, and
    ``LoggerError`` before training when a logger of ``train.loggers`` cannot start; the
    run's lock is released and the loggers closed whatever happens. Warnings (a logger
    failing mid-run, too) go to ``train.log`` and to ``warn(message)`` when given.
    """
    def caution(message: str) -> None:
        run.log(f"warning: {message}")
        if warn is not None:
            warn(message)

    loggers = []
    try:
        parts = parts or assemble(cfg)
        loggers = start_loggers(cfg, run.path, caution)
        solver = make_solver(cfg, parts, run, progress, observers=loggers)
        if resuming:
            last, best = resume_state(run, parts.model)
            for message in version_changes(last["meta"]):
                caution(message)
            solver.restore(last, best)  # checks the optimizer's state before any write
            meta = last["meta"]
            run.truncate_metrics(meta["epoch"], meta["step"])
            run.log(f"dl {__version__}: resuming {cfg.name} after epoch {meta['epoch']}, "
                    f"iteration {meta['iteration']} (step {meta['step']})")
        else:
            run.log(f"dl {__version__}: training {cfg.name} into {run.path}")
            extra = unused_scores(parts.model, parts.splits)
            for message in [*parts.splits.warnings, *([extra] if extra else [])]:
                caution(message)
            if parts.splits.info["vocab"] is not None:
                run.write_text("vocab.json", json.dumps(parts.splits.info["vocab"]) + "\n")
        base = {"name": cfg.name, "run_dir": str(run.path), "config_hash": config_hash(cfg),
                "environment": versions(), "data": parts.splits.info,
                "params": parts.model.num_params()}
        try:
            summary = solver.train(score_test)
        except Exception as error:
            with contextlib.suppress(OSError):  # the error being raised says more
                run.write_summary({**base, **solver.finish(score_test=False)})
                run.log(f"{solver.status}: {error}")
            raise
        summary = {**base, **summary}
        run.write_summary(summary)
        run.log(f"{summary['status']}: best {summary['monitor']} {summary['best_value']} "
                f"at epoch {summary['best_epoch']}; test {summary['test']}")
        return summary
    finally:
        for logger in loggers:
            logger.close()
        run.release()
