"""Tabular datasets read from files: NumPy ``.npz`` archives and CSV tables.

Nothing a user loads can run code: ``.npz`` arrays are read member by member
(``npz.read_member``), so an archive holding Python objects is refused and a forged
header cannot claim more memory than the file can hold. Malformed files raise ``DataError``
naming the file and the line, column or array where the problem is.

``task: auto`` decides from the labels: integer labels (npz) or whole numbers >= 0 (csv)
mean classification with ``max label + 1`` classes; words in a csv's label column
(``setosa``) mean classification with the words, sorted, as class names; anything else
means regression.
Class labels are ``0 … K−1``, each with training samples: labels such as ±1 or 1..K are
refused with the mapping to make (a ``names`` array in an npz states K, and so allows a
class without samples); a test label that no training sample has is refused too.
CSV files are read as UTF-8, with or without a byte-order mark.
"""

from __future__ import annotations

import csv
import itertools
import os
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..npz import NpzError, read_member
from ..registry import DATASETS
from ..checks import Rule, check_bool, check_choice, is_int, require
from .base import TASKS, DataError, Dataset, RawData

MOST_MISTAKES = 10  # of a table, named in one report; the others are counted
ENCODING = "utf-8-sig"  # UTF-8, skipping a byte-order mark (spreadsheets write one)


PATH = Rule("a file or folder name", lambda v: isinstance(v, (str, os.PathLike)) and bool(str(v)))
LABEL = Rule("a column name or index", lambda v: isinstance(v, str) or is_int(v))
DELIMITER = Rule("one character", lambda v: isinstance(v, str) and len(v) == 1)


def check_path(value) -> str:
    return str(require("path", value, PATH))


def existing(path: Path) -> Path:
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    return path


def existing_file(path: Path) -> Path:
    """``path``, a regular file (or a link to one): not a folder, and not a FIFO or a
    device, which reading would block on (a FIFO) or never finish (/dev/zero)."""
    if existing(path).is_dir():
        raise DataError(f"{path}: a folder, where a data file is expected")
    if not path.is_file():
        raise DataError(f"{path}: not a regular file (a FIFO, a device or a socket), where "
                        f"a data file is expected")
    return path


def number(value) -> str:
    """A value as a file holds it: ``1``, ``0.5``, ``1e+19``, ``9223372036854775808``."""
    value = value.item() if isinstance(value, np.generic) else value
    return f"{value:g}" if isinstance(value, float) else str(value)


def listed(values: np.ndarray, most: int = 6) -> str:
    """``"-1, 1"``, or the first ``most`` values and ``…``."""
    return ", ".join(map(number, values[:most].tolist())) + (", …" if len(values) > most else "")


def class_labels(path: Path, y: np.ndarray, where) -> np.ndarray:
    """Labels as int64, refusing negatives, fractions and values int64 cannot hold (from
    2**63, compared as float64), which the cast would wrap around to negatives (uint64
    or float labels); ``where(i)`` names sample i."""
    huge = np.flatnonzero(y >= 2.0 ** 63)
    if huge.size:
        found = np.unique(y)
        raise DataError(f"{path}: {where(huge[0])}: label {number(y[huge[0]])} is too large to "
                        f"be a class index; class labels must be whole numbers 0..K-1, got "
                        f"{listed(found)}: map them to 0..{len(found) - 1}, or, if they are "
                        f"values to predict, set the data set's task: regression")
    bad = np.flatnonzero((y < 0) | (y != np.round(y)))
    if bad.size:
        found = np.unique(y)
        advice = ""
        if np.all(found == np.round(found)):
            mapping = ", ".join(f"{v:g} → {i}" for i, v in enumerate(found[:4].tolist()))
            advice = f": map them, e.g. {mapping}"
        raise DataError(f"{path}: {where(bad[0])}: label {y[bad[0]]:g} is not a class index; "
                        f"class labels must be whole numbers 0..K-1, got {listed(found)}{advice}")
    return y.astype(np.int64)


