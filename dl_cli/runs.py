"""The run folder: resolved config, metrics, summary, checkpoints and a lock.

```
runs/<name>/<YYYYmmdd-HHMMSS>-<short id>/
  config.yaml   metrics.jsonl   summary.json   train.log   run.lock (while training)
  checkpoints/best.npz   checkpoints/last.npz
  vocab.json (text data)   fold-<i>/ (one run folder per fold with validation.kfold)
```

Checkpoints are ``.npz`` files of plain arrays: ``param/<name>``, ``buffer/<name>``,
``optim/<key>``, ``schedule/<key>``, ``meta`` (a JSON string with the epoch, step,
generator states, the best metric and the versions of Python, NumPy and ``dl``) and,
for an epoch stopped midway, ``perm`` (its batch order). They
are written atomically (a temp file in the same folder, flush, fsync, ``os.replace``), so
a crash never leaves a half-written checkpoint. They are read member by member: each
``.npy`` header is checked against the bytes the archive really holds before an array
is allocated, and Python objects are refused, so loading one never runs code and a
forged header cannot claim gigabytes.

``metrics.jsonl`` and ``summary.json`` are checked entry by entry as they are read
(``RECORD_KINDS``, ``SUMMARY_KINDS``): a damaged one is a RunError naming the file, so a
listing can show that run as unreadable and go on.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import re
import secrets
import zipfile
from pathlib import Path

import numpy as np

from . import __version__


class RunError(RuntimeError):
    """A run folder or checkpoint cannot be used as asked."""


def versions() -> dict[str, str]:
    """What a run records about the software that wrote it."""
    return {"python": platform.python_version(), "numpy": np.__version__, "dl": __version__}


def safe_name(name: str) -> str:
    """A run name as one path component: anything but letters, digits, ``._-`` becomes
    ``-``, and leading dots are dropped, so ``../../x`` cannot leave the runs folder."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name).lstrip(".-")
    return cleaned or "run"


def new_run_dir(runs_dir: str | Path, name: str) -> Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = Path(runs_dir) / safe_name(name) / f"{stamp}-{secrets.token_hex(3)}"
    try:
        (path / "checkpoints").mkdir(parents=True)
    except OSError as error:
        raise RunError(f"runs_dir: cannot make a run folder in {runs_dir} "
                       f"({error.strerror or error})") from None
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
    A failure removes the temp file and leaves ``path`` as it was; an OSError (a full
    disk, a read-only folder) is raised again naming ``path``.
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
    except BaseException as error:
        tmp.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise OSError(error.errno, error.strerror or str(error), str(path)) from error
        raise


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    write_atomic(path, lambda f: np.savez(f, **arrays))


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file written by ``save_npz``; anything else (a pickle,
    a truncated file, an object array, a header promising more bytes than the file
    holds) is a RunError naming the file."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with zipfile.ZipFile(path) as archive:
            return {info.filename.removesuffix(".npy"): read_member(archive, info, size)
                    for info in archive.infolist()}
    except FileNotFoundError:
        raise RunError(f"{path}: no such checkpoint") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as error:
        raise RunError(f"{path}: not a readable checkpoint ({error})") from None


NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0,
               (2, 0): np.lib.format.read_array_header_2_0}


def read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, archive_size: int) -> np.ndarray:
    """One ``.npy`` member, allocated only once its header's shape × itemsize equals the
    bytes stored for it, and those bytes lie inside the file (``archive_size``)."""
    name = info.filename.removesuffix(".npy")
    if info.compress_type != zipfile.ZIP_STORED or info.file_size != info.compress_size:
        raise ValueError(f"member '{name}' is compressed; checkpoints store arrays as they are")
    if info.header_offset + info.compress_size > archive_size:
        raise ValueError(f"member '{name}' claims {info.file_size:,} bytes, more than the "
                         f"file holds")
    with archive.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version not in NPY_HEADERS:
            raise ValueError(f"member '{name}': unsupported .npy format version {version}")
        shape, fortran_order, dtype = NPY_HEADERS[version](f)
        if dtype.hasobject or dtype.kind not in "biufcSU":
            raise ValueError(f"member '{name}' holds {dtype} values; a checkpoint holds "
                             f"plain numbers only and nothing in it is unpickled")
        claimed = math.prod(shape) * dtype.itemsize
        stored = info.file_size - f.tell()
        if claimed != stored:
            raise ValueError(f"member '{name}': its header claims shape {shape} of {dtype} "
                             f"({claimed:,} bytes), but {stored:,} bytes are stored")
        data = bytearray(claimed)
        if f.readinto(data) != claimed:
            raise EOFError(f"member '{name}' ends early")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran_order else "C")


def remove_stale_temps(folder: Path) -> None:
    """Temp files left by a process killed mid-write, in ``folder`` and its subfolders."""
    for tmp in Path(folder).rglob(".*.tmp"):
        tmp.unlink(missing_ok=True)


def read_text(path: Path) -> str:
    """The text of a file dl wrote into a run or sweep folder; RunError naming it when it
    cannot be read (a directory in its place, no permission) or is not UTF-8 text."""
    try:
        return path.read_text(encoding="utf-8")
    except IsADirectoryError:
        raise RunError(f"{path}: is a directory, not a file") from None
    except UnicodeDecodeError as error:
        raise RunError(f"{path}: not UTF-8 text (byte {error.start} cannot be decoded)") from None
    except OSError as error:
        raise RunError(f"{path}: cannot be read ({error.strerror or error})") from None


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
    """What is wrong with the values of a metrics line, or None."""
    scores = dict.fromkeys((key for key in record if "/" in key), "a number or null")
    problem = entry_problem(record, {**RECORD_KINDS, **scores})
    if problem is not None:
        return problem
    for row in record.get("layers", []):
        if not layer_row_fits(row):
            return f"'layers' holds {row!r}, expected an object of index, layer and numbers"
    return None


