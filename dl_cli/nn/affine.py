"""Fully connected layer and flatten."""

from __future__ import annotations

import math

import numpy as np

from .. import threads
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
    data) skips ``dx``; ``backward`` then returns None. Inside ``threads.computing_on``
    the products are cut into parts: ``out`` and ``dx`` by samples, ``dW`` by units.
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
        W = self.params["W"]
        out = np.empty((len(x2), self.units), np.result_type(x2, W))

        def samples(part):
            np.matmul(x2[part], W, out=out[part])
            if self.bias:
                out[part] += self.params["b"]

        threads.in_parts(len(x2), samples, x2.size + W.size)
        return out

    def backward(self, dout):
        x2, x_shape = self.cache
        W = self.params["W"]
        dW = np.empty(W.shape, np.result_type(x2, dout))
        # dW by columns (units), so each entry is one whole sum over the batch
        threads.in_parts(self.units, lambda units: np.matmul(x2.T, dout[:, units],
                                                             out=dW[:, units]), x2.size + W.size)
        self.grads = {"W": dW}
        if self.bias:
            self.grads["b"] = dout.sum(axis=0)
        if not self.input_grad:
            return None
        dx = np.empty(x2.shape, np.result_type(dout, W))
        threads.in_parts(len(dx), lambda part: np.matmul(dout[part], W.T, out=dx[part]),
                         dx.size + W.size)
        return dx.reshape(x_shape)

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
