"""Batch normalization, per feature for ``(N, D)`` inputs and per channel for ``(N, C, H, W)``."""

from __future__ import annotations

import numpy as np

from .. import threads
from ..checks import FRACTION, number, require
from ..registry import LAYERS
from .layer import Example, Layer, ShapeError


@LAYERS.register("batchnorm")
class BatchNorm(Layer):
    """Normalize each feature (or channel) with batch statistics, then scale and shift.

    Shapes: x and out ``(N, D)`` or ``(N, C, H, W)``; gamma, beta, running_mean and
    running_var ``(D,)`` or ``(C,)``. The statistics of a channel run over N, H and W, so
    each feature or channel pools ``m = N`` or ``m = N·H·W`` values.

    Forward (train), per feature:
        ``μ = Σx / m``, ``σ² = Σ(x − μ)² / m``, ``σ = √(σ² + eps)``,
        ``x̂ = (x − μ) / σ``, ``out = γ·x̂ + β``;
        ``running_mean ← momentum·running_mean + (1 − momentum)·μ``,
        ``running_var ← momentum·running_var + (1 − momentum)·m/(m − 1)·σ²``
        (the unbiased variance: the population estimate used at inference).
    Forward (eval): the same with ``running_mean`` and ``running_var`` in place of μ and σ²;
    deterministic, and the buffers do not change.

    Backward (train), sums over the m values of a feature:
        ``dβ = Σ dout``, ``dγ = Σ dout·x̂``,
        ``dx = (γ/σ)/m · (m·dout − Σ dout − x̂·Σ(dout·x̂))``, that is
        ``dx = γ/(m·σ) · (m·dout − dβ − x̂·dγ)``
    (the mean and variance depend on every x, hence the two correction terms).
    Backward (eval): μ and σ are constants, so ``dx = γ/σ · dout``.
    γ and β are not under weight decay.

    Computed in passes over the batch, each of them on the parts of the batch at once
    inside ``threads.computing_on`` (``threads.in_parts``; the parts' sums are added):
    ``Σx``; ``x − μ`` with ``Σ(x − μ)²``; ``out = (γ/σ)·(x − μ) + β``. The cache holds
    ``x − μ`` and ``1/σ`` rather than ``x̂``: backward takes ``Σ dout·x̂`` as
    ``Σ dout·(x − μ) / σ``, scaled once per feature, and saves forward a pass.

    Synchronized statistics (data-parallel training, ``distributed.batchnorm_sync``): when
    a batch is cut into parts computed apart, ``sync`` joins the parts' statistics, so
    every part is normalized by the whole batch's μ and σ², as one process would. Forward,
    each part's count, mean and ``M2 = Σ(x − μ_part)²`` become the batch's (``sync.moments``);
    backward, ``Σ dout`` and ``Σ dout·x̂`` over the batch (``sync.sums``) enter dx, while
    the part's own sums are its share of dγ and dβ (the driver adds the shares).
    """

    examples = (
        Example("batchnorm", (5,)),
        Example({"type": "batchnorm", "momentum": 0.8, "eps": 1e-3}, (3, 4, 4)),
    )

    def __init__(self, momentum: float = 0.9, eps: float = 1e-5):
        super().__init__()
        self.momentum = require("momentum", momentum, FRACTION)
        self.eps = float(require("eps", eps, number("in (0, 1]", lambda x: 0 < x <= 1),
                                 then=": it guards √(σ² + eps) against a zero variance"))
        self.sync = None  # joins the statistics of the parts of a batch (see above)

    def build(self, in_shape, rng):
        if len(in_shape) not in (1, 3):
            raise ShapeError(
                f"batchnorm takes (D,) features or (C, H, W) images, got {len(in_shape)} axes "
                f"{tuple(in_shape)}"
            )
        size = in_shape[0]
        self.params = {"gamma": np.ones(size, dtype=self.dtype), "beta": self.new_zeros((size,))}
        self.buffers = {"running_mean": self.new_zeros((size,)),
                        "running_var": np.ones(size, dtype=self.dtype)}
        return tuple(in_shape)

    @staticmethod
    def _axes(x: np.ndarray) -> tuple[int, ...]:
        """Axes the statistics run over: all but the feature/channel axis 1."""
        return (0,) if x.ndim == 2 else (0, 2, 3)

    @staticmethod
    def _sum_of_products(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``Σ a·b`` per feature (over all axes but 1), without the product as an array."""
        terms = "nc,nc->c" if a.ndim == 2 else "nchw,nchw->c"
        return np.einsum(terms, a, b)

    @staticmethod
    def _per_feature(v: np.ndarray, ndim: int) -> np.ndarray:
        """``(D,)`` reshaped to broadcast along axis 1 of an ``ndim`` array."""
        return v.reshape((1, -1) + (1,) * (ndim - 2))

    def forward(self, x, train=True):
        axes, N = self._axes(x), len(x)
        m = x.size // x.shape[1]
        centered = np.empty_like(x)  # x − μ, kept for backward

        def center(part):  # writes x − μ for these samples; their share of Σ(x − μ)²
            np.subtract(x[part], mean, out=centered[part])
            return self._sum_of_products(centered[part], centered[part])

        if train:
            total, = threads.summed_in_parts(N, lambda part: (x[part].sum(axis=axes),), x.size)
            mean = self._per_feature(total / m, x.ndim)
            squares, = threads.summed_in_parts(N, lambda part: (center(part),), x.size)  # Σ(x − μ)²
            if self.sync is None:
                var = self._per_feature(squares / m, x.ndim)
            else:  # the whole batch's statistics, from those of each part
                m, mean, m2 = self.sync.moments(m, mean.reshape(-1), squares)
                mean, var = self._per_feature(mean, x.ndim), self._per_feature(m2 / m, x.ndim)
                threads.in_parts(N, center, x.size)
            if m < 2:
                raise ValueError(
                    "batchnorm needs at least 2 values per feature in training mode "
                    f"(got a batch of shape {x.shape})"
                )
            self._update_running(mean.reshape(-1), var.reshape(-1) * (m / (m - 1)))
        else:
            mean = self._per_feature(self.buffers["running_mean"], x.ndim)
            var = self._per_feature(self.buffers["running_var"], x.ndim)
            threads.in_parts(N, center, x.size)
        inv_std = 1.0 / np.sqrt(var + self.eps)
        self.cache = (centered, inv_std, train, m)
        scale = self._per_feature(self.params["gamma"], x.ndim) * inv_std
        beta = self._per_feature(self.params["beta"], x.ndim)
        out = np.empty_like(centered)

        def normalize(part):  # γ·x̂ + β = (γ/σ)·(x − μ) + β
            np.multiply(centered[part], scale, out=out[part])
            out[part] += beta

        threads.in_parts(N, normalize, x.size)
        return out

    def _update_running(self, mean: np.ndarray, unbiased_var: np.ndarray) -> None:
        """Exponential moving averages, updated in place (the model holds these arrays)."""
        for name, batch_value in (("running_mean", mean), ("running_var", unbiased_var)):
            running = self.buffers[name]
            running *= self.momentum
            running += (1 - self.momentum) * batch_value.astype(running.dtype, copy=False)

    def backward(self, dout):
        centered, inv_std, train, m = self.cache
        axes, N = self._axes(dout), len(dout)
        dbeta, dgamma = threads.summed_in_parts(
            N, lambda part: (dout[part].sum(axis=axes),
                             self._sum_of_products(dout[part], centered[part])), dout.size)
        dgamma *= inv_std.reshape(-1)  # Σ dout·x̂ = Σ dout·(x − μ) / σ
        self.grads = {"gamma": dgamma, "beta": dbeta}
        scale = self._per_feature(self.params["gamma"], dout.ndim) * inv_std
        if not train:
            return scale * dout
        if self.sync is not None:
            dbeta, dgamma = self.sync.sums(dbeta, dgamma)
        dx = np.empty_like(dout)
        # scale·(dout − dβ/m − x̂·dγ/m) in four passes, no temporary: x̂·dγ/m = (x − μ)·dγ/(m·σ)
        per_centered = self._per_feature(dgamma, dout.ndim) * inv_std / m
        mean_grad = self._per_feature(dbeta, dout.ndim) / m

        def samples(part):
            grad = dx[part]
            np.multiply(centered[part], -per_centered, out=grad)
            grad += dout[part]
            grad -= mean_grad
            grad *= scale

        threads.in_parts(N, samples, dout.size)
        return dx
