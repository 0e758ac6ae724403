"""The run folder being written and read back: metrics, log, summary, checkpoints, lock.

Where each file lives is ``layout.RunLayout``'s; how files are written atomically and
checkpoints read safely, ``storage``'s; what a checkpoint holds, ``checkpoints``'.

``metrics.jsonl`` and ``summary.json`` are checked entry by entry as they are read
(``RECORD_KINDS``, ``SUMMARY_KINDS``): a damaged one is a RunError naming the file, so a
listing can show that run as unreadable and go on.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .checkpoints import unpack_checkpoint
from .layout import RunLayout, new_folder, point_latest
from .locks import Lock, LockHeld
from .nesting import NestingError, json_value
from .storage import (RunError, load_npz, open_append, read_text, refuse_links, remove_stale_temps,
                      save_npz, write_text)


def new_run_dir(runs_dir: str | Path, name: str) -> Path:
    """A new, empty run folder ``runs_dir/name/<time>-<id>`` with its checkpoints folder."""
    path = new_folder(runs_dir, name)
    try:
        RunLayout(path).checkpoints.mkdir(parents=True)
    except OSError as error:
        raise RunError(f"runs_dir: cannot make a run folder in {runs_dir} "
                       f"({error.strerror or error})") from None
    return path


# -- what the folder's JSON files hold -------------------------------------------------
VALUE_KINDS = {"a count": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
               "a number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
               "a string": lambda v: isinstance(v, str),
               "an object": lambda v: isinstance(v, dict),
               "a list": lambda v: isinstance(v, list)}


def fits(value, kind: str) -> bool:
    """Whether a value read from a JSON file is of ``kind``: a key of ``VALUE_KINDS``, perhaps
    followed by "or null"."""
    if value is None and kind.endswith(" or null"):
        return True
    return VALUE_KINDS[kind.removesuffix(" or null")](value)


# The summary entries that listings, compare and diagnose read, when present.
SUMMARY_KINDS = {"name": "a string", "status": "a string", "monitor": "a string",
                 "mode": "a string", "epochs": "a count", "kfold": "a count",
                 "best_epoch": "a count or null", "best_value": "a number or null",
                 "best_std": "a number or null", "best": "an object or null",
                 "final": "an object or null", "test": "an object or null",
                 "data": "an object or null", "folds": "a list or null"}
# The entries of a metrics line but its scores ("split/measure": a number or null).
RECORD_KINDS = {"epoch": "a count", "step": "a count", "lr": "a number", "time": "a number",
                "status": "a string", "error": "a string", "layers": "a list"}


def entry_problem(tree: dict, kinds: dict[str, str]) -> str | None:
    """The first entry of ``tree`` whose value is not of the kind ``kinds`` names, or None."""
    for key, kind in kinds.items():
        if key in tree and not fits(tree[key], kind):
            return f"{key!r} is {tree[key]!r}, expected {kind}"
    return None


def layer_row_fits(row) -> bool:
    """Whether a diagnostics row holds a layer's index and name, then numbers."""
    if not isinstance(row, dict) or "index" not in row or "layer" not in row:
        return False
    kinds = {**dict.fromkeys(row, "a number or null"), "index": "a count", "layer": "a string"}
    return entry_problem(row, kinds) is None


def record_problem(record: dict) -> str | None:
    """What is wrong with a metrics line (every line dl writes has its epoch and step),
    or None."""
    scores = dict.fromkeys((key for key in record if "/" in key), "a number or null")
    problem = entry_problem(record, {**RECORD_KINDS, **scores})
    if problem is not None:
        return problem
    for row in record.get("layers", []):
        if not layer_row_fits(row):
            return f"'layers' holds {row!r}, expected an object of index, layer and numbers"
    missing = [key for key in ("epoch", "step") if key not in record]
    return f"no {missing[0]!r} ({RECORD_KINDS[missing[0]]}); every line has one" if missing else None


# -- the folder -----------------------------------------------------------------------
HELD_LOCKS: set[Path] = set()  # the run locks this process has taken and not released


def release_held_locks() -> None:
    """Release every run lock this process holds: what a process stopped by a signal
    does before it unwinds, so that only a killed process leaves a lock behind."""
    for path in list(HELD_LOCKS):
        path.unlink(missing_ok=True)
    HELD_LOCKS.clear()


