"""Reading ``.npz`` archives (checkpoints, data files) without trusting them.

An ``.npz`` is a zip of ``.npy`` members, each a header (dtype, shape) and the array's
bytes. ``numpy.load`` allocates what a header claims before it reads the bytes, so a
forged header of a few bytes can ask for terabytes; it would also unpickle object arrays
if asked. Here every member is read by hand:

1. its ``.npy`` header is parsed; a dtype holding Python objects is refused (nothing is
   ever unpickled);
2. the bytes the header claims (``shape × itemsize``) must equal the bytes the archive
   records for the member, and those must fit the file: stored members must lie inside
   it, and a deflated member may not claim more than ``MAX_DEFLATE_RATIO`` times its
   compressed size, more than deflate can ever expand to;
3. only then is the array allocated, and filled from the member, which must not end early
   (its CRC is checked by ``zipfile`` as it is read).

So reading an archive never needs more memory than ``MAX_DEFLATE_RATIO`` times its size
on disk, whatever its headers say. Problems raise ``NpzError`` naming the member.
"""

from __future__ import annotations

import math
import zipfile
from typing import BinaryIO

import numpy as np

# zlib's deflate expands a stream at most ~1032-fold (258-byte matches of 2-bit codes):
# a member claiming more than this times its compressed bytes is forged.
MAX_DEFLATE_RATIO = 1032
NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0,
               (2, 0): np.lib.format.read_array_header_2_0}


class NpzError(ValueError):
    """A member of an archive cannot be read as an array; the message names it."""


def read_npz(file: BinaryIO, file_size: int, deflated: bool) -> dict[str, np.ndarray]:
    """Every member of the archive in ``file`` (``file_size`` bytes), by name without
    ``.npy``; ``deflated``: members may be compressed (``np.savez_compressed``), else
    only stored ones are read. NpzError, or zipfile.BadZipFile for an archive that is
    not a zip."""
    with zipfile.ZipFile(file) as archive:
        return {info.filename.removesuffix(".npy"): read_member(archive, info, file_size,
                                                                deflated)
                for info in archive.infolist()}


def read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, file_size: int,
                deflated: bool = False) -> np.ndarray:
    """One ``.npy`` member, allocated only once the bytes its header claims are known to
    be in the archive (see the module's docstring)."""
    name = info.filename.removesuffix(".npy")
    check_sizes(info, name, file_size, deflated)
    try:
        with archive.open(info) as f:
            try:
                version = np.lib.format.read_magic(f)
            except ValueError:
                raise NpzError(f"member '{name}' is not .npy data") from None
            if version not in NPY_HEADERS:
                raise NpzError(f"member '{name}': unsupported .npy format version {version}")
            try:
                shape, fortran_order, dtype = NPY_HEADERS[version](f)
            except ValueError as error:
                raise NpzError(f"member '{name}' has a damaged .npy header ({error})") from None
            if dtype.hasobject or dtype.kind not in "biufcSU":
                raise NpzError(f"member '{name}' holds {dtype} values, which cannot be read "
                               f"without pickle; nothing in it is unpickled: save plain "
                               f"numeric arrays")
            claimed = math.prod(shape) * dtype.itemsize
            stored = info.file_size - f.tell()
            if claimed != stored:
                raise NpzError(f"member '{name}': its header claims shape {shape} of {dtype} "
                               f"({claimed:,} bytes), but {stored:,} bytes are stored")
            data = bytearray(claimed)
            if f.readinto(data) != claimed:
                raise NpzError(f"member '{name}' ends early: the archive is cut short")
    except EOFError:
        raise NpzError(f"member '{name}' ends early: the archive is cut short") from None
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran_order else "C")


def check_sizes(info: zipfile.ZipInfo, name: str, file_size: int, deflated: bool) -> None:
    """Refuse a member whose recorded sizes do not fit the file (before any of it is read)."""
    if info.header_offset + info.compress_size > file_size:
        raise NpzError(f"member '{name}' claims {info.compress_size:,} bytes beyond the "
                       f"{file_size:,} the file holds: the archive is cut short or forged")
    if info.compress_type == zipfile.ZIP_STORED:
        if info.file_size != info.compress_size:
            raise NpzError(f"member '{name}' claims {info.file_size:,} bytes, but "
                           f"{info.compress_size:,} are stored")
        return
    if not deflated:
        raise NpzError(f"member '{name}' is compressed; checkpoints store arrays as they are")
    if info.compress_type != zipfile.ZIP_DEFLATED:
        raise NpzError(f"member '{name}' is compressed with method {info.compress_type}; "
                       f"only deflate (np.savez_compressed) is read")
    if info.file_size > MAX_DEFLATE_RATIO * info.compress_size + 1024:
        raise NpzError(f"member '{name}' claims {info.file_size:,} bytes from "
                       f"{info.compress_size:,} compressed ones, more than deflate can "
                       f"expand to: the archive is forged")
