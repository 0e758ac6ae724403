"""Preprocessing: statistics fitted on the training split only, then applied to every split.

Fitting on the whole data set is the classic mistake: it leaks validation and test
information into training. So ``fit`` sees the training split and ``transform`` reuses
its statistics everywhere; the validation mean after ``standardize`` is close to 0, not 0.

```python
step = PREPROCESSORS.create({"type": "pca", "components": 10})
step.fit(X_train)
X_train, X_val = step.transform(X_train), step.transform(X_val)
```

Statistics are per feature for ``(N, D)`` data and per channel for images
``(N, C, H, W)`` (taken over N, H and W). ``transform`` keeps the dtype of its input.
Every step works on real values: ``fit`` refuses integer token ids (text), whose mean,
scale or projection means nothing (an embedding layer learns their representation).

A fitted step's statistics (``statistics``: their names) are plain float64 arrays, which
a checkpoint keeps, so that a run scores new raw inputs as it scored its test split:

```python
arrays = step.fitted()                                  # {"mean": ..., "std": ...}
again = PREPROCESSORS.create(spec).restore(arrays)      # transform as step does; no fit
```
"""

from __future__ import annotations

import math

import numpy as np

from ..registry import PREPROCESSORS
from ..checks import check_float, check_int
from .base import DataError


def stat_axes(X: np.ndarray) -> tuple[int, ...]:
    """Axes the statistics run over: the batch, plus H and W for images."""
    return (0, 2, 3) if X.ndim == 4 else (0,)


def flat(X: np.ndarray) -> np.ndarray:
    """``(N, d_1, ..., d_k) -> (N, d_1·...·d_k)``, also for N = 0."""
    return X.reshape(len(X), math.prod(X.shape[1:]))


def safe_scale(scale: np.ndarray, floor: float = 1e-8) -> np.ndarray:
    """Scales below ``floor`` (features constant on the training split) become 1, so
    those features are shifted but never divided by zero."""
    return np.where(scale < floor, 1.0, scale)


class Preprocessor:
    """``fit(X_train)`` learns statistics and returns self; ``transform(X)`` applies them.
    ``fit`` raises ``DataError`` on data the step cannot work on. ``statistics`` names
    the attributes ``fit`` sets."""

    statistics: tuple[str, ...] = ()

    def fit(self, X: np.ndarray) -> "Preprocessor":
        raise NotImplementedError

    def fitted(self) -> dict[str, np.ndarray]:
        """The statistics ``fit`` learned, by name."""
        return {name: getattr(self, name) for name in self.statistics}

    def restore(self, arrays: dict[str, np.ndarray]) -> "Preprocessor":
        """Take statistics a fit learned before (``fitted()``); returns self. A missing
        one, or one that is not finite real numbers, is a ValueError naming it."""
        for name in self.statistics:
            if name not in arrays:
                raise ValueError(f"'{self.registered_name}' needs its fitted {name}, which "
                                 f"is missing")
            array = np.asarray(arrays[name])
            if array.dtype.kind not in "fiu" or not np.all(np.isfinite(array)):
                raise ValueError(f"'{self.registered_name}': fitted {name} holds "
                                 f"{array.dtype} values that are not all finite numbers")
            setattr(self, name, array.astype(np.float64))
        return self

    def check(self, X: np.ndarray) -> None:
        """Refuse integer inputs: token ids are names, not quantities."""
        if X.dtype.kind in "biu":
            raise DataError(f"'{self.registered_name}' works on real-valued inputs, but this "
                            f"data set's inputs are integer token ids; remove it (no "
                            f"preprocessing applies to tokens)")

    def transform(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError


@PREPROCESSORS.register("center")
class Center(Preprocessor):
    """``x − μ``, with μ the training mean."""

    statistics = ("mean",)

    def fit(self, X):
        self.check(X)
        self.mean = X.mean(axis=stat_axes(X), keepdims=True, dtype=np.float64)
        return self

    def transform(self, X):
        return X - self.mean.astype(X.dtype)


@PREPROCESSORS.register("standardize")
class Standardize(Preprocessor):
    """``(x − μ) / σ``, with μ and σ the training mean and standard deviation; features
    constant in training (σ ≈ 0) are only centred."""

    statistics = ("mean", "std")

    def fit(self, X):
        self.check(X)
        axes = stat_axes(X)
        self.mean = X.mean(axis=axes, keepdims=True, dtype=np.float64)
        self.std = safe_scale(X.std(axis=axes, keepdims=True, dtype=np.float64))
        return self

    def transform(self, X):
        return (X - self.mean.astype(X.dtype)) / self.std.astype(X.dtype)


@PREPROCESSORS.register("minmax")
class MinMax(Preprocessor):
    """``(x − min) / (max − min)``: the training range mapped to [0, 1] (other splits may
    fall slightly outside)."""

    statistics = ("low", "span")

    def fit(self, X):
        self.check(X)
        axes = stat_axes(X)
        self.low = X.min(axis=axes, keepdims=True).astype(np.float64)
        self.span = safe_scale(X.max(axis=axes, keepdims=True) - self.low)
        return self

    def transform(self, X):
        return (X - self.low.astype(X.dtype)) / self.span.astype(X.dtype)


@PREPROCESSORS.register("pca")
class PCA(Preprocessor):
    """Project onto the top principal components of the training data.

    Samples are flattened to ``(N, D)``; with μ the training mean and
    ``Σ = (X − μ)ᵀ(X − μ) / N = U diag(λ) Uᵀ`` (eigenvalues descending), the output is
    ``(x − μ) @ U[:, :k]``, shape ``(N, k)``: decorrelated features whose variances are
    ``λ_1 ≥ ... ≥ λ_k``. ``components: null`` keeps all D (a rotation).
    """

    statistics = ("mean", "basis", "variance")

    def __init__(self, components: int | None = None):
        self.components = None if components is None else check_int("components", components)

    def fit(self, X):
        self.check(X)
        X = flat(X).astype(np.float64)
        D = X.shape[1]
        k = D if self.components is None else self.components
        if k > D:
            raise DataError(f"'{self.registered_name}': components must be at most the {D} "
                            f"input features, got {k}")
        self.mean = X.mean(axis=0)
        centred = X - self.mean
        eigenvalues, eigenvectors = np.linalg.eigh(centred.T @ centred / len(X))
        top = np.argsort(eigenvalues)[::-1][:k]
        self.variance = np.maximum(eigenvalues[top], 0.0)
        self.basis = eigenvectors[:, top]
        return self

    def transform(self, X):
        X = flat(X)
        return (X - self.mean.astype(X.dtype)) @ self.basis.astype(X.dtype)


@PREPROCESSORS.register("pca_whiten")
class PCAWhiten(PCA):
    """PCA, then each component divided by ``√(λ_i + eps)``: on the training split the
    output has (nearly) identity covariance. ``eps`` keeps tiny components from blowing up.
    """

    def __init__(self, components: int | None = None, eps: float = 1e-5):
        super().__init__(components)
        self.eps = check_float("eps", eps)
        if self.eps == 0:
            raise ValueError(f"eps must be a number > 0, got {eps!r}")

    def transform(self, X):
        scale = np.sqrt(self.variance + self.eps).astype(X.dtype)
        return super().transform(X) / scale
