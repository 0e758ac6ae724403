"""Where things are in a run folder and in a sweep folder: the one place that knows the names.

```
runs/<name>/<YYYYmmdd-HHMMSS>-<short id>/        a run folder: RunLayout
  config.yaml   metrics.jsonl   summary.json   train.log   run.lock (while training)
  checkpoints/best.npz   checkpoints/last.npz
  vocab.json (text data)   fold-<i>/ (one run folder per fold with validation.kfold)
  error.txt (a sweep trial that failed: the traceback)
  tensorboard/ (train.loggers: [tensorboard], or dl export --to tensorboard: event files)

runs/<sweep name>/<YYYYmmdd-HHMMSS>-<short id>/  a sweep folder: SweepLayout
  spec.yaml      the effective spec (overrides applied, base as an absolute path)
  base.yaml      the resolved base config every trial starts from
  ledger.jsonl   every trial's state, append-only
  results.csv    one row per trial          best.yaml   the winning config
  trial-0000/    an ordinary run folder per trial (fold-0/ ... with k-fold)
  driver.lock    while a driver runs the sweep
```

Both types only name paths and look at what exists; reading and writing the files is
the work of ``runs``, ``checkpoints`` and ``sweep/``.
"""

from __future__ import annotations

import datetime
import re
import secrets
from pathlib import Path

FOLD = re.compile(r"fold-(\d+)")


def safe_name(name: str) -> str:
    """A run name as one path component: anything but letters, digits, ``._-`` becomes
    ``-``, and leading dots are dropped, so ``../../x`` cannot leave the runs folder."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name).lstrip(".-")
    return cleaned or "run"


def new_folder(runs_dir: str | Path, name: str) -> Path:
    """A fresh folder's path for a run or sweep called ``name``: ``runs_dir/name/<time>-<id>``
    (not made here)."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(runs_dir) / safe_name(name) / f"{stamp}-{secrets.token_hex(3)}"


class RunLayout:
    """The paths of the run folder ``path``."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    config = property(lambda self: self.path / "config.yaml")
    metrics = property(lambda self: self.path / "metrics.jsonl")
    summary = property(lambda self: self.path / "summary.json")
    log = property(lambda self: self.path / "train.log")
    lock = property(lambda self: self.path / "run.lock")
    vocab = property(lambda self: self.path / "vocab.json")
    error = property(lambda self: self.path / "error.txt")
    checkpoints = property(lambda self: self.path / "checkpoints")
    tensorboard = property(lambda self: self.path / "tensorboard")

    def checkpoint(self, kind: str) -> Path:
        """``checkpoints/best.npz`` or ``checkpoints/last.npz``."""
        return self.checkpoints / f"{kind}.npz"

    def fold(self, index: int) -> Path:
        return self.path / f"fold-{index}"

    def folds(self) -> list[Path]:
        """The fold folders (fold-0/ ... fold-K-1/) of a k-fold run folder, in fold order;
        none for any other folder."""
        folds = [p for p in self.path.glob("fold-*") if FOLD.fullmatch(p.name)
                 and RunLayout(p).is_run]
        return sorted(folds, key=lambda p: int(FOLD.fullmatch(p.name)[1]))

    @property
    def is_run(self) -> bool:
        return self.config.exists()

    @property
    def is_kfold_root(self) -> bool:
        return bool(self.folds())

    @property
    def is_fold(self) -> bool:
        """Whether the folder is named as one fold of a k-fold run (``fold-3``)."""
        return FOLD.fullmatch(self.path.name) is not None

    @property
    def has_records(self) -> bool:
        """Whether training has written to it: a summary or metrics."""
        return self.summary.exists() or self.metrics.exists()

    def curves_run(self) -> Path:
        """The folder whose metrics draw the run's learning curves: the run's own, or its
        first fold's (a k-fold run keeps its metrics in its folds)."""
        if not self.metrics.exists() and self.fold(0).is_dir():
            return self.fold(0)
        return self.path

    def locks(self) -> list[Path]:
        """The run locks held in the folder: its own and its folds'."""
        return list(self.path.rglob(self.lock.name))

    def checkpoint_files(self) -> list[Path]:
        """Every checkpoint in the folder: its own and its folds'."""
        return list(self.path.rglob(f"{self.checkpoints.name}/*.npz"))

    def sweep(self) -> Path | None:
        """The sweep folder the run is a trial (or a trial's fold) of, or None."""
        return next((p for p in self.path.parents if SweepLayout(p).is_sweep), None)


def find_runs(root: str | Path) -> list[Path]:
    """Run folders under ``root`` (any depth): those holding a config.yaml and a
    metrics or summary file."""
    name = RunLayout(root).config.name
    return sorted(p.parent for p in Path(root).rglob(name) if RunLayout(p.parent).has_records)


class SweepLayout:
    """The paths of the sweep folder ``path``."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    spec = property(lambda self: self.path / "spec.yaml")
    base = property(lambda self: self.path / "base.yaml")
    ledger = property(lambda self: self.path / "ledger.jsonl")
    results = property(lambda self: self.path / "results.csv")
    best = property(lambda self: self.path / "best.yaml")
    lock = property(lambda self: self.path / "driver.lock")

    def files(self) -> tuple[Path, ...]:
        """The files the sweep keeps beside its trial folders."""
        return self.spec, self.base, self.ledger, self.results, self.best, self.lock

    @staticmethod
    def trial_name(index: int) -> str:
        return f"trial-{index:04d}"

    def trial(self, index: int) -> Path:
        """Trial ``index``'s run folder (``trial-0007``)."""
        return self.path / self.trial_name(index)

    @property
    def is_sweep(self) -> bool:
        return self.ledger.exists()
