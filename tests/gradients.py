"""Gradient checks shared by the layer tests: training mode through ``gradcheck``, and
eval mode, which ``gradcheck.check_layer`` does not cover."""

import numpy as np

from dl_cli import gradcheck


def assert_all_passed(checks, title=""):
    assert checks, "nothing was checked"
    for check in checks:
        assert check.passed, f"{title}{check.param}: rel error {check.error:.2e}"


def assert_gradients_match(layer, x):
    """Every parameter and the input of a built float64 layer in training mode, at every
    coordinate, against centered differences."""
    assert_all_passed(gradcheck.check_layer(layer, x, np.random.default_rng(7), max_coords=None))


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
