"""Synthetic datasets drawn with NumPy from the generator ``load`` is given.

Two-dimensional classification toys (``spiral``, ``blobs``, ``moons``, ``circles``,
``xor``; ``samples`` is the number of points per class) and the notes' two regression
settings (``linear`` for weight decay, ``polynomial`` for under- and overfitting), each
with an explicit test set drawn from the same distribution.
"""

from __future__ import annotations

import math

import numpy as np

from ..registry import DATASETS
from ..checks import check_float, check_int
from .base import Dataset, RawData


def class_labels(classes: int, samples: int) -> np.ndarray:
    """``[0]*samples + [1]*samples + ...``: labels of points generated class by class."""
    return np.repeat(np.arange(classes, dtype=np.int64), samples)


@DATASETS.register("spiral")
class Spiral(Dataset):
    """The CS231n spiral: ``classes`` arms in the plane, not linearly separable.

    Class j: radius ``r = linspace(0, 1)``, angle ``t = linspace(4j, 4(j+1)) + noise·N(0, 1)``,
    point ``(r·sin t, r·cos t)``.
    """

    def __init__(self, classes: int = 3, samples: int = 300, noise: float = 0.2):
        self.classes = check_int("classes", classes, 2)
        self.samples = check_int("samples", samples)
        self.noise = check_float("noise", noise)

    def load(self, rng):
        K, N = self.classes, self.samples
        r = np.broadcast_to(np.linspace(0.0, 1.0, N), (K, N))
        t = 4.0 * np.arange(K)[:, None] + np.linspace(0.0, 4.0, N) + self.noise * rng.standard_normal((K, N))
        X = np.stack([r * np.sin(t), r * np.cos(t)], axis=-1).reshape(K * N, 2)
        return RawData(X, class_labels(K, N), classes=K)


@DATASETS.register("blobs")
class Blobs(Dataset):
    """Gaussian clusters: centres uniform in ``[-10, 10]^features``, std ``spread``."""

    def __init__(self, classes: int = 3, samples: int = 100, features: int = 2, spread: float = 1.0):
        self.classes = check_int("classes", classes, 2)
        self.samples = check_int("samples", samples)
        self.features = check_int("features", features)
        self.spread = check_float("spread", spread)

    def load(self, rng):
        K, N, D = self.classes, self.samples, self.features
        centres = rng.uniform(-10.0, 10.0, size=(K, 1, D))
        X = (centres + self.spread * rng.standard_normal((K, N, D))).reshape(K * N, D)
        return RawData(X, class_labels(K, N), classes=K)


@DATASETS.register("moons")
class Moons(Dataset):
    """Two interleaving half circles: ``(cos t, sin t)`` and ``(1 − cos t, ½ − sin t)``,
    ``t ~ U[0, π]``, plus Gaussian noise of std ``noise``."""

    def __init__(self, samples: int = 100, noise: float = 0.1):
        self.samples = check_int("samples", samples)
        self.noise = check_float("noise", noise)

    def load(self, rng):
        t = rng.uniform(0.0, np.pi, size=(2, self.samples))
        outer = np.stack([np.cos(t[0]), np.sin(t[0])], axis=-1)
        inner = np.stack([1.0 - np.cos(t[1]), 0.5 - np.sin(t[1])], axis=-1)
        X = np.concatenate([outer, inner]) + self.noise * rng.standard_normal((2 * self.samples, 2))
        return RawData(X, class_labels(2, self.samples), classes=2)


@DATASETS.register("circles")
class Circles(Dataset):
    """Two concentric circles, radii 1 (class 0) and ``factor`` (class 1), plus noise."""

    def __init__(self, samples: int = 100, noise: float = 0.05, factor: float = 0.5):
        self.samples = check_int("samples", samples)
        self.noise = check_float("noise", noise)
        self.factor = check_float("factor", factor, 0.0, 1.0)

    def load(self, rng):
        t = rng.uniform(0.0, 2.0 * np.pi, size=(2, self.samples))
        radius = np.array([[1.0], [self.factor]])
        X = np.stack([radius * np.cos(t), radius * np.sin(t)], axis=-1).reshape(2 * self.samples, 2)
        X = X + self.noise * rng.standard_normal(X.shape)
        return RawData(X, class_labels(2, self.samples), classes=2)


