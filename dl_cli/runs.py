"""The run folder: resolved config, metrics, summary, checkpoints and a lock.

```
runs/<name>/<YYYYmmdd-HHMMSS>-<short id>/
  config.yaml   metrics.jsonl   summary.json   train.log   run.lock (while training)
  checkpoints/best.npz   checkpoints/last.npz
```

Checkpoints are ``.npz`` files of plain arrays: ``param/<name>``, ``buffer/<name>``,
``optim/<key>``, ``schedule/<key>`` and ``meta`` (a JSON string with the epoch, step,
generator states and the best metric). They are written atomically (a temp file in the
same folder, flush, fsync, ``os.replace``) and read with ``allow_pickle=False``, so a
crash never leaves a half-written checkpoint and loading one never runs code.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import secrets
from pathlib import Path

import numpy as np


class RunError(RuntimeError):
    """A run folder or checkpoint cannot be used as asked."""


def safe_name(name: str) -> str:
    """A run name as one path component: anything but letters, digits, ``._-`` becomes
    ``-``, and leading dots are dropped, so ``../../x`` cannot leave the runs folder."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name).lstrip(".-")
    return cleaned or "run"


def new_run_dir(runs_dir: str | Path, name: str) -> Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = Path(runs_dir) / safe_name(name) / f"{stamp}-{secrets.token_hex(3)}"
    (path / "checkpoints").mkdir(parents=True)
    return path


# -- atomic files ---------------------------------------------------------------------
def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, write) -> None:
    """Call ``write(file)`` on a temp file beside ``path``, then rename it over ``path``.

    The temp name ends in ``.tmp`` (``np.savez`` given a file object appends nothing).
    A failure removes the temp file and leaves ``path`` as it was.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    write_atomic(path, lambda f: np.savez(f, **arrays))


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, refusing pickled objects."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise RunError(f"{path}: no such checkpoint") from None
    except (ValueError, OSError, EOFError) as error:
        raise RunError(f"{path}: not a readable checkpoint ({error})") from None


def remove_stale_temps(folder: Path) -> None:
    """Temp files left by a process killed mid-write."""
    for tmp in Path(folder).glob(".*.tmp"):
        tmp.unlink(missing_ok=True)


# -- checkpoints ----------------------------------------------------------------------
def pack_checkpoint(params: dict, buffers: dict, optimizer_state: dict,
                    schedule_state: dict, meta: dict) -> dict[str, np.ndarray]:
    arrays = {f"param/{k}": v for k, v in params.items()}
    arrays.update({f"buffer/{k}": v for k, v in buffers.items()})
    arrays.update({f"optim/{k}": np.asarray(v) for k, v in optimizer_state.items()})
    arrays.update({f"schedule/{k}": np.asarray(v) for k, v in schedule_state.items()})
    arrays["meta"] = np.array(json.dumps(meta))
    return arrays


def unpack_checkpoint(arrays: dict[str, np.ndarray]) -> dict:
    """Split a checkpoint into ``params``, ``buffers``, ``optim``, ``schedule``, ``meta``
    and ``perm`` (the batch order of an epoch stopped midway, else None)."""
    parts: dict = {"param": {}, "buffer": {}, "optim": {}, "schedule": {}}
    for key, value in arrays.items():
        group, _, name = key.partition("/")
        if group in parts:
            parts[group][name] = value
    if "meta" not in arrays:
        raise RunError("checkpoint has no 'meta' entry")
    return {"params": parts["param"], "buffers": parts["buffer"], "optim": parts["optim"],
            "schedule": parts["schedule"], "meta": json.loads(str(arrays["meta"])),
            "perm": arrays.get("perm")}


def check_compatible(expected: dict[str, np.ndarray], found: dict[str, np.ndarray],
                     what: str, source) -> None:
    """Refuse a checkpoint whose names or shapes differ from the model's, or whose
    values are not finite, before anything is copied."""
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    if missing or extra:
        raise RunError(f"{source}: {what} do not match the model "
                       f"(missing: {missing or 'none'}; unexpected: {extra or 'none'})")
    for key, value in expected.items():
        if found[key].shape != value.shape:
            raise RunError(f"{source}: {what[:-1]} '{key}' has shape {found[key].shape}, "
                           f"the model expects {value.shape}")
        if found[key].dtype.kind != "f" or not np.all(np.isfinite(found[key])):
            raise RunError(f"{source}: {what[:-1]} '{key}' holds non-finite or non-float values")


def copy_into(target: dict[str, np.ndarray], source: dict[str, np.ndarray]) -> None:
    """Copy arrays in place, so the optimizer's references stay valid."""
    for key, value in target.items():
        value[...] = source[key]


# -- the folder -----------------------------------------------------------------------
class Run:
    """A run folder being written: metrics lines, log lines, checkpoints, summary."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.checkpoints = self.path / "checkpoints"
        self.lock_path = self.path / "run.lock"

    def acquire(self) -> None:
        """Take the folder's lock; refuse when a live process holds it."""
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                holder = self._lock_holder()
                if holder is not None and _alive(holder):
                    raise RunError(f"{self.path} is in use by process {holder} "
                                   f"(lock file {self.lock_path})") from None
                self.lock_path.unlink(missing_ok=True)  # stale: its holder is gone
                continue
            with os.fdopen(fd, "w") as f:
                f.write(str(os.getpid()))
            remove_stale_temps(self.checkpoints)
            return
        raise RunError(f"could not take the lock {self.lock_path}")

    def _lock_holder(self) -> int | None:
        try:
            return int(self.lock_path.read_text().strip())
        except (OSError, ValueError):
            return None

    def release(self) -> None:
        if self._lock_holder() == os.getpid():
            self.lock_path.unlink(missing_ok=True)

    def log_metrics(self, record: dict) -> None:
        with open(self.path / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

    def read_metrics(self) -> list[dict]:
        path = self.path / "metrics.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def truncate_metrics(self, epochs: int) -> None:
        """Keep the metric lines of the first ``epochs`` epochs (for a resume)."""
        kept = [r for r in self.read_metrics() if r.get("epoch", 0) <= epochs]
        text = "".join(json.dumps(r) + "\n" for r in kept)
        write_atomic(self.path / "metrics.jsonl", lambda f: f.write(text.encode()))

    def log(self, line: str) -> None:
        with open(self.path / "train.log", "a") as f:
            f.write(line.rstrip("\n") + "\n")

    def save_checkpoint(self, kind: str, arrays: dict[str, np.ndarray]) -> None:
        save_npz(self.checkpoints / f"{kind}.npz", arrays)

    def load_checkpoint(self, kind: str) -> dict:
        return unpack_checkpoint(load_npz(self.checkpoints / f"{kind}.npz"))

    def write_summary(self, summary: dict) -> None:
        text = json.dumps(summary, indent=2) + "\n"
        write_atomic(self.path / "summary.json", lambda f: f.write(text.encode()))

    def read_summary(self) -> dict:
        path = self.path / "summary.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def write_text(self, name: str, text: str) -> None:
        write_atomic(self.path / name, lambda f: f.write(text.encode()))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
