"""Small classic datasets shipped inside scikit-learn (read from its package files, no
download). scikit-learn is imported when a dataset loads, so ``import dl_cli.data``
stays fast.
"""

from __future__ import annotations

import numpy as np

from ..registry import DATASETS
from .base import Dataset, RawData, check_bool


class SklearnDataset(Dataset):
    """A scikit-learn ``Bunch`` (``data``, ``target``, ``target_names``) as ``RawData``."""

    def bunch(self):
        raise NotImplementedError

    def features(self, bunch) -> np.ndarray:
        return bunch.data

    def load(self, rng):
        bunch = self.bunch()
        names = [str(name) for name in bunch.target_names]
        return RawData(np.asarray(self.features(bunch), dtype=np.float64),
                       np.asarray(bunch.target, dtype=np.int64), classes=len(names), names=names)


@DATASETS.register("digits")
class Digits(SklearnDataset):
    """1,797 handwritten digits, 8×8 pixels of intensity 0..16, ten classes.

    X ``(N, 64)``, or ``(N, 1, 8, 8)`` with ``images: true`` for convolutional nets.
    """

    def __init__(self, images: bool = False):
        self.images = check_bool("images", images)

    def bunch(self):
        from sklearn.datasets import load_digits
        return load_digits()

    def features(self, bunch):
        return bunch.images[:, None] if self.images else bunch.data


@DATASETS.register("iris")
class Iris(SklearnDataset):
    """150 iris flowers, 4 measurements, 3 species."""

    def bunch(self):
        from sklearn.datasets import load_iris
        return load_iris()


@DATASETS.register("wine")
class Wine(SklearnDataset):
    """178 wines, 13 chemical measurements, 3 cultivars."""

    def bunch(self):
        from sklearn.datasets import load_wine
        return load_wine()


@DATASETS.register("breast_cancer")
class BreastCancer(SklearnDataset):
    """569 breast tumours, 30 features of cell nuclei, malignant or benign."""

    def bunch(self):
        from sklearn.datasets import load_breast_cancer
        return load_breast_cancer()