@DATASETS.register("xor")
class Xor(Dataset):
    """Points in the four quadrants of ``[-1, 1]²``; class 1 where the signs of the two
    coordinates differ. No line separates the classes; one hidden layer does."""

    def __init__(self, samples: int = 100, noise: float = 0.1):
        self.samples = check_int("samples", samples)
        self.noise = check_float("noise", noise)

    def load(self, rng):
        y = class_labels(2, self.samples)
        first_sign = rng.choice([-1.0, 1.0], size=y.shape)
        signs = np.stack([first_sign, np.where(y == 1, -first_sign, first_sign)], axis=-1)
        X = signs * rng.uniform(0.0, 1.0, size=signs.shape) + self.noise * rng.standard_normal(signs.shape)
        return RawData(X, y, classes=2)


@DATASETS.register("linear")
class Linear(Dataset):
    """The notes' weight-decay setting: ``y = X·w + b + ε`` with every ``w_i = weight``,
    ``X ~ N(0, 1)``, ``ε ~ N(0, noise²)``; few training samples, many features.

    Shapes: X ``(samples, features)``, X_test ``(test_samples, features)``, y ``(N,)``.
    """

    def __init__(self, samples: int = 20, test_samples: int = 100, features: int = 200,
                 weight: float = 0.01, bias: float = 0.05, noise: float = 0.01):
        self.samples = check_int("samples", samples)
        self.test_samples = check_int("test_samples", test_samples)
        self.features = check_int("features", features)
        self.weight = check_float("weight", weight, -math.inf)
        self.bias = check_float("bias", bias, -math.inf)
        self.noise = check_float("noise", noise)

    def load(self, rng):
        n = self.samples + self.test_samples
        X = rng.standard_normal((n, self.features))
        y = X.sum(axis=1) * self.weight + self.bias + self.noise * rng.standard_normal(n)
        return RawData(X[:self.samples], y[:self.samples], task="regression",
                       X_test=X[self.samples:], y_test=y[self.samples:])


@DATASETS.register("polynomial")
class Polynomial(Dataset):
    """The notes' polynomial: ``y = 5 + 1.2x − 3.4x²/2! + 5.6x³/3! + ε``, ``x ~ N(0, 1)``,
    ``ε ~ N(0, noise²)``, fitted on the features ``x^i / i!`` for ``i = 0..degree``.

    Degree 3 matches the truth, degree 1 underfits, degree 19 (20 features) overfits.
    Shapes: X ``(train_samples, degree + 1)``, X_test ``(test_samples, degree + 1)``.
    """

    true_weights = np.array([5.0, 1.2, -3.4, 5.6])

    def __init__(self, degree: int = 3, train_samples: int = 100, test_samples: int = 100,
                 noise: float = 0.1):
        self.degree = check_int("degree", degree, 0)
        self.train_samples = check_int("train_samples", train_samples)
        self.test_samples = check_int("test_samples", test_samples)
        self.noise = check_float("noise", noise)

    @staticmethod
    def features(x: np.ndarray, degree: int) -> np.ndarray:
        """``(N,) -> (N, degree + 1)``: column i holds ``x^i / i!``."""
        powers = np.arange(degree + 1)
        factorials = np.array([math.factorial(i) for i in powers], dtype=np.float64)
        return x[:, None] ** powers / factorials

    def load(self, rng):
        n = self.train_samples + self.test_samples
        x = rng.standard_normal(n)
        y = self.features(x, 3) @ self.true_weights + self.noise * rng.standard_normal(n)
        X = self.features(x, self.degree)
        split = self.train_samples
        return RawData(X[:split], y[:split], task="regression", X_test=X[split:], y_test=y[split:])
