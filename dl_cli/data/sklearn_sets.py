"""Small classic datasets shipped inside scikit-learn's package folder, read straight
from its data files (no download, and no import of scikit-learn itself, which costs a
second in every sweep worker).

The files are ``sklearn/datasets/data/*.csv``: a first line ``n_samples, n_features,
class names...`` then one row per sample, features then the class index; the digits
file has no header and 64 pixels then the class on each line.
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np

from ..registry import DATASETS
from ..checks import check_bool
from .base import DataError, Dataset, RawData


def data_folder() -> Path:
    """scikit-learn's bundled data folder, found on the import path without importing
    the package."""
    for entry in sys.path:
        folder = Path(entry or ".") / "sklearn" / "datasets" / "data"
        if (folder / "digits.csv.gz").is_file():
            return folder
    raise DataError("the digits, iris, wine and breast_cancer data sets are read from "
                    "scikit-learn's package files: pip install scikit-learn")


def read_table(path: Path, rows) -> np.ndarray:
    try:
        table = np.loadtxt(rows, delimiter=",", ndmin=2)
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: cannot be read as a numeric table ({error})") from None
    return table


class BundledTable(Dataset):
    """One of scikit-learn's headed CSV files as ``RawData``."""

    filename = ""

    def load(self, rng):
        path = data_folder() / self.filename
        try:
            with open(path) as f:
                header = f.readline().strip().split(",")
                table = read_table(path, f)
        except OSError as error:
            raise DataError(f"{path}: {error.strerror}") from None
        names = header[2:]
        return RawData(table[:, :-1], table[:, -1].astype(np.int64), classes=len(names),
                       names=names)


@DATASETS.register("digits")
class Digits(Dataset):
    """1,797 handwritten digits, 8×8 pixels of intensity 0..16, ten classes.

    X ``(N, 64)``, or ``(N, 1, 8, 8)`` with ``images: true`` for convolutional nets.
    """

    def __init__(self, images: bool = False):
        self.images = check_bool("images", images)

    def load(self, rng):
        path = data_folder() / "digits.csv.gz"
        try:
            with gzip.open(path, "rt") as f:
                table = read_table(path, f)
        except OSError as error:
            raise DataError(f"{path}: {error}") from None
        X = table[:, :-1]
        return RawData(X.reshape(-1, 1, 8, 8) if self.images else X,
                       table[:, -1].astype(np.int64), classes=10,
                       names=[str(i) for i in range(10)])


@DATASETS.register("iris")
class Iris(BundledTable):
    """150 iris flowers, 4 measurements, 3 species."""

    filename = "iris.csv"


@DATASETS.register("wine")
class Wine(BundledTable):
    """178 wines, 13 chemical measurements, 3 cultivars."""

    filename = "wine_data.csv"


@DATASETS.register("breast_cancer")
class BreastCancer(BundledTable):
    """569 breast tumours, 30 features of cell nuclei, malignant or benign."""

    filename = "breast_cancer.csv"
