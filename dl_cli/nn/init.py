"""Weight initializers.

Fans follow the usual convention: an affine weight ``(D_in, D_out)`` has
``fan_in = D_in`` and ``fan_out = D_out``; a conv weight ``(F, C, KH, KW)`` has
``fan_in = C·KH·KW`` and ``fan_out = F·KH·KW``. Biases start at zero, but for the LSTM's
forget gate, which starts at 1 (``forget_bias``).

- ``zeros`` makes every unit of a layer compute the same function forever (symmetry).
- ``normal`` with std 0.01 is the "small random" init: fine shallow, vanishing deep.
- Xavier keeps the activation variance for tanh: ``Var(w) = 1/fan_in`` (normal) or
  ``2/(fan_in + fan_out)`` (uniform, Glorot).
- He doubles it for ReLU, which zeroes half its input: ``Var(w) = 2/fan_in``.
"""

from __future__ import annotations

import math

import numpy as np

from ..checks import check_float
from ..registry import INITIALIZERS


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight: the first axis feeds the second for matrices;
    conv kernels ``(F, C, KH, KW)`` multiply both by the receptive field."""
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


class Initializer:
    """Draws a weight array of a given shape from a generator, in float64."""

    def __call__(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def config(self) -> dict:
        return {"type": self.registered_name, **vars(self)}


@INITIALIZERS.register("zeros")
class Zeros(Initializer):
    """All weights zero: shows the symmetry failure (units never differ)."""

    def __call__(self, shape, rng):
        return np.zeros(shape)


@INITIALIZERS.register("constant")
class Constant(Initializer):
    """Every weight equals `value`."""

    def __init__(self, value: float = 0.0):
        self.value = check_float("value", value, -math.inf)

    def __call__(self, shape, rng):
        return np.full(shape, self.value)


@INITIALIZERS.register("normal")
class Normal(Initializer):
    """Gaussian N(0, std²); std 0.01 is the notes' "small random" init."""

    def __init__(self, std: float = 0.01):
        self.std = check_float("std", std)

    def __call__(self, shape, rng):
        return self.std * rng.standard_normal(shape)


@INITIALIZERS.register("uniform")
class Uniform(Initializer):
    """Uniform in [-epsilon, epsilon]."""

    def __init__(self, epsilon: float = 0.05):
        self.epsilon = check_float("epsilon", epsilon)

    def __call__(self, shape, rng):
        return rng.uniform(-self.epsilon, self.epsilon, shape)


@INITIALIZERS.register("xavier_normal")
class XavierNormal(Initializer):
    """N(0, 1/fan_in): preserves the activation variance through tanh layers."""

    def __call__(self, shape, rng):
        fan_in, _ = fans(shape)
        return rng.standard_normal(shape) * math.sqrt(1.0 / fan_in)


@INITIALIZERS.register("xavier_uniform")
class XavierUniform(Initializer):
    """U(±√(6/(fan_in + fan_out))): Glorot's variance 2/(fan_in + fan_out)."""

    def __call__(self, shape, rng):
        fan_in, fan_out = fans(shape)
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, shape)


@INITIALIZERS.register("he_normal")
class HeNormal(Initializer):
    """N(0, 2/fan_in): preserves the activation variance through ReLU layers."""

    def __call__(self, shape, rng):
        fan_in, _ = fans(shape)
        return rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)


@INITIALIZERS.register("he_uniform")
class HeUniform(Initializer):
    """U(±√(6/fan_in)): the uniform law with He's variance 2/fan_in."""

    def __call__(self, shape, rng):
        fan_in, _ = fans(shape)
        limit = math.sqrt(6.0 / fan_in)
        return rng.uniform(-limit, limit, shape)