def check_classes(path: Path, labels: dict[str, np.ndarray], classes: int, named: bool) -> None:
    """Refuse class indices without a training sample (unless ``named``: the file states
    its classes) and test labels that no training sample has."""
    seen = np.unique(labels["y"])
    if "y_test" in labels:
        unseen = np.setdiff1d(labels["y_test"], seen)
        if unseen.size:
            raise DataError(f"{path}: y_test holds class {listed(unseen)}, which no training "
                            f"sample has (training labels: {listed(seen)}); the model cannot "
                            f"learn it")
    if not named and len(seen) < classes:
        # the first empty classes, enough for listed() to show six and "…": 0..K-1 in full
        # would take K·8 bytes, terabytes for a label such as 10**12
        empty = np.setdiff1d(np.arange(min(classes, len(seen) + 7)), seen)
        moves = [f"{v} → {i}" for i, v in enumerate(seen.tolist()) if v != i][:3]
        raise DataError(f"{path}: class labels must be 0..K-1, but labels {listed(seen)} leave "
                        f"class {listed(empty)} without samples; map them to 0..{len(seen) - 1} "
                        f"(e.g. {', '.join(moves)}), or, if they are values to predict, set "
                        f"the data set's task: regression")


def check_finite(path: Path, X: np.ndarray, where) -> None:
    bad = np.flatnonzero(~np.isfinite(X.reshape(len(X), X[:1].size)).all(axis=1))
    if bad.size:
        raise DataError(f"{path}: {where(bad[0])}: holds NaN or infinity")


@DATASETS.register("npz")
class Npz(Dataset):
    """Arrays from a NumPy ``.npz`` archive: ``X (N, ...)`` and ``y (N,)``, optionally
    ``X_test``/``y_test`` (an explicit test set) and ``names`` (class names)."""

    def __init__(self, path: str, task: str = "auto"):
        self.path = check_path(path)
        self.task = check_choice("task", task, ("auto", *TASKS))

    def read(self, path: Path) -> dict[str, np.ndarray]:
        """The archive's arrays X, y, X_test, y_test and names (``npz.read_member``: each
        header checked against the bytes the archive holds before anything is
        allocated; nothing unpickled); DataError naming the file and the array."""
        existing_file(path)
        if not zipfile.is_zipfile(path):
            raise DataError(f"{path}: not a .npz archive (the zip of .npy arrays that "
                            f"np.savez writes)")
        try:
            with open(path, "rb") as file, zipfile.ZipFile(file) as archive:
                members = {info.filename.removesuffix(".npy"): info for info in archive.infolist()}
                size = os.fstat(file.fileno()).st_size
                arrays = {key: self.member(path, archive, members[key], size)
                          for key in ("X", "y", "X_test", "y_test", "names") if key in members}
        except (OSError, zipfile.BadZipFile) as err:
            raise DataError(f"{path}: not a readable .npz archive ({err})") from None
        missing = [key for key in ("X", "y") if key not in arrays]
        if missing:
            raise DataError(f"{path}: no array named {' or '.join(missing)}; "
                            f"found {', '.join(members) or 'none'}")
        return arrays

    @staticmethod
    def member(path: Path, archive, info, size: int) -> np.ndarray:
        """One array of the archive; DataError naming it when it is damaged, cut short,
        forged, encrypted, not .npy data, or holds Python objects (never unpickled)."""
        key = info.filename.removesuffix(".npy")
        try:
            return read_member(archive, info, size, deflated=True)
        except NpzError as err:
            raise DataError(f"{path}: {err}") from None
        except (OSError, EOFError, RuntimeError, zipfile.BadZipFile, zlib.error) as err:
            raise DataError(f"{path}: array '{key}' is damaged ({err})") from None

    @staticmethod
    def check_pairs(path: Path, arrays: dict[str, np.ndarray]) -> list[tuple[str, str]]:
        """The ``(inputs, targets)`` key pairs present, each checked: numeric, finite, one
        row per sample; test samples shaped like training samples."""
        if ("X_test" in arrays) != ("y_test" in arrays):
            raise DataError(f"{path}: X_test and y_test come together; found only one")
        pairs = [("X", "y")] + ([("X_test", "y_test")] if "X_test" in arrays else [])
        for x_key, y_key in pairs:
            X, y = arrays[x_key], arrays[y_key]
            if X.dtype.kind not in "biuf" or y.dtype.kind not in "biuf":
                raise DataError(f"{path}: {x_key} ({X.dtype}) and {y_key} ({y.dtype}) must be numeric")
            if X.ndim < 2 or y.ndim < 1 or len(X) != len(y):
                raise DataError(f"{path}: {x_key} {X.shape} and {y_key} {y.shape} must both "
                                f"have one row per sample (X at least 2-D)")
            if len(X) == 0:
                raise DataError(f"{path}: {x_key} {X.shape} holds no samples")
            if X[0].size == 0:
                raise DataError(f"{path}: {x_key} {X.shape} has no features; each sample "
                                f"needs at least one value")
            for key in (x_key, y_key):
                check_finite(path, arrays[key], lambda i, key=key: f"{key}[{i}]")
        if "X_test" in arrays and arrays["X_test"].shape[1:] != arrays["X"].shape[1:]:
            raise DataError(f"{path}: X_test samples {arrays['X_test'].shape[1:]} differ from "
                            f"X samples {arrays['X'].shape[1:]}")
        return pairs

    def load(self, rng):
        path = Path(self.path)
        arrays = self.read(path)
        pairs = self.check_pairs(path, arrays)
        X = arrays["X"].astype(np.float64)
        X_test = arrays["X_test"].astype(np.float64) if "X_test" in arrays else None
        task = self.task
        if task == "auto":
            task = "classification" if arrays["y"].dtype.kind in "biu" else "regression"
        if task == "regression":
            y_test = arrays["y_test"].astype(np.float64) if X_test is not None else None
            return RawData(X, arrays["y"].astype(np.float64), task="regression",
                           X_test=X_test, y_test=y_test)
        labels = {}
        for _, key in pairs:
            if arrays[key].ndim != 1:
                raise DataError(f"{path}: class labels {key} must be 1-D, got shape {arrays[key].shape}")
            labels[key] = class_labels(path, arrays[key], lambda i, key=key: f"{key}[{i}]")
        classes = 1 + max(int(y.max(initial=0)) for y in labels.values())
        names = None
        if "names" in arrays:
            names = [str(name) for name in arrays["names"].ravel()]
            if len(names) < classes:
                raise DataError(f"{path}: {len(names)} class names for labels up to {classes - 1}")
            classes = len(names)
        check_classes(path, labels, classes, named=names is not None)
        return RawData(X, labels["y"], classes=classes, names=names,
                       X_test=X_test, y_test=labels.get("y_test"))


