"""The files of run and sweep folders on disk: atomic writes, and reading back safely.

Every file is written atomically (a temp file in the same folder, flush, fsync,
``os.replace``), so a crash never leaves one half-written. Checkpoints (``.npz``) are
read member by member (``npz``): each ``.npy`` header is checked against the bytes the
archive really holds before an array is allocated, and Python objects are refused, so
loading one never runs code and a forged header cannot claim gigabytes. A file that
cannot be used is a ``RunError`` naming it.
"""

from __future__ import annotations

import errno
import os
import stat
import zipfile
from pathlib import Path

import numpy as np

from .npz import read_member, read_npz


class RunError(RuntimeError):
    """A run folder or checkpoint cannot be used as asked."""


# -- opening files of a run or sweep folder -------------------------------------------
# A file of a run or sweep folder is opened without following a symbolic link in its place
# (a link planted there would have dl write, say, train.log lines into another file), and
# only when it is a regular file (a FIFO would block, /dev/zero never end).
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
NONBLOCK = getattr(os, "O_NONBLOCK", 0)


def open_fd(path: Path, flags: int, mode: int = 0o644) -> int:
    """``os.open`` of a regular file, never through a symbolic link; RunError otherwise."""
    try:
        fd = os.open(path, flags | NOFOLLOW | NONBLOCK, mode)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise RunError(f"{path}: is a symbolic link; dl reads and writes the files of run "
                           f"and sweep folders themselves, never through a link (remove it)") from None
        if error.errno == errno.ENXIO:  # a FIFO without a reader, opened to write
            raise RunError(f"{path}: is not a regular file (a FIFO); remove it") from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise RunError(f"{path}: is {kind}, not a file dl wrote; remove it")
    if NONBLOCK:
        os.set_blocking(fd, True)
    return fd


def open_append(path: Path):
    """``path`` opened to append UTF-8 text (created if missing): see ``open_fd``."""
    fd = open_fd(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    return os.fdopen(fd, "a", encoding="utf-8")


def refuse_links(folder: Path, names) -> None:
    """RunError for the first of ``folder``'s entries ``names`` that is a symbolic link: a
    folder or file of a run or sweep folder that points elsewhere would take dl's writes
    there."""
    for name in names:
        path = Path(folder) / name
        if path.is_symlink():
            raise RunError(f"{path}: is a symbolic link; dl writes the files of run and sweep "
                           f"folders themselves, never through a link (remove it)")


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
        with os.fdopen(open_fd(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), "wb") as f:
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


def write_text(path: Path, text: str) -> None:
    """``text`` as the UTF-8 contents of ``path``, written atomically."""
    write_atomic(path, lambda f: f.write(text.encode()))


def remove_stale_temps(folder: Path) -> None:
    """Temp files left by a process killed mid-write, in ``folder`` and its subfolders."""
    for tmp in Path(folder).rglob(".*.tmp"):
        tmp.unlink(missing_ok=True)


def read_text(path: Path) -> str:
    """The text of a file dl wrote into a run or sweep folder; RunError naming it when it
    cannot be read (a directory in its place, no permission) or is not UTF-8 text."""
    try:
        with os.fdopen(open_fd(path, os.O_RDONLY), "rb") as f:
            return f.read().decode("utf-8")
    except IsADirectoryError:
        raise RunError(f"{path}: is a directory, not a file") from None
    except UnicodeDecodeError as error:
        raise RunError(f"{path}: not UTF-8 text (byte {error.start} cannot be decoded)") from None
    except OSError as error:
        raise RunError(f"{path}: cannot be read ({error.strerror or error})") from None


# -- arrays ---------------------------------------------------------------------------
def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    write_atomic(path, lambda f: np.savez(f, **arrays))


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file written by ``save_npz`` (``npz.read_npz``, stored
    members only); anything else (a pickle, a truncated file, an object array, a header
    promising more bytes than the file holds) is a RunError naming the file."""
    path = Path(path)
    try:
        with os.fdopen(open_fd(path, os.O_RDONLY), "rb") as f:
            return read_npz(f, os.fstat(f.fileno()).st_size, deflated=False)
    except FileNotFoundError:
        raise RunError(f"{path}: no such checkpoint") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as error:
        raise RunError(f"{path}: not a readable checkpoint ({error})") from None


def load_npz_member(path: Path, name: str) -> np.ndarray:
    """One array of an ``.npz`` file written by ``save_npz`` (``load_npz``'s checks), the
    others left unread; RunError when the file or the member cannot be read."""
    path = Path(path)
    try:
        with os.fdopen(open_fd(path, os.O_RDONLY), "rb") as f:
            size = os.fstat(f.fileno()).st_size
            with zipfile.ZipFile(f) as archive:
                return read_member(archive, archive.getinfo(f"{name}.npy"), size)
    except FileNotFoundError:
        raise RunError(f"{path}: no such checkpoint") from None
    except KeyError:
        raise RunError(f"{path}: holds no '{name}'") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as error:
        raise RunError(f"{path}: not a readable checkpoint ({error})") from None
