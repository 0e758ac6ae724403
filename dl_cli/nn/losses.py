"""Losses: ``loss, dscores = LOSS(scores, y)``, the mean over the batch.

``task`` tells the Solver how to score predictions: ``classification`` (accuracy of
the arg-max), ``binary`` (accuracy of ``score > 0``) or ``regression`` (MSE and R²).
"""

from __future__ import annotations

import numpy as np

from ..registry import LOSSES
from .activations import sigmoid


class Loss:
    task = "classification"
    label_axes = (0,)  # axes of a sample's labels: 0, one per sample (1: per step, (N, T))
    class_axis = 1  # the axis of the scores over the classes: (N, C) or (N, C, H, W)

    def __call__(self, scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        raise NotImplementedError

    def predict(self, scores: np.ndarray) -> np.ndarray:
        """What the model outputs for people: class indices or values."""
        return scores.argmax(axis=self.class_axis)

    def values(self, scores: np.ndarray) -> np.ndarray:
        """The output compared with real-valued targets (regression, reconstruction)."""
        return scores

    def example(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Small float64 scores and matching targets, to test and gradient-check the loss."""
        return rng.standard_normal((6, 4)), rng.integers(0, 4, size=6)

    def config(self) -> dict:
        return {"type": self.registered_name, **vars(self)}


def check_classes(scores: np.ndarray, y: np.ndarray, ignore_index: int | None = None) -> None:
    """Class labels must index a column of ``scores`` (N, C) (or the class axis of
    per-pixel scores (N, C, H, W), with labels (N, H, W)): a negative label would
    silently count as a class from the end (``s[i, -1]`` is the last class). Labels
    equal to ``ignore_index`` are exempt."""
    classes = scores.shape[1]
    wanted = scores.shape[:1] + scores.shape[2:]
    if y.shape != wanted:
        names = "(N,)" if scores.ndim == 2 else f"(N, {', '.join('HWDT'[:scores.ndim - 2])})"
        raise ValueError(f"labels must have shape {names} = {wanted} to match scores "
                         f"{scores.shape}, got {y.shape}")
    counted = y if ignore_index is None else y[y != ignore_index]
    if counted.size and (counted.min() < 0 or counted.max() >= classes):
        allowed = f"[0, {classes})" + (f" or equal ignore_index {ignore_index}"
                                       if ignore_index is not None else "")
        raise ValueError(f"labels must lie in {allowed}, got values from {counted.min()} "
                         f"to {counted.max()}")


@LOSSES.register("softmax_cross_entropy")
class SoftmaxCrossEntropy(Loss):
    """Softmax then negative log-likelihood, fused and stable.

    ``L = mean_i[ log Σ_j e^(s_ij) − s_i,y_i ]`` via log-sum-exp after subtracting the
    row maximum; ``dscores = (softmax(s) − onehot(y)) / N``. Scores ``(N, C)``, y ``(N,)``.
    One exponential serves both: ``e = e^(s − max)`` gives the log-sum-exp and, divided
    by its row sums, the softmax that becomes ``dscores`` in place.

    Per-pixel classification (segmentation): scores ``(N, C, H, W)`` with labels
    ``(N, H, W)`` are N·H·W rows of C scores, and L is the mean over the pixels. Rows
    whose label equals ``ignore_index`` (when set) count for nothing: the mean is over
    the other rows, and their gradient is zero. Predictions are the arg-max over C, of
    every pixel.
    """

    label_axes = (0, 2)  # a label per sample, (N,), or per pixel, (N, H, W)

    def __init__(self, ignore_index: int | None = None):
        if ignore_index is not None and (not isinstance(ignore_index, int)
                                         or isinstance(ignore_index, bool)):
            raise ValueError(f"ignore_index must be an integer or null, got {ignore_index!r}")
        self.ignore_index = ignore_index

    def __call__(self, scores, y):
        check_classes(scores, y, self.ignore_index)
        shape = scores.shape
        if len(shape) > 2:  # the class axis last: one row of C scores per pixel
            scores = np.moveaxis(scores, 1, -1).reshape(-1, shape[1])
            y = y.reshape(-1)
        kept = np.ones(len(y), bool) if self.ignore_index is None else y != self.ignore_index
        y = np.where(kept, y, 0)
        count = max(int(kept.sum()), 1)
        rows = np.arange(len(y))
        shifted = scores - scores.max(axis=1, keepdims=True)
        dscores = np.exp(shifted)
        sums = dscores.sum(axis=1, keepdims=True)
        loss = float(np.sum((np.log(sums[:, 0]) - shifted[rows, y])[kept])) / count
        dscores /= sums
        dscores[rows, y] -= 1
        dscores *= kept[:, None] * (1.0 / count)
        if len(shape) > 2:
            dscores = np.moveaxis(dscores.reshape(shape[0], *shape[2:], shape[1]), -1, 1)
        return loss, dscores


@LOSSES.register("svm")
class MulticlassSVM(Loss):
    """Multiclass hinge loss with margin 1.

    ``L = mean_i Σ_{j≠y_i} max(0, s_ij − s_i,y_i + 1)``; each positive margin adds +1 to
    its class's gradient and −1 to the true class's, divided by N.
    """

    def __call__(self, scores, y):
        check_classes(scores, y)
        n = scores.shape[0]
        rows = np.arange(n)
        margins = np.maximum(0, scores - scores[rows, y][:, None] + 1.0)
        margins[rows, y] = 0
        loss = margins.sum() / n
        positive = (margins > 0).astype(scores.dtype)
        positive[rows, y] = -positive.sum(axis=1)
        return float(loss), positive / n


@LOSSES.register("mse")
class MeanSquaredError(Loss):
    """The quadratic cost ``L = mean_i ½‖y_i − s_i‖²``; ``dscores = (s − y) / N``.

    Targets ``(N,)`` are compared with scores ``(N, 1)``.
    """

    task = "regression"

    def __call__(self, scores, y):
        y = y.reshape(scores.shape).astype(scores.dtype, copy=False)
        n = scores.shape[0]
        diff = scores - y
        return float(0.5 * np.sum(diff * diff) / n), diff / n

    def predict(self, scores):
        return scores[:, 0] if scores.ndim == 2 and scores.shape[1] == 1 else scores

    def example(self, rng):
        return rng.standard_normal((6, 2)), rng.standard_normal((6, 2))


@LOSSES.register("binary_cross_entropy")
class BinaryCrossEntropy(Loss):
    """Logistic loss on logits z with labels y in {0, 1}, stable for large |z|.

    ``L = mean[ max(z, 0) − z·y + log(1 + e^(−|z|)) ]``; ``dz = (σ(z) − y) / N``.
    Scores ``(N, 1)`` or ``(N,)``. Real-valued targets in [0, 1] are probabilities: an
    autoencoder of inputs scaled to [0, 1] (``data.target: input``) gives one logit per
    input value, the loss sums over a sample's values, and what is compared with the
    targets (``values``) is ``σ(z)``.
    """

    task = "binary"

    def __call__(self, scores, y):
        z = scores
        y = y.reshape(z.shape).astype(z.dtype, copy=False)
        n = z.shape[0]
        loss = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
        return float(loss.sum() / n), (sigmoid(z) - y) / n

    def predict(self, scores):
        return (scores.reshape(scores.shape[0], -1)[:, 0] > 0).astype(np.int64)

    def values(self, scores):
        return sigmoid(scores)

    def example(self, rng):
        return 3 * rng.standard_normal((6, 1)), rng.integers(0, 2, size=6)
