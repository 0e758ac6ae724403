"""Fully connected layer and flatten."""

from __future__ import annotations

import math

from ..checks import check_bool, positive_int
from ..registry import LAYERS
from .layer import Example, Layer, ShapeError


@LAYERS.register("affine")
class Affine(Layer):
    """Fully connected: ``out = x @ W + b``, trailing axes of x flattened.

    Shapes: x ``(N, d_1, ..., d_k)`` with ``D = d_1·...·d_k``; W ``(D, units)``;
    b ``(units,)`` (absent with ``bias: false``); out ``(N, units)``.
    Backward: ``dW = xᵀ @ dout``, ``db = Σ_N dout``, ``dx = dout @ Wᵀ`` (reshaped to x).
    Parameters: ``(D + 1)·units``; multiply-adds ``D·units`` per sample.
    ``input_grad = False`` (set by a model whose first layer this is: its input is the
    data) skips ``dx``; ``backward`` then returns None.
    """

    input_grad = True

    examples = (
        Example({"type": "affine", "units": 4}, (5,)),
        Example({"type": "affine", "units": 3, "init": "xavier_normal"}, (2, 3, 2)),
        Example({"type": "affine", "units": 2, "bias": False}, (4,)),
    )

    def __init__(self, units: int, init=None, bias: bool = True):
        super().__init__()
        self.units = positive_int("units", units)
        self.bias = check_bool("bias", bias)
        self.init = init
        self.decay = {"W"}

    def build(self, in_shape, rng):
        if len(in_shape) == 0:
            raise ShapeError("affine needs at least one feature axis")
        fan_in = math.prod(in_shape)
        self.params = {"W": self.new_weight((fan_in, self.units), rng, self.init)}
        if self.bias:
            self.params["b"] = self.new_zeros((self.units,))
        return (self.units,)

    def forward(self, x, train=True):
        x2 = x.reshape(x.shape[0], -1)
        self.cache = (x2, x.shape)
        out = x2 @ self.params["W"]
        if self.bias:
            out += self.params["b"]
        return out

    def backward(self, dout):
        x2, x_shape = self.cache
        self.grads = {"W": x2.T @ dout}
        if self.bias:
            self.grads["b"] = dout.sum(axis=0)
        if not self.input_grad:
            return None
        return (dout @ self.params["W"].T).reshape(x_shape)

    def macs(self, in_shape, out_shape):
        return math.prod(in_shape) * self.units


@LAYERS.register("flatten")
class Flatten(Layer):
    """Reshape ``(N, d_1, ..., d_k)`` to ``(N, d_1·...·d_k)``; backward reshapes back."""

    examples = (Example("flatten", (2, 3, 4)),)

    def build(self, in_shape, rng):
        return (math.prod(in_shape),)

    def forward(self, x, train=True):
        self.cache = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout):
        return dout.reshape(self.cache)
