"""The files of run and sweep folders on disk: atomic writes, and reading back safely.

Every file is written atomically (a temp file in the same folder, flush, fsync,
``os.replace``), so a crash never leaves one half-written. Checkpoints (``.npz``) are
read member by member: each ``.npy`` header is checked against the bytes the archive
really holds before an array is allocated, and Python objects are refused, so loading
one never runs code and a forged header cannot claim gigabytes. A file that cannot be
used is a ``RunError`` naming it.
"""

from __future__ import annotations

import math
import os
import zipfile
from pathlib import Path

import numpy as np


class RunError(RuntimeError):
    """A run folder or checkpoint cannot be used as asked."""


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
        return path.read_text(encoding="utf-8")
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


def load_npz_member(path: Path, name: str) -> np.ndarray:
    """One array of an ``.npz`` file written by ``save_npz`` (``load_npz``'s checks), the
    others left unread; RunError when the file or the member cannot be read."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with zipfile.ZipFile(path) as archive:
            return read_member(archive, archive.getinfo(f"{name}.npy"), size)
    except FileNotFoundError:
        raise RunError(f"{path}: no such checkpoint") from None
    except KeyError:
        raise RunError(f"{path}: holds no '{name}'") from None
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
