"""From a validated config to a trained run folder (the data flow of docs/design.md).

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
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .checkpoints import check_compatible, versions
from .components import build_model, component
from .config import dump_config, load_saved_config
from .continuation import check_same_config, nothing_left, trained_config
from .data import Splits, build_augment, load
from .fit_checks import check_fits, check_monitored_split, unused_scores
from .inputs import Inputs
from .layout import RunLayout, SweepLayout
from .loggers import Guarded, Logger, start_loggers
from .nn.model import Model
from .registry import OPTIMIZERS, SCHEDULES
from .runs import Run, new_run_dir
from .schema import Config
from .numbers import figure, scores_text
from .progress import EpochLines
from .solver import Solver
from .stopping import Interrupted
from .storage import RunError, refuse_links, write_text


class Finished(RuntimeError):
    """A resumed run has nothing left to train; its folder is unchanged."""


@dataclass
class Assembled:
    """Everything a training run is made of, built from one config."""

    splits: Splits
    model: Model
    optimizer: object
    schedule: object | None
    augment: object | None


def assemble(cfg: Config, splits: Splits | None = None) -> Assembled:
    """Data (loaded from the config unless given), model, optimizer, schedule, augmentation."""
    if splits is None:
        splits = load(cfg.data, seed=cfg.seed, dtype=cfg.train.dtype, components=cfg.components)
    model = build_model(cfg, splits.in_shape)
    check_fits(model, splits)
    check_monitored_split(cfg, model, splits)
    return Assembled(
        splits=splits,
        model=model,
        optimizer=component(cfg, "optimizer", cfg.optimizer, OPTIMIZERS),
        schedule=component(cfg, "schedule", cfg.schedule, SCHEDULES) if cfg.schedule is not None else None,
        augment=build_augment(cfg.data.augment, splits.in_shape, splits.train.X.dtype,
                              image_targets=splits.train.y.ndim > 2),  # (N, H, W), (N, C, H, W)
    )


def config_hash(cfg: Config) -> str:
    return hashlib.sha256(dump_config(cfg).encode()).hexdigest()[:16]


def make_solver(cfg: Config, parts: Assembled, run: Run | None, progress: bool,
                cluster=None, log=None, observers=()) -> Solver:
    """The Solver of the config: in this process, or on the workers of ``cluster``
    (``distributed.cluster.Cluster``) as ``cfg.parallel`` says; ``log`` hears of lost
    workers, ``observers`` of the training's events (``Solver``)."""
    options = dict(schedule=parts.schedule, checkpoint=cfg.checkpoint, augment=parts.augment,
                   seed=cfg.seed, run=run, progress=progress, observers=observers,
                   record={"config": trained_config(cfg)})
    if cluster is None:
        return Solver(parts.model, parts.splits, parts.optimizer, cfg.train, **options)
    parallel = cfg.parallel
    if parallel.mode == "sync":
        from .distributed.dask_sync import DaskSource

        source = DaskSource(cluster.client, parts.model, parts.splits, cfg, parallel.workers,
                            parallel.wait, log)
        return Solver(parts.model, parts.splits, parts.optimizer, cfg.train, source=source,
                      **options)
    from .distributed.async_training import AsyncSolver

    return AsyncSolver(parts.model, parts.splits, parts.optimizer, cfg.train, cluster=cluster,
                       config=cfg, log=log, **options)


def start(cfg: Config, run_dir: Path | None = None, break_lock: bool = False) -> Run:
    """A new run folder holding the resolved config; a folder that already holds a run
    (or a sweep) is refused, so its checkpoints are never overwritten by another run.
    ``break_lock``: see ``Run.acquire``."""
    path = Path(run_dir) if run_dir is not None else new_run_dir(cfg.runs_dir, cfg.name)
    if SweepLayout(path).is_sweep:
        raise RunError(f"{path} is a sweep folder; a run goes in a folder of its own")
    run = Run(path)
    run.acquire(break_lock)
    if run.layout.is_run:
        run.release()
        raise RunError(f"{path} already holds a run; continue it with "
                       f"dl train --resume {path}, or choose another folder")
    write_text(run.layout.config, dump_config(cfg))
    return run


def resume(run_dir: Path, allow_plugins: bool = False,
           break_lock: bool = False) -> tuple[Config, Run]:
    """Reopen a run folder: its config (refused when it names plugins not yet imported,
    unless ``allow_plugins``) and its lock (``break_lock``: see ``Run.acquire``)."""
    layout = RunLayout(run_dir)
    refuse_links(layout.path, layout.entries())
    if not layout.is_run:
        raise RunError(f"{run_dir} is not a run folder (no config.yaml)")
    cfg = load_saved_config(layout.config, allow_plugins)
    run = Run(run_dir)
    run.acquire(break_lock)
    return cfg, run


def resume_state(run: Run, model: Model, cfg: Config) -> tuple[dict, dict | None]:
    """The run's last and best checkpoints, refused (RunError naming the file) when one
    is unreadable, was trained with another config than ``cfg`` (``check_same_config``),
    or its names, shapes or values do not fit ``model``."""
    states = {}
    for kind in ("last", "best"):
        path = run.layout.checkpoint(kind)
        if kind == "best" and not path.exists():
            continue
        try:
            states[kind] = state = run.load_checkpoint(kind)
            if kind == "last":
                check_same_config(cfg, state["meta"], run.layout.config, path)
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


