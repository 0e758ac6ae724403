"""Fixtures shared by the tests: gradient checks of a layer in training mode through
``gradcheck``, and eval mode, which ``gradcheck.check_layer`` does not cover."""

import numpy as np
import pytest

from dl_cli import gradcheck


def assert_all_passed(checks, title=""):
    assert checks, "nothing was checked"
    for check in checks:
        assert check.passed, f"{title}{check.param}: rel error {check.error:.2e}"


def check_layer_at_eval(layer, x, rng, eps=1e-6, tolerance=gradcheck.TOLERANCE):
    """``gradcheck.check_layer`` for an eval-mode forward: the scalar ``Σ forward(x,
    train=False) ⊙ G`` for a fixed random G, every coordinate of every parameter and of
    the input (when real-valued). ``backward`` runs right after one eval-mode forward of
    x, on whatever state earlier calls left in the layer (a stale training cache, running
    statistics), and must give the gradient of what that forward computed."""
    out = layer.forward(x, train=False)
    upstream = rng.standard_normal(out.shape)
    dx = layer.backward(upstream)

    def f():
        return float(np.sum(layer.forward(x, train=False) * upstream))

    analytic = {k: np.array(v) for k, v in layer.named("grads").items()}
    arrays = dict(layer.named("params"))
    if x.dtype.kind == "f":
        arrays["input"], analytic["input"] = x, np.array(dx)
    checks = []
    for name, array in arrays.items():
        coords = np.arange(array.size)
        numeric = gradcheck.numeric_grad(f, array, coords, eps)
        checks.append(gradcheck.check(layer.registered_name, name, array.shape,
                                      analytic[name], numeric, tolerance))
    return checks


@pytest.fixture
def assert_gradients_match():
    """``assert_gradients_match(layer, x)``: every parameter and the input of a built
    float64 layer in training mode, at every coordinate, against centered differences."""
    def check(layer, x):
        assert_all_passed(gradcheck.check_layer(layer, x, np.random.default_rng(7),
                                                max_coords=None))
    return check


@pytest.fixture
def assert_eval_gradients_match():
    """``assert_eval_gradients_match(layer, x, rng, title)``: ``check_layer_at_eval``,
    every check passed; a failure starts with ``title``."""
    def check(layer, x, rng, title=""):
        assert_all_passed(check_layer_at_eval(layer, x, rng), title)
    return check
