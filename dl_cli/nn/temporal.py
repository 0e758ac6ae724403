"""Layers and the loss for sequences: word embedding, a per-step affine layer and the
per-step softmax loss (the CS231n captioning ``temporal_*`` functions as layers).

```python
layers = [{"type": "embedding", "vocab": 1000, "dim": 64},    # (N, T) ints → (N, T, 64)
          {"type": "lstm", "hidden": 128},                     # → (N, T, 128)
          {"type": "temporal_affine", "units": 1000}]          # → (N, T, 1000) scores
loss = {"type": "temporal_softmax_cross_entropy", "ignore_index": 0}   # 0 = padding
```
"""

from __future__ import annotations

import numpy as np

from ..checks import check_int, positive_int
from ..registry import LAYERS, LOSSES
from .layer import Example, Layer, ShapeError
from .losses import Loss


@LAYERS.register("embedding")
class Embedding(Layer):
    """Word embedding: row ``x[n, t]`` of a learned table, ``out[n, t] = W[x[n, t]]``.

    Shapes: x ``(N, T)`` integer tokens in ``[0, vocab)``; W ``(vocab, dim)``;
    out ``(N, T, dim)``. The lookup is the product of a one-hot row with W, done without
    the one-hot.

    Backward: every occurrence of token v adds its output gradient to row v,
    ``dW[v] = Σ_{(n, t): x[n, t] = v} dout[n, t]``: the tokens are sorted and each token's
    run of gradient rows is summed by one ``np.add.reduceat``, in the layer dtype
    (``np.bincount`` sums in float64 only; it and ``np.add.at`` were measured slower).
    Tokens are not differentiable: the input gradient is a zeros array of x's shape in
    the layer dtype, so a chain can pass it on like any other (None with
    ``input_grad = False``, which a model sets on its first layer).

    ``init=None`` draws W from N(0, 1) rather than the model-wide initializer: a one-hot
    input has a single active unit, so the variance-preserving rule ``Var(w) = 1/fan_in``
    has ``fan_in = 1``, where the model-wide rule would read ``fan_in = vocab`` and make
    the vectors tiny. No decay (each row only sees its own token's gradient).
    Parameters ``vocab·dim``; no multiply-adds (a lookup).
    """

    default_table_init = {"type": "normal", "std": 1.0}
    input_grad = True
    takes_tokens = True

    examples = (
        Example({"type": "embedding", "vocab": 5, "dim": 3}, (6,), tokens=5),
        Example({"type": "embedding", "vocab": 7, "dim": 2, "init": "xavier_normal"}, (3,),
                tokens=7),
    )

    def __init__(self, vocab: int, dim: int, init=None):
        super().__init__()
        self.vocab = positive_int("vocab", vocab)
        self.dim = positive_int("dim", dim)
        self.init = init

    def build(self, in_shape, rng):
        if len(in_shape) != 1:
            raise ShapeError(f"embedding needs token sequences (T,), got {len(in_shape)} "
                             f"axes {tuple(in_shape)}")
        init = self.init if self.init is not None else self.default_table_init
        self.params = {"W": self.new_weight((self.vocab, self.dim), rng, init)}
        return (in_shape[0], self.dim)

    def forward(self, x, train=True):
        if x.dtype.kind not in "iu":
            raise TypeError(f"embedding needs integer tokens, got {x.dtype} input")
        if x.size and (x.min() < 0 or x.max() >= self.vocab):
            raise ValueError(f"embedding tokens must lie in [0, {self.vocab}), got values "
                             f"from {x.min()} to {x.max()}")
        self.cache = x
        return self.params["W"][x]

    def backward(self, dout):
        x = self.cache
        tokens = x.reshape(-1)
        dW = self.new_zeros((self.vocab, self.dim))
        if tokens.size:
            order = np.argsort(tokens, kind="stable")
            sorted_tokens = tokens[order]
            starts = np.flatnonzero(np.r_[True, sorted_tokens[1:] != sorted_tokens[:-1]])
            rows = dout.reshape(-1, self.dim)[order]
            dW[sorted_tokens[starts]] = np.add.reduceat(rows, starts, axis=0)
        self.grads = {"W": dW}
        return np.zeros(x.shape, self.dtype) if self.input_grad else None


