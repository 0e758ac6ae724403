"""Where things are in a run folder and in a sweep folder: the one place that knows the names.

```
runs/<name>/                                     a config's name folder
  latest -> <YYYYmmdd-HHMMSS>-<short id>         its newest finished run (a symlink)
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

Wherever a command takes a run folder, a config's name folder stands for its newest
finished run (``resolve_run``): of the run folders ``dl train`` named in it
(``<YYYYmmdd-HHMMSS>-<id>``), the one started last among those whose summary.json says
``completed`` or ``early_stopped``. ``latest`` points at that one, updated as each run
finishes (``point_latest``), where the file system has symlinks.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import secrets
from pathlib import Path

from .storage import RunError

FOLD = re.compile(r"fold-(\d+)")
STAMPED = re.compile(r"\d{8}-\d{6}-[0-9a-f]{6}")  # what new_folder names a run
LATEST = "latest"
FINISHED = ("completed", "early_stopped")


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


# -- a config's name folder ----------------------------------------------------------
def status(run: Path) -> str | None:
    """The status a run's summary.json records; None without a readable one."""
    try:
        summary = json.loads(RunLayout(run).summary.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return summary.get("status") if isinstance(summary, dict) else None


def named_runs(folder: str | Path, finished: bool = True) -> list[Path]:
    """The run folders ``dl train`` made in the name folder ``folder``, oldest first (by
    their start time, then by when their summary was written), only the finished ones
    unless ``finished`` is False."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    runs = [p for p in folder.iterdir() if STAMPED.fullmatch(p.name) and not p.is_symlink()
            and RunLayout(p).is_run and (not finished or status(p) in FINISHED)]

    def order(run: Path) -> tuple[str, float]:
        summary = RunLayout(run).summary
        return run.name[:15], summary.stat().st_mtime if summary.exists() else 0.0

    return sorted(runs, key=order)


def resolve_run(path: str | Path, finished: bool = True) -> Path:
    """``path`` itself when it is a run folder (or not a folder of runs at all, for the
    caller to refuse); for a config's name folder (``runs/digits-mlp``), its newest
    finished run (its newest run of any status with ``finished`` False). A name folder
    whose runs are all unfinished is a RunError naming the newest."""
    path = Path(path)
    layout = RunLayout(path)
    if layout.is_run or not path.is_dir() or SweepLayout(path).is_sweep:
        return path
    runs = named_runs(path, finished)
    if runs:
        return runs[-1]
    started = named_runs(path, finished=False)
    if started:
        raise RunError(f"{path} holds {len(started)} run{'s' * (len(started) != 1)}, none "
                       f"finished (completed or stopped early); give one of them, such as "
                       f"{started[-1]}")
    return path


def point_latest(run: str | Path) -> None:
    """Point ``latest`` in the name folder of ``run`` (a folder ``dl train`` named) at
    the folder's newest finished run, replacing the link atomically; nothing where
    symlinks cannot be made, nor for runs that are folds, trials or given a folder."""
    run = Path(run)
    if not STAMPED.fullmatch(run.name):
        return
    runs = named_runs(run.parent)
    if not runs:
        return
    link = run.parent / LATEST
    tmp = run.parent / f".{LATEST}.{os.getpid()}.tmp"
    try:
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(runs[-1].name, target_is_directory=True)
        os.replace(tmp, link)
    except (OSError, NotImplementedError):  # no symlinks here, or `latest` is a folder
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def without_latest_links(paths: list[Path]) -> list[Path]:
    """``paths`` but the ``latest`` links whose run is among them too, as a shell lists
    both for ``runs/<name>/*``."""
    real = {Path(p).resolve() for p in paths if not Path(p).is_symlink()}
    return [p for p in paths if not (Path(p).name == LATEST and Path(p).is_symlink()
                                     and Path(p).resolve() in real)]


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
