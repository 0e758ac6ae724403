"""The affine layer is ``x @ W + b`` on the flattened samples, its gradients the three
products of its docstring."""

import numpy as np

from dl_cli.registry import LAYERS


def built(spec, in_shape):
    layer = LAYERS.create(spec)
    layer.configure(np.float64, "he_normal")
    layer.build(in_shape, np.random.default_rng(0))
    return layer


def test_affine_forward_and_backward_are_the_products_of_the_flattened_samples():
    layer = built({"type": "affine", "units": 3}, (2, 2))
    rng = np.random.default_rng(1)
    W, b = layer.params["W"], layer.params["b"]
    b[:] = rng.standard_normal(3)
    x, dout = rng.standard_normal((4, 2, 2)), rng.standard_normal((4, 3))
    x2 = x.reshape(4, 4)
    np.testing.assert_array_equal(layer.forward(x), x2 @ W + b)
    dx = layer.backward(dout)
    np.testing.assert_array_equal(dx, (dout @ W.T).reshape(x.shape))
    np.testing.assert_array_equal(layer.grads["W"], x2.T @ dout)
    np.testing.assert_array_equal(layer.grads["b"], dout.sum(axis=0))


def test_affine_without_bias_or_input_gradient():
    layer = built({"type": "affine", "units": 2, "bias": False}, (3,))
    layer.input_grad = False  # as a model sets it on its first layer
    rng = np.random.default_rng(2)
    x, dout = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    np.testing.assert_array_equal(layer.forward(x), x @ layer.params["W"])
    assert layer.backward(dout) is None
    assert set(layer.grads) == {"W"}
    np.testing.assert_array_equal(layer.grads["W"], x.T @ dout)