def outcome_line(summary: dict) -> str:
    """How a run ended, in ``train.log``: ``completed: best val/acc 0.9777 at epoch 4 of 5;
    test/loss 0.09436  test/acc 0.9694``."""
    test = scores_text(summary["test"]) if summary["test"] else "test split not scored"
    return (f"{summary['status']}: best {summary['monitor']} {figure(summary['best_value'])} "
            f"at epoch {summary['best_epoch']} of {summary['epochs']}; {test}")


def train(cfg: Config, run: Run, parts: Assembled | None = None, resuming: bool = False,
          progress: bool = True, warn=None, score_test: bool = True, cluster=None,
          loggers: list[Logger] | None = None, say=None) -> dict:
    """Train into ``run`` (new or resumed) and write ``summary.json``; ``score_test``
    False leaves the test split alone unless training stops early (see ``Solver.train``).
    A config with ``parallel`` trains on the Dask workers of ``cluster``
    (``distributed.cluster.connect``), or of a LocalCluster started for the run.
    ``loggers``: those of ``train.loggers``, started before the run folder was made
    (``loggers.start_loggers``); when None they are started here.

    Raises the Solver's ``Diverged``, ``Interrupted`` and ``WorkersLost`` after recording
    the state, ``Finished`` for a resumed run with nothing left to train
    (``continuation``), before writing anything or opening a logger, and ``LoggerError``
    before training when a logger of ``train.loggers`` cannot start; the run's lock is
    released and the loggers' records of the run closed whatever happens. A run to resume
    that stopped before its first checkpoint trains from the start (the same config and
    seed: the same run). Warnings (a logger failing mid-run, too) go to ``train.log`` and
    to ``warn(message)`` when given; each epoch's line (``progress.epoch_line``) goes to
    ``train.log`` and to ``say(line)`` when given.
    """
    def caution(message: str) -> None:
        run.log(f"warning: {message}")
        if warn is not None:
            warn(message)

    def tell(line: str) -> None:
        run.log(line)
        if say is not None:
            say(line)

    observers: list[Guarded] = []
    try:
        parts = parts or assemble(cfg)
        if resuming and not run.layout.checkpoint("last").exists():
            run.start_over()
            caution(f"{run.path} stopped before its first checkpoint: training it from the start")
            resuming = False
        with contextlib.ExitStack() as stack:
            if cfg.parallel is None:
                cluster = None
            elif cluster is None:
                from .distributed.cluster import connect

                cluster = connect(cfg.parallel.workers, None, quiet=True)
                stack.callback(cluster.close)
            solver = make_solver(cfg, parts, run, progress, cluster, log=caution)
            last = None
            if resuming:
                last, best = resume_state(run, parts.model, cfg)
                solver.restore(last, best)  # checks the optimizer's state before any write
                done = nothing_left(cfg, last["meta"], run.path)
                if done is not None:
                    raise Finished(done)
            run.keep_in_checkpoints(Inputs.from_splits(parts.splits).arrays())
            observers = [Guarded(logger, caution)
                         for logger in (start_loggers(cfg) if loggers is None else loggers)]
            for observer in observers:
                observer.open(run.path)
            # the line of an epoch first, then the loggers' work
            solver.observers += [EpochLines(solver, tell), *observers]
            if cluster is not None:
                run.log(f"training on {cfg.parallel.workers} Dask workers of {cluster.where} "
                        f"({cfg.parallel.mode})")
            return _train(cfg, run, parts, solver, last, score_test, caution)
    finally:
        for observer in observers:
            observer.close()
        run.release()


def _train(cfg: Config, run: Run, parts: Assembled, solver: Solver, last: dict | None,
           score_test: bool, caution) -> dict:
    """The run's training with the Solver made for it: new, or resumed from the ``last``
    checkpoint the Solver was restored from."""
    if last is not None:
        meta = last["meta"]
        for message in version_changes(meta):
            caution(message)
        if dump_config(load_saved_config(run.layout.config)) != dump_config(cfg):
            write_text(run.layout.config, dump_config(cfg))  # trained longer
        run.truncate_metrics(meta["epoch"], meta["step"])
        run.log(f"dl {__version__}: resuming {cfg.name} after epoch {meta['epoch']}, "
                f"iteration {meta['iteration']} (step {meta['step']})")
    else:
        run.log(f"dl {__version__}: training {cfg.name} into {run.path}")
        extra = unused_scores(parts.model, parts.splits)
        for message in [*parts.splits.warnings, *([extra] if extra else [])]:
            caution(message)
        if parts.splits.info["vocab"] is not None:
            write_text(run.layout.vocab, json.dumps(parts.splits.info["vocab"]) + "\n")
    base = {"name": cfg.name, "run_dir": str(run.path), "config_hash": config_hash(cfg),
            "environment": versions(), "data": parts.splits.info,
            "params": parts.model.num_params()}
    try:
        summary = solver.train(score_test)
    except Exception as error:
        with contextlib.suppress(OSError):  # the error being raised says more
            run.write_summary({**base, **solver.finish(score_test=False)})
            run.log(str(error) if isinstance(error, Interrupted) else f"{solver.status}: {error}")
        raise
    summary = {**base, **summary}
    run.write_summary(summary)
    run.log(outcome_line(summary))
    return summary
