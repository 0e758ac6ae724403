"""Analytic gradients against centered differences.

For a scalar function f of an array x, the centered difference
``(f(x + εe_i) − f(x − εe_i)) / 2ε`` approximates ``∂f/∂x_i`` with error O(ε²).
Far too slow to train with (two forward passes per coordinate), it is the standard
way to verify a backward pass. The error of a tensor is

    rel_error(a, n) = max|a − n| / max(max(|a| + |n|), 1e-8)

which is ~1e-9 or less for correct float64 code and ~1e-2 or more for a wrong formula.
A tensor whose analytic and numerical gradients are both zero to within ``ZERO`` (the
rounding noise of a centered difference) passes whatever the ratio says: batchnorm,
for one, makes the gradient of the bias before it exactly zero.
Layers that draw at run time (dropout) get their generator state restored before every
evaluation, so each sees the same mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .nn import ShapeError
from .nn.layer import Layer
from .nn.model import Model
from .registry import LAYERS

TOLERANCE = 1e-6
ZERO = 1e-8  # largest |gradient| still counted as zero: centered differences of an O(1)
             # loss with ε = 1e-6 carry rounding noise of about 1e-10


def rel_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """``max|a − n| / max(max(|a| + |n|), 1e-8)`` over the whole tensor."""
    a, n = np.asarray(analytic, np.float64), np.asarray(numeric, np.float64)
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - n)) / max(float(np.max(np.abs(a) + np.abs(n))), 1e-8))


def sample_coords(shape: tuple[int, ...], max_coords: int | None,
                  rng: np.random.Generator) -> np.ndarray:
    """Flat indices to perturb: all of them, or ``max_coords`` drawn without replacement."""
    if max_coords is not None and max_coords < 1:  # 0 would check nothing and pass
        raise ValueError(f"max_coords: expected an integer >= 1 or None, got {max_coords}")
    size = int(np.prod(shape))
    if max_coords is None or size <= max_coords:
        return np.arange(size)
    return np.sort(rng.choice(size, size=max_coords, replace=False))


def numeric_grad(f: Callable[[], float], x: np.ndarray, coords: np.ndarray,
                 eps: float = 1e-6) -> np.ndarray:
    """Centered differences of ``f()`` with respect to ``x`` (perturbed in place) at the
    flat ``coords``; other entries are 0."""
    grad = np.zeros(x.size)
    flat = x.reshape(-1)  # a view: x must be contiguous
    for i in coords:
        old = flat[i]
        flat[i] = old + eps
        plus = f()
        flat[i] = old - eps
        minus = f()
        flat[i] = old
        grad[i] = (plus - minus) / (2 * eps)
    return grad.reshape(x.shape)


@dataclass
class Check:
    """One checked tensor: which layer and parameter, its shape and error."""

    layer: str
    param: str
    shape: tuple[int, ...]
    error: float
    tolerance: float = TOLERANCE
    largest: float = np.inf  # max(|analytic|, |numeric|) over the checked coordinates

    @property
    def passed(self) -> bool:
        if not np.isfinite(self.error):
            return False
        return self.error <= self.tolerance or self.largest <= ZERO


def check(layer: str, param: str, shape, analytic, numeric, tolerance: float) -> Check:
    a, n = np.asarray(analytic, np.float64), np.asarray(numeric, np.float64)
    largest = float(max(np.abs(a).max(initial=0.0), np.abs(n).max(initial=0.0)))
    return Check(layer, param, tuple(shape), rel_error(a, n), tolerance, largest)


def _rng_states(layers: list[Layer]) -> list[tuple[Layer, dict]]:
    return [(layer, layer.rng.bit_generator.state) for layer in layers if layer.rng is not None]


def _restore(states: list[tuple[Layer, dict]]) -> None:
    for layer, state in states:
        layer.rng.bit_generator.state = state


def _compare(f, arrays: dict[str, np.ndarray], analytic: dict[str, np.ndarray],
             label: Callable[[str], tuple[str, str]], max_coords, eps, rng,
             tolerance) -> list[Check]:
    checks = []
    for name, array in arrays.items():
        coords = sample_coords(array.shape, max_coords, rng)
        numeric = numeric_grad(f, array, coords, eps)
        a = analytic[name].reshape(-1)[coords]
        layer_name, param = label(name)
        checks.append(check(layer_name, param, array.shape, a, numeric.reshape(-1)[coords],
                            tolerance))
    return checks


def check_layer(layer: Layer, x: np.ndarray, rng: np.random.Generator | None = None,
                eps: float = 1e-6, max_coords: int | None = 200,
                tolerance: float = TOLERANCE, name: str | None = None) -> list[Check]:
    """Check a built float64 layer on input ``x`` in training mode.

    The scalar checked is ``Σ forward(x) ⊙ G`` for a fixed random G, whose gradient with
    respect to the output is G: every parameter and the input (when it is real-valued)
    are compared.
    """
    rng = rng or np.random.default_rng(0)
    layers = [sub for _, sub in layer.walk("")]
    states = _rng_states(layers)
    out = layer.forward(x, train=True)
    upstream = rng.standard_normal(out.shape)

    def f() -> float:
        _restore(states)
        return float(np.sum(layer.forward(x, train=True) * upstream))

    _restore(states)
    layer.forward(x, train=True)
    dx = layer.backward(upstream)
    arrays = layer.named("params")
    analytic = {k: np.array(v) for k, v in layer.named("grads").items()}
    title = name or layer.registered_name
    checks = _compare(f, arrays, analytic, lambda p: (title, p), max_coords, eps, rng, tolerance)
    if x.dtype.kind == "f":
        checks += _compare(f, {"x": x}, {"x": dx}, lambda p: (title, "input"),
                           max_coords, eps, rng, tolerance)
    return checks


def check_examples(name: str, rng: np.random.Generator,
                   max_coords: int | None = 200) -> list[Check]:
    """Check the registered layer ``name`` on each of its ``examples`` (a spec and an input
    shape), built in float64 on a batch of 3; a ShapeError names the layer."""
    checks = []
    for example in LAYERS.get(name).examples:
        layer = LAYERS.create(example.spec)
        layer.configure(np.float64, "xavier_normal")
        try:
            layer.build(example.in_shape, rng)
        except ShapeError as error:
            raise ShapeError(f"{name}: {error}") from None
        checks += check_layer(layer, example.input(3, rng), rng, name=f"{name} {example.in_shape}",
                              max_coords=max_coords)
    return checks


def check_loss(loss, scores: np.ndarray, y: np.ndarray, eps: float = 1e-6,
               tolerance: float = TOLERANCE) -> Check:
    """Check ``dscores`` of a loss against centered differences of the loss value."""
    scores = np.array(scores, dtype=np.float64)
    _, dscores = loss(scores, y)
    numeric = numeric_grad(lambda: loss(scores, y)[0], scores, np.arange(scores.size), eps)
    return check(loss.registered_name, "scores", scores.shape, dscores, numeric, tolerance)


def check_model(model: Model, x: np.ndarray, y: np.ndarray,
                rng: np.random.Generator | None = None, eps: float = 1e-6,
                max_coords: int | None = 50, tolerance: float = TOLERANCE) -> list[Check]:
    """Check every parameter of a float64 model through its full regularized loss."""
    if model.dtype != np.float64:
        raise ValueError("gradcheck needs a float64 model (finite differences in float32 "
                         "are dominated by rounding)")
    if len(x) == 0:
        raise ValueError("gradcheck needs at least one sample, got none")
    rng = rng or np.random.default_rng(0)
    states = _rng_states([layer for _, layer in model.chain.walk("")])

    def f() -> float:
        _restore(states)
        return model.loss(x, y, train=True)[0]

    _restore(states)
    _, grads = model.loss(x, y, train=True)
    grads = {k: np.array(v) for k, v in grads.items()}

    def label(name: str) -> tuple[str, str]:
        index, _, param = name.partition(".")
        return f"{index} {model.layers[int(index)].registered_name}", param

    return _compare(f, model.params, grads, label, max_coords, eps, rng, tolerance)
