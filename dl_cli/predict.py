"""``dl predict``'s work: raw samples read from a file in batches, scored by a run, written
as a CSV table.

```python
layout = TableLayout.of(run)                      # which CSV column is the label, if any
batches = read_samples("new.csv", run, layout)    # raw samples (n, *shape), in file order
count = write_predictions(batches, run, out_file, proba=True)
```

Input formats, chosen by the name, and the content of IDX files:

- CSV, one sample per line, read as it streams (a huge file is never loaded whole), ``-``
  for standard input. A first line holding any cell that is not a number is a header.
  The label column, if there is one, is left out: the one the header names as the run's
  CSV data set named it (``label`` by default), or, without a header, the run's CSV
  label index when a row has one value more than the model takes.
- ``.npz`` holding ``X``, read from the archive a batch of rows at a time.
- IDX images (MNIST's format, plain or ``.gz``), pixels read as the mnist data set reads
  them: bytes / 255.

A sample holds the run's raw input shape: a CSV row its values in row-major order; an
npz or IDX sample that shape, or its values in row-major order when either shape is flat,
or that shape with axes of length 1 added or dropped. Bad input is an ``InputError`` naming the file and where: the line and
column of a cell, how many features the model takes, the shape it takes, an empty file.

The output table has a ``prediction`` column (the class name, or the index where the
data has no names; the value for regression; ``prediction_<i>`` for several per
sample: a label per step or per pixel, row-major, an autoencoder's reconstruction)
and, with ``proba``, one ``prob_<class>`` column per class (``prob_<i>_<class>`` per
step or pixel).
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import itertools
import math
import sys
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data.files import ENCODING
from .data.image_files import pixels, read_idx
from .registry import Registry
from .storage import NPY_HEADERS, write_atomic

ROWS = 1024  # samples read, scored and written at a time


class InputError(ValueError):
    """A file of samples cannot be scored by the run; the message says where and why."""


# -- the label column of a CSV --------------------------------------------------------
@dataclass
class TableLayout:
    """How a CSV of the run's samples may mark its label column."""

    label: str | int = "label"
    delimiter: str = ","

    @classmethod
    def of(cls, run) -> "TableLayout":
        """The run's own CSV options when it trained on a CSV data set, else the default."""
        name, options = Registry.split_spec(run.config.data.dataset)
        if name != "csv":
            return cls()
        return cls(label=options.get("label", "label"), delimiter=options.get("delimiter", ","))


def is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def feature_columns(name: str, line: int, cells: list[str], header: bool, layout: TableLayout,
                    features: int, shape: tuple[int, ...]) -> list[int]:
    """The indices of the feature columns of a table whose first row, on ``line``, is
    ``cells``."""
    width = len(cells)
    label = None
    if header and isinstance(layout.label, str) and layout.label in [c.strip() for c in cells]:
        label = [c.strip() for c in cells].index(layout.label)
    elif isinstance(layout.label, int) and width == features + 1 and -width <= layout.label < width:
        label = layout.label % width
    columns = [i for i in range(width) if i != label]
    if len(columns) != features:
        takes = f"the model takes {features} feature{'s' * (features != 1)}" + (
            f" (samples of shape {shape})" if len(shape) > 1 else "")
        if label is not None:
            found = f"{len(columns)} feature columns besides the label column {cells[label]!r}"
        else:
            found = f"{width} column{'s' * (width != 1)}"
            if width == features + 1:
                found += (f": one more than the features, but no label column is named (a "
                          f"header line naming it {layout.label!r} marks it)")
        raise InputError(f"{name}: line {line}: {found}; {takes}")
    return columns