class Run:
    """A run folder being written: metrics lines, log lines, checkpoints, summary."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.layout = RunLayout(self.path)
        self.kept: dict[str, np.ndarray] = {}

    def keep_in_checkpoints(self, arrays: dict[str, np.ndarray]) -> None:
        """Arrays every checkpoint written from now on holds beside the training state:
        what scoring raw inputs takes (``inputs.Inputs.arrays``)."""
        self.kept = dict(arrays)

    def acquire(self, break_lock: bool = False) -> None:
        """Take the folder's lock (``locks.Lock``: refused while another process holds it;
        ``break_lock`` takes it from a holder on another machine), then remove the temp
        files of a process killed mid-write."""
        checkpoints = self.layout.checkpoints
        refuse_links(self.path, self.layout.entries())
        try:
            checkpoints.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise RunError(f"cannot make the checkpoint folder {checkpoints} "
                           f"({error.strerror})") from None
        try:
            self.lock.take(break_lock)
        except LockHeld as error:
            raise RunError(str(error)) from None
        HELD_LOCKS.add(self.layout.lock)
        remove_stale_temps(self.path)

    @property
    def lock(self) -> Lock:
        return Lock(self.layout.lock, "is in use by")

    def release(self) -> None:
        self.lock.release()
        HELD_LOCKS.discard(self.layout.lock)

    def log_metrics(self, record: dict) -> None:
        with open_append(self.layout.metrics) as f:
            f.write(json.dumps(record) + "\n")

    def read_metrics(self) -> list[dict]:
        """The metric records; a last line cut short by a killed process is left out."""
        path = self.layout.metrics
        if not path.exists():
            return []
        lines = read_text(path).split("\n")
        records = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json_value(line)
            except NestingError as error:
                raise RunError(f"{path}: line {number} is {error}") from None
            except ValueError as error:
                if number == len(lines):  # no newline after it: its writer was killed
                    break
                raise RunError(f"{path}: line {number} is not JSON ({error})") from None
            if not isinstance(record, dict):
                raise RunError(f"{path}: line {number} is a JSON {type(record).__name__}, "
                               f"not a record (an object)")
            problem = record_problem(record)
            if problem is not None:
                raise RunError(f"{path}: line {number}: {problem}")
            records.append(record)
        return records

    def truncate_metrics(self, epochs: int, steps: int) -> None:
        """Keep what a resume from ``epochs`` epochs and ``steps`` steps continues: the
        lines of those epochs and the batch lines (``log_every``) of those steps, those
        of an epoch stopped midway included."""
        kept = [r for r in self.read_metrics()
                if r.get("epoch", 0) <= epochs or "train/batch_loss" in r and r["step"] <= steps]
        write_text(self.layout.metrics, "".join(json.dumps(r) + "\n" for r in kept))

    def start_over(self) -> None:
        """Forget what a run stopped before its first checkpoint recorded (metrics, summary,
        a best checkpoint without its last), so that it trains again from the start; its
        config and log stay."""
        for path in (self.layout.metrics, self.layout.summary, self.layout.error,
                     self.layout.checkpoint("best"), self.layout.checkpoint("last")):
            path.unlink(missing_ok=True)

    def log(self, line: str) -> None:
        with open_append(self.layout.log) as f:
            f.write(line.rstrip("\n") + "\n")

    def save_checkpoint(self, kind: str, arrays: dict[str, np.ndarray]) -> None:
        save_npz(self.layout.checkpoint(kind), {**arrays, **self.kept})

    def load_checkpoint(self, kind: str) -> dict:
        path = self.layout.checkpoint(kind)
        if not path.exists():
            sweep = self.layout.sweep()
            if sweep is not None:
                raise RunError(f"{path}: no such checkpoint; a trial of the sweep in {sweep} "
                               f"keeps its checkpoints only while it may be the sweep's best "
                               f"(keep_checkpoints: best; set it to all to keep every trial's)")
        arrays = load_npz(path)
        try:
            return unpack_checkpoint(arrays)
        except RunError as error:
            raise RunError(f"{path}: {error}") from None

    def write_summary(self, summary: dict) -> None:
        """Write summary.json; a finished run becomes its name folder's ``latest``
        (``layout.point_latest``) when it is the newest."""
        write_text(self.layout.summary, json.dumps(summary, indent=2) + "\n")
        point_latest(self.path)

    def read_summary(self) -> dict:
        """The run's summary.json ({} before it has one); RunError when it is damaged."""
        path = self.layout.summary
        if not path.exists():
            return {}
        try:
            summary = json_value(read_text(path))
        except ValueError as error:
            raise RunError(f"{path}: not a readable summary ({error})") from None
        if not isinstance(summary, dict):
            raise RunError(f"{path}: not a readable summary (a JSON {type(summary).__name__}, "
                           f"not an object)")
        problem = entry_problem(summary, SUMMARY_KINDS)
        if problem is not None:
            raise RunError(f"{path}: not a readable summary ({problem})")
        return summary

