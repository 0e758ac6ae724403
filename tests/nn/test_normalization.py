"""Batch normalization: batch and running statistics, spatial form, gradients."""

import numpy as np
import pytest

from dl_cli import gradcheck
from dl_cli.nn import ShapeError
from dl_cli.registry import LAYERS


def test_batchnorm_params_buffers_and_decay(build_layer):
    layer, out_shape = build_layer("batchnorm", (3, 4, 5))
    assert out_shape == (3, 4, 5)
    np.testing.assert_array_equal(layer.params["gamma"], np.ones(3))
    np.testing.assert_array_equal(layer.params["beta"], np.zeros(3))
    np.testing.assert_array_equal(layer.buffers["running_mean"], np.zeros(3))
    np.testing.assert_array_equal(layer.buffers["running_var"], np.ones(3))
    assert layer.decay == set()


def test_batchnorm_train_output_is_standardized_per_feature(build_layer):
    layer, _ = build_layer("batchnorm", (3,))
    layer.params["gamma"][:] = [2.0, 0.5, 1.5]
    layer.params["beta"][:] = [1.0, -1.0, 0.0]
    x = np.random.default_rng(0).normal([5, -3, 0.1], [3, 0.2, 10], size=(64, 3))
    x_hat = (layer.forward(x, train=True) - layer.params["beta"]) / layer.params["gamma"]
    np.testing.assert_allclose(x_hat.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(x_hat.std(axis=0), 1, rtol=1e-3)  # eps shrinks it slightly


def test_batchnorm_running_update_uses_momentum_and_unbiased_variance(build_layer):
    layer, _ = build_layer({"type": "batchnorm", "momentum": 0.75}, (4,))
    x = np.random.default_rng(0).standard_normal((6, 4))
    layer.forward(x, train=True)
    np.testing.assert_allclose(layer.buffers["running_mean"], 0.25 * x.mean(axis=0))
    np.testing.assert_allclose(layer.buffers["running_var"],
                               0.75 + 0.25 * x.var(axis=0, ddof=1))


def test_batchnorm_running_statistics_converge_to_the_data(build_layer):
    mean, std = np.array([1.0, -2.0, 3.0]), np.array([0.5, 2.0, 1.0])
    layer, _ = build_layer("batchnorm", (3,))
    rng = np.random.default_rng(0)
    for _ in range(300):
        layer.forward(rng.normal(mean, std, size=(64, 3)), train=True)
    # momentum 0.9 averages about 19 batches of 64: a standard error near 3% of the std
    assert np.all(np.abs(layer.buffers["running_mean"] - mean) < 0.15 * std)
    np.testing.assert_allclose(layer.buffers["running_var"], std**2, rtol=0.15)


def test_batchnorm_eval_uses_running_statistics_and_changes_nothing(build_layer):
    layer, _ = build_layer("batchnorm", (2, 3, 3))
    layer.buffers["running_mean"][:] = [1.0, -1.0]
    layer.buffers["running_var"][:] = [4.0, 0.25]
    layer.params["gamma"][:] = [3.0, 1.0]
    layer.params["beta"][:] = [0.5, 0.0]
    x = np.random.default_rng(0).standard_normal((5, 2, 3, 3))
    def per_channel(values):
        return np.array(values).reshape(1, 2, 1, 1)

    expected = (per_channel([3.0, 1.0]) * (x - per_channel([1.0, -1.0]))
                / np.sqrt(per_channel([4.0, 0.25]) + layer.eps) + per_channel([0.5, 0.0]))
    out = layer.forward(x, train=False)
    np.testing.assert_allclose(out, expected)
    np.testing.assert_array_equal(layer.forward(x, train=False), out)
    np.testing.assert_array_equal(layer.buffers["running_mean"], [1.0, -1.0])
    np.testing.assert_array_equal(layer.buffers["running_var"], [4.0, 0.25])


def test_batchnorm_eval_backward_matches_centered_differences(build_layer):
    layer, _ = build_layer("batchnorm", (3,))
    layer.forward(np.random.default_rng(0).normal(2, 3, size=(8, 3)), train=True)
    x = np.random.default_rng(1).standard_normal((4, 3))
    upstream = np.random.default_rng(2).standard_normal((4, 3))
    layer.forward(x, train=False)
    dx = layer.backward(upstream)
    numeric = gradcheck.numeric_grad(
        lambda: float(np.sum(layer.forward(x, train=False) * upstream)), x, np.arange(x.size))
    assert gradcheck.rel_error(dx, numeric) < 1e-6


def test_spatial_batchnorm_equals_batchnorm_on_channels_as_features(build_layer):
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 2.0, size=(4, 3, 2, 5))
    dout = rng.standard_normal(x.shape)
    spatial, _ = build_layer("batchnorm", (3, 2, 5))
    flat, _ = build_layer("batchnorm", (3,))
    for layer in (spatial, flat):
        layer.params["gamma"][:] = [1.5, -0.5, 2.0]
        layer.params["beta"][:] = [0.1, 0.2, 0.3]

    def to_rows(a):
        return a.transpose(0, 2, 3, 1).reshape(-1, 3)

    out = spatial.forward(x, train=True)
    np.testing.assert_allclose(to_rows(out), flat.forward(to_rows(x), train=True))
    np.testing.assert_allclose(to_rows(spatial.backward(dout)), flat.backward(to_rows(dout)))
    for key in ("gamma", "beta"):
        np.testing.assert_allclose(spatial.grads[key], flat.grads[key])
    for key in ("running_mean", "running_var"):
        np.testing.assert_allclose(spatial.buffers[key], flat.buffers[key])


@pytest.mark.parametrize("in_shape", [(5,), (3, 4, 4)])
def test_batchnorm_gradients_match_centered_differences(in_shape, assert_gradients_match, build_layer):
    layer, _ = build_layer("batchnorm", in_shape)
    layer.params["gamma"][:] = np.random.default_rng(1).normal(1, 0.5, in_shape[0])
    layer.params["beta"][:] = np.random.default_rng(2).standard_normal(in_shape[0])
    assert_gradients_match(layer, np.random.default_rng(0).normal(1, 2, (6, *in_shape)))


def test_batchnorm_keeps_float32(build_layer):
    layer, _ = build_layer("batchnorm", (2, 3, 3), dtype=np.float32)
    x = np.random.default_rng(0).standard_normal((4, 2, 3, 3)).astype(np.float32)
    assert layer.forward(x, train=True).dtype == np.float32
    assert layer.forward(x, train=False).dtype == np.float32
    assert layer.backward(np.ones_like(x)).dtype == np.float32
    assert layer.buffers["running_var"].dtype == np.float32


def test_batchnorm_needs_two_values_per_feature_to_train(build_layer):
    layer, _ = build_layer("batchnorm", (3,))
    with pytest.raises(ValueError, match="at least 2 values"):
        layer.forward(np.ones((1, 3)), train=True)
    assert layer.forward(np.ones((1, 3)), train=False).shape == (1, 3)


def test_batchnorm_rejects_bad_options_and_shapes(build_layer):
    with pytest.raises(ValueError, match="momentum"):
        LAYERS.create({"type": "batchnorm", "momentum": 1.5})
    with pytest.raises(ValueError, match="eps"):
        LAYERS.create({"type": "batchnorm", "eps": 0})
    with pytest.raises(ShapeError, match=r"\(7, 3\)"):
        build_layer("batchnorm", (7, 3))
