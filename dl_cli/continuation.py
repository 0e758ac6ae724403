"""Continuing a run: what ``dl train --resume RUN [key=value ...]`` may change, how it
computes as the run did, and when nothing is left to train.

A resumed run continues its own ``config.yaml``. Two keys may change on the way, since
neither alters an epoch already trained:

- ``train.epochs``, to at least the run's own: a finished (or stopped) run trains on;
- ``train.early_stopping.patience``: a run that stopped early goes on when the new
  patience has not run out.

A schedule over the whole run (cosine without ``epochs`` of its own, or after a warmup)
keeps the length the run started with: its ``epochs`` is written into ``config.yaml``, so
the rate goes on where it ended (cosine: ``min_lr``), and the config, trained from
scratch, still gives the same run. Anything else is refused: train the config again.

A run is complete when its last checkpoint holds every epoch (or its patience ran out)
and its summary says it finished; one stopped after its last checkpoint, before its
summary did, is finished by a resume, which trains no epoch again.

A run computes on the threads it started with (``threads`` in its checkpoints): a
resume without ``--threads`` takes them up, one with other threads is warned about.
"""

from __future__ import annotations

from pathlib import Path

from .checks import ConfigError
from .checkpoints import read_meta
from .config import config_to_dict
from .config.overrides import apply_overrides
from .config.validation import validate
from .layout import FINISHED, RunLayout, status
from .registry import SCHEDULES
from .schema import Config

CHANGEABLE = ("train.epochs", "train.early_stopping.patience")


def extended(cfg: Config, overrides: list[str]) -> Config:
    """``cfg`` with the changes a resume accepts (``CHANGEABLE``); ConfigError naming
    any other key, a shorter run, or a patience without early stopping."""
    problems = []
    for override in overrides:
        key = override.partition("=")[0].strip()
        if key not in CHANGEABLE:
            problems.append(f"{key}: a resumed run continues its own config.yaml; only "
                            f"{' and '.join(CHANGEABLE)} may change (train the config "
                            f"again to change anything else)")
        elif key == CHANGEABLE[1] and cfg.train.early_stopping is None:
            problems.append(f"{key}: the run has no early stopping whose patience could "
                            f"change")
    if problems:
        raise ConfigError(problems)
    raw = apply_overrides(config_to_dict(cfg), overrides)
    if cfg.schedule is not None:
        spec = {"type": cfg.schedule} if isinstance(cfg.schedule, str) else dict(cfg.schedule)
        raw["schedule"] = {**spec, **SCHEDULES.create(cfg.schedule).horizon(cfg.train.epochs)}
    longer = validate(raw, keep_components=True)
    if longer.train.epochs < cfg.train.epochs:
        raise ConfigError([f"train.epochs: a resumed run trains on; expected at least the "
                           f"run's {cfg.train.epochs}, got {longer.train.epochs}"])
    return longer


def nothing_left(cfg: Config, meta: dict, run_dir: Path) -> str | None:
    """Why a run whose last checkpoint holds ``meta`` has nothing left to train under
    ``cfg`` (what to give to go on), or None. A run whose summary does not record it
    finished (stopped after its last checkpoint, as it scored its test split) has its
    ending left: the resume writes it."""
    if status(run_dir) not in FINISHED:
        return None
    stopping = cfg.train.early_stopping
    if meta["epoch"] >= cfg.train.epochs and meta["iteration"] == 0:
        return (f"{run_dir} is complete: {meta['epoch']} of {cfg.train.epochs} epochs "
                f"trained; nothing changed. To train it longer: dl train --resume {run_dir} "
                f"train.epochs=N")
    if stopping is not None and meta["stale_epochs"] >= stopping.patience:
        return (f"{run_dir} stopped early after epoch {meta['epoch']}: no improvement in "
                f"{meta['stale_epochs']} epochs (patience {stopping.patience}); nothing "
                f"changed. To go on: dl train --resume {run_dir} "
                f"train.early_stopping.patience=N")
    return None


def recorded_threads(run_dir: Path) -> int | None:
    """The threads the run computed on, from its last checkpoint (a k-fold run's: its
    first fold's); None when no checkpoint records them."""
    layout = RunLayout(run_dir)
    for folder in (layout.path, *layout.folds()):
        path = RunLayout(folder).checkpoint("last")
        if path.exists():
            threads = (read_meta(path) or {}).get("threads")
            return threads if isinstance(threads, int) and threads >= 1 else None
    return None