# -- checkpoints ----------------------------------------------------------------------
def pack_checkpoint(params: dict, buffers: dict, optimizer_state: dict,
                    schedule_state: dict, meta: dict) -> dict[str, np.ndarray]:
    arrays = {f"param/{k}": v for k, v in params.items()}
    arrays.update({f"buffer/{k}": v for k, v in buffers.items()})
    arrays.update({f"optim/{k}": np.asarray(v) for k, v in optimizer_state.items()})
    arrays.update({f"schedule/{k}": np.asarray(v) for k, v in schedule_state.items()})
    arrays["meta"] = np.array(json.dumps(meta))
    return arrays


META_KEYS = {"epoch", "iteration", "step", "loss_sum", "last_finite_loss", "best_value",
             "best_epoch", "stop_best", "stale_epochs", "rng", "layer_rngs"}


META_KINDS = {"epoch": "a count", "iteration": "a count", "step": "a count",
              "stale_epochs": "a count", "best_epoch": "a count or null",
              "last_finite_loss": "a number or null", "best_value": "a number or null",
              "stop_best": "a number or null", "rng": "a generator state (an object)",
              "layer_rngs": "an object of generator states"}


def fits_meta(key: str, value) -> bool:
    """Whether a checkpoint's meta entry has the kind ``META_KINDS`` names."""
    kind = META_KINDS.get(key, "a number")
    if value is None:
        return kind.endswith("or null")
    if kind.startswith("a count"):
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0
    if kind.startswith("a number"):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, dict)


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
    try:
        meta = json.loads(str(arrays["meta"]))
    except ValueError as error:
        raise RunError(f"checkpoint 'meta' is not JSON ({error})") from None
    if not isinstance(meta, dict) or not META_KEYS <= set(meta):
        missing = sorted(META_KEYS - set(meta)) if isinstance(meta, dict) else sorted(META_KEYS)
        raise RunError(f"checkpoint 'meta' lacks {', '.join(missing)}")
    for key in META_KEYS:
        if not fits_meta(key, meta[key]):
            raise RunError(f"checkpoint 'meta' entry {key!r} is {meta[key]!r}, "
                           f"expected {META_KINDS.get(key, 'a number')}")
    return {"params": parts["param"], "buffers": parts["buffer"], "optim": parts["optim"],
            "schedule": parts["schedule"], "meta": meta, "perm": arrays.get("perm")}


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
        self.checkpoints = self.path / "checkpoints"
        self.lock_path = self.path / "run.lock"

    def acquire(self) -> None:
        """Take the folder's lock (refused while a live process holds it), then remove
        the temp files of a process killed mid-write."""
        try:
            self.checkpoints.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise RunError(f"cannot make the checkpoint folder {self.checkpoints} "
                           f"({error.strerror})") from None
        for _ in range(2):
            try:
                fd = os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                holder = self._lock_holder()
                if holder is not None and process_alive(holder):
                    raise RunError(f"{self.path} is in use by process {holder} "
                                   f"(lock file {self.lock_path})") from None
                self.lock_path.unlink(missing_ok=True)  # stale: its holder is gone
                continue
            HELD_LOCKS.add(self.lock_path)
            with os.fdopen(fd, "w") as f:
                f.write(str(os.getpid()))
            remove_stale_temps(self.path)
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
        HELD_LOCKS.discard(self.lock_path)

    def log_metrics(self, record: dict) -> None:
        with open(self.path / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

    def read_metrics(self) -> list[dict]:
        """The metric records; a last line cut short by a killed process is left out."""
        path = self.path / "metrics.jsonl"
        if not path.exists():
            return []
        lines = read_text(path).split("\n")
        records = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
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
        text = "".join(json.dumps(r) + "\n" for r in kept)
        write_atomic(self.path / "metrics.jsonl", lambda f: f.write(text.encode()))

    def log(self, line: str) -> None:
        with open(self.path / "train.log", "a") as f:
            f.write(line.rstrip("\n") + "\n")

    def save_checkpoint(self, kind: str, arrays: dict[str, np.ndarray]) -> None:
        save_npz(self.checkpoints / f"{kind}.npz", arrays)

    def load_checkpoint(self, kind: str) -> dict:
        path = self.checkpoints / f"{kind}.npz"
        if not path.exists():
            sweep = next((p for p in self.path.parents if (p / "ledger.jsonl").exists()), None)
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
        text = json.dumps(summary, indent=2) + "\n"
        write_atomic(self.path / "summary.json", lambda f: f.write(text.encode()))

    def read_summary(self) -> dict:
        """The run's summary.json ({} before it has one); RunError when it is damaged."""
        path = self.path / "summary.json"
        if not path.exists():
            return {}
        try:
            summary = json.loads(read_text(path))
        except ValueError as error:
            raise RunError(f"{path}: not a readable summary ({error})") from None
        if not isinstance(summary, dict):
            raise RunError(f"{path}: not a readable summary (a JSON {type(summary).__name__}, "
                           f"not an object)")
        problem = entry_problem(summary, SUMMARY_KINDS)
        if problem is not None:
            raise RunError(f"{path}: not a readable summary ({problem})")
        return summary

    def write_text(self, name: str, text: str) -> None:
        write_atomic(self.path / name, lambda f: f.write(text.encode()))


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
