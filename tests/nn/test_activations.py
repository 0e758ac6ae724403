"""ReLU and leaky ReLU, value by value, in float64 and float32 (the other activations
are covered by the table-driven tests of every layer)."""

import numpy as np
import pytest

from dl_cli.registry import LAYERS

X = [[-2.0, -0.5, 0.0, 1.5, 3.0]]
DOUT = [[1.0, 2.0, 3.0, 4.0, 5.0]]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_relu_keeps_positive_inputs_and_their_gradients(dtype):
    layer = LAYERS.create("relu")
    out = layer.forward(np.array(X, dtype))
    dx = layer.backward(np.array(DOUT, dtype))
    np.testing.assert_array_equal(out, [[0.0, 0.0, 0.0, 1.5, 3.0]])
    np.testing.assert_array_equal(dx, [[0.0, 0.0, 0.0, 4.0, 5.0]])
    assert out.dtype == dx.dtype == dtype


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_leaky_relu_scales_the_rest_by_alpha(dtype):
    layer = LAYERS.create({"type": "leaky_relu", "alpha": 0.25})  # exact in binary
    out = layer.forward(np.array(X, dtype))
    dx = layer.backward(np.array(DOUT, dtype))
    np.testing.assert_array_equal(out, [[-0.5, -0.125, 0.0, 1.5, 3.0]])
    np.testing.assert_array_equal(dx, [[0.25, 0.5, 0.75, 4.0, 5.0]])
    assert out.dtype == dx.dtype == dtype