def text_labels(cells: np.ndarray) -> bool:
    """Whether a label column holds words (``setosa``) rather than numbers."""
    try:
        cells.astype(np.float64)
    except ValueError:
        return True
    return False


def named_classes(X: np.ndarray, cells: np.ndarray) -> RawData:
    """Classes named by text labels: indices in the names' sorted order, the names kept."""
    names, labels = np.unique(np.char.strip(cells), return_inverse=True)
    return RawData(X, labels.astype(np.int64), classes=len(names), names=names.tolist())


@DATASETS.register("csv")
class Csv(Dataset):
    """A table, one sample per line; ``label`` (a header name, or a column index) is the
    target and every other column a feature (numbers). Labels that are words (``setosa``)
    name classes, numbered in the words' sorted order."""

    def __init__(self, path: str, label: str | int = "label", header: bool = True,
                 delimiter: str = ",", task: str = "auto"):
        self.path = check_path(path)
        self.header = check_bool("header", header)
        self.label = require("label", label, LABEL)
        if isinstance(label, str) and not header:
            raise ValueError(f"label must be a column index when header is false, got {label!r}")
        self.delimiter = require("delimiter", delimiter, DELIMITER)
        self.task = check_choice("task", task, ("auto", *TASKS))

    def rows(self, path: Path):
        """``(line, cells)`` of every row of the file; DataError naming the line of a cell
        beyond what ``csv`` reads (128 KiB: no number is that long) or of bytes that are
        not UTF-8."""
        with open(path, newline="", encoding=ENCODING) as file:
            reader = csv.reader(file, delimiter=self.delimiter)
            try:
                for row in reader:
                    yield reader.line_num, row
            except csv.Error as err:
                limit = csv.field_size_limit()
                said = (f"a cell longer than {limit:,} characters; a table of numbers has none"
                        if "field limit" in str(err) else str(err))
                raise DataError(f"{path}: line {reader.line_num}: {said}") from None
            except UnicodeDecodeError as err:
                raise DataError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None

    def header_names(self, path: Path) -> list[str]:
        first = next(self.rows(path), (1, []))[1]
        return [name.strip() for name in first]

    def label_column(self, path: Path, names: list[str], width: int) -> int:
        if isinstance(self.label, str):
            if self.label not in names:
                raise DataError(f"{path}: line 1: no column named '{self.label}'; "
                                f"columns: {', '.join(names)}")
            return names.index(self.label)
        if not -width <= self.label < width:
            raise DataError(f"{path}: label column {self.label} is out of range for {width} columns")
        return self.label % width

    def mistakes(self, path: Path, names: list[str], skip: int | None = None) -> str | None:
        """Every ragged row and non-numeric cell (outside column ``skip``, the label column
        when its labels are text), one line each, ``"PATH: line L, column C: ..."``: the
        first ``MOST_MISTAKES``, then how many more; None when there is none."""
        width = len(names) if self.header else None
        found: list[str] = []
        count = 0

        def mistake(text: str) -> None:
            nonlocal count
            count += 1
            if count <= MOST_MISTAKES:
                found.append(f"{path}: {text}")

        for line, row in self.rows(path):
            if not row or (self.header and line == 1):
                continue
            if width is None:
                width = len(row)
            if len(row) != width:
                mistake(f"line {line}: {len(row)} cells where the table has {width}")
                continue
            for column, cell in enumerate(row, start=1):
                if column - 1 == skip:
                    continue
                try:
                    float(cell)
                except ValueError:
                    shown = cell if len(cell) <= 40 else cell[:37] + "..."
                    mistake(f"line {line}, column {column}: {shown!r} is not a number")
        if count > MOST_MISTAKES:
            found.append(f"{path}: {count - MOST_MISTAKES} more mistakes of these kinds")
        return "\n".join(found) or None

    def line_of(self, path: Path, row: int) -> int:
        """The line number of data row ``row`` (blank lines and the header skipped)."""
        lines = (line for line, cells in self.rows(path) if cells and not (self.header and line == 1))
        return next(itertools.islice(lines, row, None))

    def read_table(self, path: Path, names: list[str]) -> np.ndarray:
        """The cells as text, one row per sample (numbers are read by ``numbers``)."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # empty files are reported below
                table = np.loadtxt(path, delimiter=self.delimiter, skiprows=int(self.header),
                                   comments=None, ndmin=2, encoding=ENCODING, quotechar='"',
                                   dtype=str)
        except UnicodeDecodeError as err:
            raise DataError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
        except ValueError as err:
            raise DataError(self.mistakes(path, names) or f"{path}: {err}") from None
        if table.size == 0:
            raise DataError(f"{path}: no data rows")
        if self.header and table.shape[1] != len(names):
            raise DataError(f"{path}: line 2: {table.shape[1]} cells where the header on line 1 "
                            f"names {len(names)}")
        return table

    def numbers(self, path: Path, names: list[str], cells: np.ndarray, skip: int | None) -> np.ndarray:
        """``cells`` as float64; a DataError naming every cell that is not a number."""
        try:
            return cells.astype(np.float64)
        except ValueError as err:
            raise DataError(self.mistakes(path, names, skip) or f"{path}: {err}") from None

    def load(self, rng):
        path = existing_file(Path(self.path))
        names = self.header_names(path) if self.header else []
        table = self.read_table(path, names)

        def where(row: int) -> str:
            return f"line {self.line_of(path, row)}"

        column = self.label_column(path, names, table.shape[1])
        if table.shape[1] == 1:
            raise DataError(f"{path}: only the label column; a table needs at least one "
                            f"feature column besides it")
        X = self.numbers(path, names, np.delete(table, column, axis=1), skip=column)
        check_finite(path, X, where)
        if self.task != "regression" and text_labels(table[:, column]):
            empty = np.flatnonzero(np.char.strip(table[:, column]) == "")
            if empty.size:
                raise DataError(f"{path}: {where(empty[0])}: no label; every sample needs "
                                f"its class")
            return named_classes(X, table[:, column])
        y = self.numbers(path, names, table[:, column], skip=None)
        check_finite(path, y[:, None], where)
        task, reason = self.task, None
        if task == "auto":
            task = "classification" if np.all((y >= 0) & (y == np.round(y))) else "regression"
            fractions = np.flatnonzero(y != np.round(y))
            if fractions.size:  # (whole numbers that are not 0..K-1 get a mapping instead)
                first = fractions[0]
                reason = (f"{path}: {where(first)}: label {number(y[first])} is not a whole "
                          f"number, so task: auto read the labels as values to predict")
        if task == "regression":
            return RawData(X, y, task="regression", task_reason=reason)
        labels = class_labels(path, y, where)
        classes = int(labels.max()) + 1
        check_classes(path, {"y": labels}, classes, named=False)
        return RawData(X, labels, classes=classes)
