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

Every checkpoint records the config it was trained with, but for the keys above and
``runs_dir`` (``trained_config``); a resume whose ``config.yaml`` was edited in any other
key is refused, naming the keys (``check_same_config``): it would go on with other data
or another model and say nothing.

A run computes on the threads it started with (``threads`` in its checkpoints): a
resume without ``--threads`` takes them up, one with other threads is warned about.
"""

from __future__ import annotations

from pathlib import Path

import json

from .checks import ConfigError
from .checkpoints import read_meta
from .config import config_to_dict, flatten
from .config.overrides import apply_overrides
from .config.validation import validate
from .layout import FINISHED, RunLayout, status
from .registry import SCHEDULES
from .schema import Config
from .storage import RunError

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
    longer = validate(with_horizon(apply_overrides(config_to_dict(cfg), overrides), cfg),
                      keep_components=True)
    if longer.train.epochs < cfg.train.epochs:
        raise ConfigError([f"train.epochs: a resumed run trains on; expected at least the "
                           f"run's {cfg.train.epochs}, got {longer.train.epochs}"])
    return longer


def schedule_with_horizon(cfg: Config):
    """The schedule of ``cfg`` holding the length of the run it was made for
    (``Schedule.horizon``), so that more epochs, or fewer, leave its rates as they were;
    None without a schedule."""
    if cfg.schedule is None:
        return None
    spec = {"type": cfg.schedule} if isinstance(cfg.schedule, str) else dict(cfg.schedule)
    return {**spec, **SCHEDULES.create(cfg.schedule).horizon(cfg.train.epochs)}


def with_horizon(raw: dict, cfg: Config) -> dict:
    """``raw`` (a config as a dict) with ``schedule_with_horizon(cfg)``."""
    if cfg.schedule is not None:
        raw["schedule"] = schedule_with_horizon(cfg)
    return raw


def trained_config(cfg: Config) -> dict:
    """What every checkpoint records of its run's config: every key but ``CHANGEABLE``
    and ``runs_dir`` (it only says where new runs go), the schedule with its horizon, as
    JSON values."""
    tree = json.loads(json.dumps(with_horizon(config_to_dict(cfg), cfg), default=str))
    tree.pop("runs_dir", None)
    for path in CHANGEABLE:
        *parents, last = path.split(".")
        node = tree
        for key in parents:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(last, None)
    return tree


KEY_MISSING = "(not set)"


def check_same_config(cfg: Config, meta: dict, config_file: Path, checkpoint: Path) -> None:
    """Refuse (RunError) to resume with ``cfg`` a run whose last checkpoint (``meta``)
    was trained with another config (``trained_config``). A checkpoint that records no
    config (written by an earlier version) is not compared."""
    recorded = meta.get("config")
    if recorded is None:
        return
    before, now = flatten(recorded), flatten(trained_config(cfg))
    keys = [k for k in sorted(set(before) | set(now))
            if before.get(k, KEY_MISSING) != now.get(k, KEY_MISSING)]
    if not keys:
        return
    shown = ", ".join(f"{k}: {shown_value(before.get(k, KEY_MISSING))} → "
                      f"{shown_value(now.get(k, KEY_MISSING))}" for k in keys[:6])
    more = f" and {len(keys) - 6} more" if len(keys) > 6 else ""
    raise RunError(f"{config_file} was edited since {checkpoint} was written ({shown}{more}); "
                   f"resuming would go on with other data or another model: restore those "
                   f"keys, or train the edited config as a new run (dl train {config_file})")


def shown_value(value) -> str:
    text = value if value == KEY_MISSING else json.dumps(value, separators=(",", ":"))
    return text if len(text) <= 40 else text[:37] + "..."


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
