"""Elementwise activations and softmax.

Each caches the least that its derivative needs: ReLU a boolean mask, sigmoid and tanh
their output (``σ' = σ(1 − σ)``, ``tanh' = 1 − tanh²``).
"""

from __future__ import annotations

import numpy as np

from .. import threads
from ..checks import check_float
from ..registry import LAYERS
from .layer import Example, Layer


def check_alpha(alpha) -> float:
    return check_float("alpha", alpha, 0.0)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + e^(−x))`` without overflow: ``e^(−|x|)`` never exceeds 1."""
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z)).astype(x.dtype, copy=False)


@LAYERS.register("relu")
class ReLU(Layer):
    """``max(0, x) = x·[x > 0]``; derivative ``[x > 0]``: 1 where x > 0, else 0 (dead
    units learn nothing). Caches the boolean mask ``[x > 0]``. Inside
    ``threads.computing_on`` the parts of a batch are done on threads: in convolutional
    models its maps are as large as a convolution's output."""

    examples = (Example("relu", (6,)), Example("relu", (2, 3, 3)))

    def forward(self, x, train=True):
        out, mask = np.empty_like(x), np.empty(x.shape, bool)

        def samples(part):
            np.greater(x[part], 0, out=mask[part])
            np.multiply(x[part], mask[part], out=out[part])

        threads.in_parts(len(x), samples, x.size)
        self.cache = mask
        return out

    def backward(self, dout):
        mask, dx = self.cache, np.empty_like(dout)
        threads.in_parts(len(dout), lambda part: np.multiply(dout[part], mask[part], out=dx[part]),
                         dout.size)
        return dx


@LAYERS.register("leaky_relu")
class LeakyReLU(Layer):
    """``x`` where x > 0, else ``αx``, with a small fixed slope α (default 0.01);
    derivative 1 where x > 0, else α. Caches the boolean mask ``[x > 0]``."""

    examples = (Example("leaky_relu", (6,)), Example({"type": "leaky_relu", "alpha": 0.2}, (2, 3, 3)))

    def __init__(self, alpha: float = 0.01):
        super().__init__()
        self.alpha = check_alpha(alpha)

    def forward(self, x, train=True):
        mask = x > 0
        self.cache = mask
        return np.where(mask, x, self.alpha * x)

    def backward(self, dout):
        return np.where(self.cache, dout, self.alpha * dout)


@LAYERS.register("prelu")
class PReLU(Layer):
    """Leaky ReLU whose slope α is learned, one per channel (axis 1 of 4-D inputs) or
    per feature (last axis otherwise), starting at ``alpha``.

    ``out = x`` for x > 0, ``α·x`` otherwise; ``dα = Σ dout·x`` over x ≤ 0.
    """

    examples = (Example("prelu", (6,)), Example({"type": "prelu", "alpha": 0.1}, (3, 4, 4)))

    def __init__(self, alpha: float = 0.25):
        super().__init__()
        self.alpha = check_alpha(alpha)

    def build(self, in_shape, rng):
        self.channel_axis = 1 if len(in_shape) == 3 else len(in_shape)
        size = in_shape[self.channel_axis - 1]
        self.params = {"alpha": np.full((size,), self.alpha, dtype=self.dtype)}
        return tuple(in_shape)

    def _broadcast(self, ndim: int) -> tuple[int, ...]:
        shape = [1] * ndim
        shape[self.channel_axis] = -1
        return tuple(shape)

    def forward(self, x, train=True):
        alpha = self.params["alpha"].reshape(self._broadcast(x.ndim))
        mask = x > 0
        self.cache = (x, mask)
        return np.where(mask, x, alpha * x)

    def backward(self, dout):
        x, mask = self.cache
        alpha = self.params["alpha"].reshape(self._broadcast(x.ndim))
        axes = tuple(a for a in range(x.ndim) if a != self.channel_axis)
        self.grads = {"alpha": np.where(mask, 0, dout * x).sum(axis=axes)}
        return np.where(mask, dout, alpha * dout)


@LAYERS.register("elu")
class ELU(Layer):
    """``x`` for x > 0, ``α(eˣ − 1)`` otherwise; derivative ``out + α`` there."""

    examples = (Example("elu", (6,)), Example({"type": "elu", "alpha": 0.5}, (2, 3, 3)))

    def __init__(self, alpha: float = 1.0):
        super().__init__()
        self.alpha = check_alpha(alpha)

    def forward(self, x, train=True):
        mask = x > 0
        out = np.where(mask, x, self.alpha * np.expm1(np.minimum(x, 0)))
        self.cache = (mask, out)
        return out

    def backward(self, dout):
        mask, out = self.cache
        return np.where(mask, dout, dout * (out + self.alpha))


@LAYERS.register("sigmoid")
class Sigmoid(Layer):
    """``σ(x) = 1/(1 + e^(−x))`` in (0, 1); ``σ' = σ(1 − σ) ≤ 0.25``, so stacks vanish."""

    examples = (Example("sigmoid", (6,)),)

    def forward(self, x, train=True):
        out = sigmoid(x)
        self.cache = out
        return out

    def backward(self, dout):
        out = self.cache
        return dout * out * (1 - out)


@LAYERS.register("tanh")
class Tanh(Layer):
    """``tanh(x)`` in (−1, 1), zero-centred; ``tanh' = 1 − tanh²``, still saturates."""

    examples = (Example("tanh", (6,)),)

    def forward(self, x, train=True):
        out = np.tanh(x)
        self.cache = out
        return out

    def backward(self, dout):
        out = self.cache
        return dout * (1 - out * out)


@LAYERS.register("softmax")
class Softmax(Layer):
    """Probabilities over the last axis: ``s_i = e^(x_i − max x) / Σ_j e^(x_j − max x)``.

    Backward (Jacobian-vector product): ``dx = s ⊙ (dout − Σ_j dout_j s_j)``.
    Pair ``softmax_cross_entropy`` with raw scores instead of this layer when training:
    the fused loss is cheaper and more stable.
    """

    examples = (Example("softmax", (6,)),)

    def forward(self, x, train=True):
        shifted = x - x.max(axis=-1, keepdims=True)
        e = np.exp(shifted)
        out = e / e.sum(axis=-1, keepdims=True)
        self.cache = out
        return out

    def backward(self, dout):
        s = self.cache
        return s * (dout - (dout * s).sum(axis=-1, keepdims=True))