@LAYERS.register("temporal_affine")
class TemporalAffine(Layer):
    """The same affine map at every step: ``out[:, t] = x[:, t] @ W + b``.

    Shapes: x ``(N, T, D)``; W ``(D, units)``; b ``(units,)``; out ``(N, T, units)``.
    All N·T rows go through one product, ``x.reshape(N·T, D) @ W``.
    Backward on those rows: ``dW = xᵀ @ dout``, ``db = Σ dout``, ``dx = dout @ Wᵀ``
    (skipped, and None returned, with ``input_grad = False``, which a model sets on its
    first layer). Parameters ``(D + 1)·units``; multiply-adds ``T·D·units`` per sample.
    """

    input_grad = True

    examples = (
        Example({"type": "temporal_affine", "units": 4}, (3, 5)),
        Example({"type": "temporal_affine", "units": 2, "init": "xavier_normal"}, (4, 3)),
    )

    def __init__(self, units: int, init=None):
        super().__init__()
        self.units = positive_int("units", units)
        self.init = init
        self.decay = {"W"}

    def build(self, in_shape, rng):
        if len(in_shape) != 2:
            raise ShapeError(f"temporal_affine needs sequences (T, D), got {len(in_shape)} "
                             f"axes {tuple(in_shape)}")
        steps, features = in_shape
        self.params = {
            "W": self.new_weight((features, self.units), rng, self.init),
            "b": self.new_zeros((self.units,)),
        }
        return (steps, self.units)

    def forward(self, x, train=True):
        n, steps, features = x.shape
        x2 = x.reshape(n * steps, features)
        self.cache = (x2, x.shape)
        return (x2 @ self.params["W"] + self.params["b"]).reshape(n, steps, self.units)

    def backward(self, dout):
        x2, x_shape = self.cache
        dout2 = dout.reshape(-1, self.units)
        self.grads = {"W": x2.T @ dout2, "b": dout2.sum(axis=0)}
        if not self.input_grad:
            return None
        return (dout2 @ self.params["W"].T).reshape(x_shape)

    def macs(self, in_shape, out_shape):
        steps, features = in_shape
        return steps * features * self.units


@LOSSES.register("temporal_softmax_cross_entropy")
class TemporalSoftmaxCrossEntropy(Loss):
    """Softmax cross-entropy at every step, skipping steps whose target is ``ignore_index``.

    Scores ``(N, T, V)``, targets y ``(N, T)`` integers in ``[0, V)`` or ``ignore_index``
    (default −1; padding after the end of a sequence). With ``m[n, t] = (y[n, t] ≠
    ignore_index)`` and ``log p`` the log-softmax over V:

        L = −Σ_{n, t} m[n, t] · log p[n, t, y[n, t]] / N
        dscores[n, t] = m[n, t] · (softmax(scores[n, t]) − onehot(y[n, t])) / N

    The sum is divided by the batch size N, not by the number of unmasked steps: the
    CS231n captioning convention, so each sequence weighs in by its length and the loss
    grows with T. Predictions are the arg-max over V at every step, ``(N, T)``.
    """

    label_axes = (1,)
    class_axis = -1  # scores (N, T, V)

    def __init__(self, ignore_index: int = -1):
        self.ignore_index = check_int("ignore_index", ignore_index, minimum=None)

    def __call__(self, scores, y):
        n, steps, classes = scores.shape
        if y.shape != (n, steps):
            raise ValueError(f"targets must have shape (N, T) = {(n, steps)} to match scores "
                             f"{scores.shape}, got {y.shape}")
        mask = y != self.ignore_index
        if np.any(mask & ((y < 0) | (y >= classes))):
            raise ValueError(f"targets must lie in [0, {classes}) or equal ignore_index "
                             f"{self.ignore_index}")
        targets = np.where(mask, y, 0)[..., None]
        shifted = scores - scores.max(axis=2, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=2, keepdims=True))
        picked = np.take_along_axis(log_probs, targets, axis=2)[..., 0]
        loss = -np.where(mask, picked, 0).sum() / n
        dscores = np.exp(log_probs)
        np.put_along_axis(dscores, targets, np.take_along_axis(dscores, targets, axis=2) - 1,
                          axis=2)
        dscores *= mask[..., None]
        dscores /= n
        return float(loss), dscores

    def example(self, rng):
        y = rng.integers(0, 5, size=(3, 4))
        y[0, 3] = y[2, 1:] = self.ignore_index
        return rng.standard_normal((3, 4, 5)), y
