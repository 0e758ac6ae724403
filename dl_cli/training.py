"""From a validated config to a trained run folder (the data flow of DESIGN.md).

```
Config.data      ─► data.load   ─► Splits
Config.model     ─► Model       (shapes inferred from the data)
Config.optimizer ─► OPTIMIZERS  (+ SCHEDULES)
all of them      ─► Solver.train() ─► run folder
```
"""

from __future__ import annotations

import hashlib
import platform
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__
from .config import dump_config, load_config
from .data import Splits, build_augment, load
from .nn.model import Model
from .registry import OPTIMIZERS, SCHEDULES
from .runs import Run, RunError, new_run_dir
from .schema import Config
from .solver import Solver


def build_model(cfg: Config, in_shape: tuple[int, ...], dtype: str | None = None) -> Model:
    return Model(cfg.model.layers, in_shape, loss=cfg.model.loss, init=cfg.model.init,
                 l1=cfg.regularization.l1, l2=cfg.regularization.l2,
                 dtype=dtype or cfg.train.dtype, seed=cfg.seed)


@dataclass
class Assembled:
    """Everything a training run is made of, built from one config."""

    splits: Splits
    model: Model
    optimizer: object
    schedule: object | None
    augment: object | None


def assemble(cfg: Config) -> Assembled:
    splits = load(cfg.data, seed=cfg.seed, dtype=cfg.train.dtype)
    return Assembled(
        splits=splits,
        model=build_model(cfg, splits.in_shape),
        optimizer=OPTIMIZERS.create(cfg.optimizer),
        schedule=SCHEDULES.create(cfg.schedule) if cfg.schedule is not None else None,
        augment=build_augment(cfg.data.augment, splits.in_shape),
    )


def config_hash(cfg: Config) -> str:
    return hashlib.sha256(dump_config(cfg).encode()).hexdigest()[:16]


def environment() -> dict:
    return {"python": platform.python_version(), "numpy": np.__version__, "dl": __version__}


def make_solver(cfg: Config, parts: Assembled, run: Run | None, progress: bool) -> Solver:
    return Solver(parts.model, parts.splits, parts.optimizer, cfg.train,
                  schedule=parts.schedule, checkpoint=cfg.checkpoint, augment=parts.augment,
                  seed=cfg.seed, run=run, progress=progress)


def start(cfg: Config, run_dir: Path | None = None) -> Run:
    """A new run folder holding the resolved config."""
    path = Path(run_dir) if run_dir is not None else new_run_dir(cfg.runs_dir, cfg.name)
    run = Run(path)
    run.acquire()
    run.write_text("config.yaml", dump_config(cfg))
    return run


def resume(run_dir: Path) -> tuple[Config, Run]:
    """Reopen a run folder: its config and its lock."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").exists():
        raise RunError(f"{run_dir} is not a run folder (no config.yaml)")
    cfg = load_config(run_dir / "config.yaml")
    run = Run(run_dir)
    run.acquire()
    return cfg, run


def train(cfg: Config, run: Run, parts: Assembled | None = None, resuming: bool = False,
          progress: bool = True) -> dict:
    """Train into ``run`` (new or resumed) and write ``summary.json``.

    Raises the Solver's ``Diverged`` and ``Interrupted`` after recording the state;
    the run's lock is released whatever happens.
    """
    try:
        parts = parts or assemble(cfg)
        solver = make_solver(cfg, parts, run, progress)
        if resuming:
            last = run.load_checkpoint("last")
            best = run.load_checkpoint("best") if (run.checkpoints / "best.npz").exists() else None
            recorded = last["meta"].get("version")
            if recorded != __version__:
                run.log(f"warning: resuming a run written by dl {recorded} with dl {__version__}")
            run.truncate_metrics(last["meta"]["epoch"])
            solver.restore(last, best)
        else:
            run.log(f"dl {__version__}: training {cfg.name} into {run.path}")
        base = {"name": cfg.name, "run_dir": str(run.path), "config_hash": config_hash(cfg),
                "environment": environment(), "data": parts.splits.info,
                "params": parts.model.num_params()}
        try:
            summary = solver.train()
        except Exception:
            run.write_summary({**base, **solver.finish(score_test=False)})
            raise
        summary = {**base, **summary}
        run.write_summary(summary)
        run.log(f"{summary['status']}: best {summary['monitor']} {summary['best_value']} "
                f"at epoch {summary['best_epoch']}; test {summary['test']}")
        return summary
    finally:
        run.release()