# -- CSV, streamed --------------------------------------------------------------------
def csv_samples(file, name: str, layout: TableLayout, shape: tuple[int, ...],
                rows: int) -> Iterator[np.ndarray]:
    """Batches of at most ``rows`` samples from a CSV text stream, in order."""
    features = math.prod(shape)
    reader = csv.reader(file, delimiter=layout.delimiter)
    lines = ((reader.line_num, row) for row in reader  # blank lines left out
             if len(row) > 1 or row and row[0].strip())
    first = next(lines, None)
    if first is None:
        raise InputError(f"{name}: no data rows (the file is empty)")
    header = not all(is_number(cell) for cell in first[1])
    columns = feature_columns(name, first[0], first[1], header, layout, features, shape)
    width = len(first[1])
    if not header:
        lines = itertools.chain([first], lines)
    seen = False
    while batch := list(itertools.islice(lines, rows)):
        seen = True
        numbers, cells = [line for line, _ in batch], [row for _, row in batch]
        for number, row in zip(numbers, cells):
            if len(row) != width:
                raise InputError(f"{name}: line {number}: {len(row)} cells where the table "
                                 f"has {width}")
        if len(columns) != width:
            cells = [[row[i] for i in columns] for row in cells]
        try:
            X = np.array(cells, dtype=np.float64)
        except ValueError:
            raise InputError(f"{name}: {bad_cell(numbers, cells, columns)}") from None
        bad = np.flatnonzero(~np.isfinite(X).all(axis=1))
        if bad.size:
            raise InputError(f"{name}: line {numbers[bad[0]]}: holds NaN or infinity")
        yield X.reshape(len(X), *shape)
    if not seen:
        raise InputError(f"{name}: no data rows, only the header line")


def bad_cell(numbers: list[int], cells: list[list[str]], columns: list[int]) -> str:
    """``line L, column C: 'x' is not a number`` for the first such cell (C counts the
    file's columns, from 1)."""
    for number, row in zip(numbers, cells):
        for column, cell in zip(columns, row):
            if not is_number(cell):
                return f"line {number}, column {column + 1}: {cell!r} is not a number"
    return "a cell is not a number"


# -- arrays: npz and IDX --------------------------------------------------------------
def fitted_shape(name: str, found: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    """Refuse samples of shape ``found`` unless they hold the model's raw samples of
    ``shape`` in row-major order: the same shape, either of them flat, or the same but
    for axes of length 1."""
    squeezed = tuple(d for d in found if d != 1)
    if found == shape or (math.prod(found) == math.prod(shape) and (
            len(found) == 1 or len(shape) == 1 or squeezed == tuple(d for d in shape if d != 1))):
        return shape
    raise InputError(f"{name}: samples of shape {found} do not fit the model, which takes "
                     f"raw samples of shape {shape} ({math.prod(shape)} values each)")


def npz_samples(path: Path, shape: tuple[int, ...], rows: int) -> Iterator[np.ndarray]:
    """Batches of the array ``X`` of an ``.npz`` archive, read from the archive as they
    are needed (compressed or not); Python objects are refused, never unpickled."""
    if not zipfile.is_zipfile(path):
        raise InputError(f"{path}: not a .npz archive (the zip of .npy arrays np.savez writes)")
    with zipfile.ZipFile(path) as archive:
        names = [info.filename.removesuffix(".npy") for info in archive.infolist()]
        if "X" not in names:
            raise InputError(f"{path}: no array named X; found {', '.join(names) or 'none'}")
        with archive.open("X.npy") as f:
            try:
                version = np.lib.format.read_magic(f)
                found, fortran, dtype = NPY_HEADERS[version](f)
            except (ValueError, KeyError) as error:
                raise InputError(f"{path}: X is not .npy data ({error})") from None
            if dtype.hasobject or dtype.kind not in "biuf":
                raise InputError(f"{path}: X holds {dtype} values; samples are numbers")
            if fortran and len(found) > 1:
                raise InputError(f"{path}: X is stored in Fortran order; save "
                                 f"np.ascontiguousarray(X)")
            if len(found) < 1 or found[0] == 0:
                raise InputError(f"{path}: X {found} holds no samples")
            fitted_shape(str(path), tuple(found[1:]), shape)
            size = math.prod(found[1:]) * dtype.itemsize
            for start in range(0, found[0], rows):
                count = min(rows, found[0] - start)
                data = f.read(count * size)
                if len(data) != count * size:
                    raise InputError(f"{path}: X ends early, after {start + len(data) // size} "
                                     f"of the {found[0]} samples its header declares")
                X = np.frombuffer(data, dtype=dtype).astype(np.float64).reshape(count, *shape)
                bad = np.flatnonzero(~np.isfinite(X.reshape(count, -1)).all(axis=1))
                if bad.size:
                    raise InputError(f"{path}: X[{start + bad[0]}] holds NaN or infinity")
                yield X


def idx_head(path: Path) -> bytes:
    """The first four bytes of a file (of its decompressed data when gzipped)."""
    try:
        with (gzip.open(path) if path.suffix == ".gz" else open(path, "rb")) as file:
            return file.read(4)
    except (OSError, EOFError, zlib.error):  # left to the reader chosen by the name
        return b""


def is_idx(path: Path) -> bool:
    """Whether a file starts as an IDX file of unsigned bytes (``00 00 08 ndim``)."""
    head = idx_head(path)
    return len(head) == 4 and head[:3] == b"\x00\x00\x08"


def idx_samples(path: Path, shape: tuple[int, ...], rows: int) -> Iterator[np.ndarray]:
    """Batches of the images of an IDX file, pixels in [0, 1]."""
    from .data import DataError

    try:
        images = read_idx(path, idx_head(path)[3])
    except DataError as error:
        raise InputError(str(error)) from None
    if images.ndim < 2 or len(images) == 0:
        raise InputError(f"{path}: holds an array of shape {images.shape}, not images")
    fitted_shape(str(path), images.shape[1:], shape)
    for start in range(0, len(images), rows):
        part = images[start:start + rows]
        yield pixels(part).astype(np.float64).reshape(len(part), *shape)


# -- choosing the reader --------------------------------------------------------------
def read_samples(source: str | Path, shape: tuple[int, ...], layout: TableLayout,
                 rows: int = ROWS, progress=None) -> Iterator[np.ndarray]:
    """Batches of raw samples ``(n, *shape)`` (float64) from ``source`` (``-``: a CSV on
    standard input), in file order. ``progress(amount)`` hears the bytes of CSV read
    and the samples of other files, as they are read."""
    if str(source) == "-":
        text = io.TextIOWrapper(sys.stdin.buffer, encoding=ENCODING, newline="")
        return counted_lines(text, "standard input", layout, shape, rows, progress)
    path = Path(source)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: a folder, where a file of samples is expected")
    if path.suffix == ".npz":
        return counted(npz_samples(path, shape, rows), progress)
    if is_idx(path):
        return counted(idx_samples(path, shape, rows), progress)
    return csv_file(path, layout, shape, rows, progress)


def csv_file(path: Path, layout: TableLayout, shape, rows: int, progress):
    with open(path, encoding=ENCODING, newline="") as file:
        yield from counted_lines(file, str(path), layout, shape, rows, progress)


def counted_lines(file, name: str, layout: TableLayout, shape, rows: int, progress):
    """``csv_samples`` of a text stream, telling ``progress`` the bytes each line took."""
    def lines():
        for line in file:
            if progress is not None:
                progress(len(line.encode()) if not line.isascii() else len(line))
            yield line

    try:
        yield from csv_samples(lines(), name, layout, shape, rows)
    except UnicodeDecodeError as error:
        raise InputError(f"{name}: not UTF-8 text ({error.reason} at byte {error.start})") from None


def counted(batches: Iterator[np.ndarray], progress) -> Iterator[np.ndarray]:
    for X in batches:
        if progress is not None:
            progress(len(X))
        yield X


def input_size(source: str | Path) -> tuple[int | None, str]:
    """What a progress bar counts for ``source``: its bytes for a CSV file, its samples
    otherwise (None where unknown: standard input, a compressed archive)."""
    path = Path(source)
    if str(source) == "-" or not path.is_file():
        return None, "B"
    if path.suffix == ".npz" or is_idx(path):
        return None, " samples"
    return path.stat().st_size, "B"


# -- the output table -----------------------------------------------------------------
def check_predictable(run, proba: bool) -> None:
    """Refuse what ``dl predict`` cannot do with the run: probabilities of a regression
    model, text from a character model (``dl sample``'s work)."""
    if proba and run.task == "regression":
        raise InputError("--proba: a regression model predicts values, not class probabilities")
    if run.inputs.vocab is not None and 1 in run.model.loss_fn.label_axes:
        raise InputError(f"{run.path} is a character model: dl sample {run.path} --prime TEXT "
                         f"generates text from it")


def header(labels: np.ndarray, probabilities: np.ndarray | None, names: list[str]) -> list[str]:
    """The output columns for outputs of these shapes: ``prediction`` (``prediction_<i>``
    for several per sample), then ``prob_<class>`` (``prob_<i>_<class>`` for several)."""
    per_sample = math.prod(labels.shape[1:])
    columns = ["prediction"] if per_sample == 1 else [f"prediction_{i}" for i in range(per_sample)]
    if probabilities is not None:
        positions = math.prod(probabilities.shape[1:-1])
        columns += ([f"prob_{name}" for name in names] if positions == 1 else
                    [f"prob_{i}_{name}" for i in range(positions) for name in names])
    return columns


@functools.lru_cache(maxsize=4096)
def cell(text: str) -> str:
    """A cell as CSV writes it: quoted when it holds a comma, a quote or a line break."""
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def formatted(values: np.ndarray) -> list[str]:
    """Each sample's values as the cells of a CSV line: numbers as ``%.9g`` (float32 to
    the last bit), class names quoted where CSV needs it."""
    flat = values.reshape(len(values), -1)
    if flat.dtype.kind == "f":
        row = ",".join(["%.9g"] * flat.shape[1])
        return [row % tuple(sample) for sample in flat.tolist()]
    return [",".join(cell(str(value)) for value in sample) for sample in flat.tolist()]


def check_tokens(X: np.ndarray, vocab: int, first: int) -> None:
    """Token ids must be whole numbers in ``[0, vocab)``; ``first`` numbers X's first sample."""
    bad = np.flatnonzero(((X < 0) | (X >= vocab) | (X != np.round(X))).reshape(len(X), -1).any(axis=1))
    if bad.size:
        raise InputError(f"sample {first + bad[0] + 1}: holds values that are not token ids "
                         f"(whole numbers 0..{vocab - 1})")


def write_predictions(batches: Iterator[np.ndarray], run, out, proba: bool) -> int:
    """Score every batch with ``run`` and write the table to the text stream ``out``;
    the number of samples. The header is written with the first batch's rows, so an
    empty or unreadable file writes nothing."""
    vocab = run.model.layers[0].vocab if run.inputs.takes_tokens else None
    count = 0
    for X in batches:
        if vocab is not None:
            check_tokens(X, vocab, count)
        scores = run.scores(X)
        labels = run.labels(scores)
        probabilities = run.probabilities(scores) if proba else None
        lines = formatted(labels)
        if probabilities is not None:
            lines = [f"{line},{more}" for line, more in zip(lines, formatted(probabilities))]
        if count == 0:
            lines.insert(0, ",".join(map(cell, header(labels, probabilities, run.output_names))))
        out.write("\n".join(lines) + "\n")
        count += len(X)
    return count


def write_table(path: Path, batches: Iterator[np.ndarray], run, proba: bool) -> int:
    """``write_predictions`` into the file ``path``, written atomically: a failure midway
    (a bad line far into the input) leaves no file, or the one that was there."""
    counts = []

    def write(binary) -> None:
        stream = io.TextIOWrapper(binary, encoding="utf-8", newline="")
        counts.append(write_predictions(batches, run, stream, proba))
        stream.flush()
        stream.detach()  # write_atomic syncs and closes the file itself

    write_atomic(path, write)
    return counts[0]
