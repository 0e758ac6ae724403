"""Dropout, batch normalization and the residual and concat blocks."""

import numpy as np
import pytest

from dl_cli import gradcheck
from dl_cli.nn import Model, ShapeError
from dl_cli.nn.blocks import projection_window
from dl_cli.registry import LAYERS

from gradients import assert_gradients_match


def built(spec, in_shape, dtype=np.float64, seed=0):
    layer = LAYERS.create(spec)
    layer.configure(dtype, "xavier_normal")
    out_shape = layer.build(in_shape, np.random.default_rng(seed))
    return layer, out_shape


# -- dropout --------------------------------------------------------------------------

def test_dropout_is_identity_at_eval():
    layer, _ = built({"type": "dropout", "drop_rate": 0.5}, (10,))
    x = np.random.default_rng(0).standard_normal((4, 10))
    np.testing.assert_array_equal(layer.forward(x, train=False), x)
    dout = np.random.default_rng(1).standard_normal((4, 10))
    np.testing.assert_array_equal(layer.backward(dout), dout)


def test_dropout_keeps_the_expected_activation_and_drops_the_right_fraction():
    drop_rate = 0.3
    layer, _ = built({"type": "dropout", "drop_rate": drop_rate}, (500,))
    x = 2.0 + np.random.default_rng(0).standard_normal((200, 500))
    out = layer.forward(x, train=True)
    n = x.size
    standard_error = np.std(out - x) / np.sqrt(n)
    assert abs(out.mean() - x.mean()) < 4 * standard_error
    dropped = np.mean(out == 0)
    assert abs(dropped - drop_rate) < 4 * np.sqrt(drop_rate * (1 - drop_rate) / n)
    kept = out != 0
    np.testing.assert_allclose(out[kept], x[kept] / (1 - drop_rate))


def test_dropout_backward_uses_the_forward_mask():
    layer, _ = built({"type": "dropout", "drop_rate": 0.5}, (50,))
    x = np.random.default_rng(0).standard_normal((8, 50))
    out = layer.forward(x, train=True)
    dx = layer.backward(np.ones_like(x))
    np.testing.assert_allclose(dx * x, out)


def test_dropout_masks_come_from_the_layer_generator():
    global_state = np.random.get_state()
    a, _ = built("dropout", (20,), seed=7)
    b, _ = built("dropout", (20,), seed=7)
    x = np.ones((5, 20))
    first = a.forward(x)
    np.testing.assert_array_equal(first, b.forward(x))     # same seed, same masks
    assert not np.array_equal(first, a.forward(x))          # a new mask every call
    assert np.random.get_state()[1].tolist() == global_state[1].tolist()


def test_dropout_keeps_float32():
    layer, _ = built("dropout", (30,), dtype=np.float32)
    x = np.ones((4, 30), dtype=np.float32)
    out = layer.forward(x, train=True)
    assert out.dtype == np.float32 and layer.cache.dtype == np.float32
    assert layer.backward(np.ones_like(x)).dtype == np.float32


def test_dropout_gradient_check_replays_the_mask():
    layer, _ = built({"type": "dropout", "drop_rate": 0.4}, (3, 4))
    assert_gradients_match(layer, np.random.default_rng(0).standard_normal((5, 3, 4)))


@pytest.mark.parametrize("drop_rate", [1.5, -0.1, 1.0, "0.5"])
def test_dropout_rejects_bad_rates(drop_rate):
    with pytest.raises(ValueError, match="drop_rate"):
        LAYERS.create({"type": "dropout", "drop_rate": drop_rate})


# -- batchnorm ------------------------------------------------------------------------

def test_batchnorm_params_buffers_and_decay():
    layer, out_shape = built("batchnorm", (3, 4, 5))
    assert out_shape == (3, 4, 5)
    np.testing.assert_array_equal(layer.params["gamma"], np.ones(3))
    np.testing.assert_array_equal(layer.params["beta"], np.zeros(3))
    np.testing.assert_array_equal(layer.buffers["running_mean"], np.zeros(3))
    np.testing.assert_array_equal(layer.buffers["running_var"], np.ones(3))
    assert layer.decay == set()


def test_batchnorm_train_output_is_standardized_per_feature():
    layer, _ = built("batchnorm", (3,))
    layer.params["gamma"][:] = [2.0, 0.5, 1.5]
    layer.params["beta"][:] = [1.0, -1.0, 0.0]
    x = np.random.default_rng(0).normal([5, -3, 0.1], [3, 0.2, 10], size=(64, 3))
    x_hat = (layer.forward(x, train=True) - layer.params["beta"]) / layer.params["gamma"]
    np.testing.assert_allclose(x_hat.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(x_hat.std(axis=0), 1, rtol=1e-3)  # eps shrinks it slightly


def test_batchnorm_running_update_uses_momentum_and_unbiased_variance():
    layer, _ = built({"type": "batchnorm", "momentum": 0.75}, (4,))
    x = np.random.default_rng(0).standard_normal((6, 4))
    layer.forward(x, train=True)
    np.testing.assert_allclose(layer.buffers["running_mean"], 0.25 * x.mean(axis=0))
    np.testing.assert_allclose(layer.buffers["running_var"],
                               0.75 + 0.25 * x.var(axis=0, ddof=1))


def test_batchnorm_running_statistics_converge_to_the_data():
    mean, std = np.array([1.0, -2.0, 3.0]), np.array([0.5, 2.0, 1.0])
    layer, _ = built("batchnorm", (3,))
    rng = np.random.default_rng(0)
    for _ in range(300):
        layer.forward(rng.normal(mean, std, size=(64, 3)), train=True)
    # momentum 0.9 averages about 19 batches of 64: a standard error near 3% of the std
    assert np.all(np.abs(layer.buffers["running_mean"] - mean) < 0.15 * std)
    np.testing.assert_allclose(layer.buffers["running_var"], std**2, rtol=0.15)


def test_batchnorm_eval_uses_running_statistics_and_changes_nothing():
    layer, _ = built("batchnorm", (2, 3, 3))
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


def test_batchnorm_eval_backward_matches_centered_differences():
    layer, _ = built("batchnorm", (3,))
    layer.forward(np.random.default_rng(0).normal(2, 3, size=(8, 3)), train=True)
    x = np.random.default_rng(1).standard_normal((4, 3))
    upstream = np.random.default_rng(2).standard_normal((4, 3))
    layer.forward(x, train=False)
    dx = layer.backward(upstream)
    numeric = gradcheck.numeric_grad(
        lambda: float(np.sum(layer.forward(x, train=False) * upstream)), x, np.arange(x.size))
    assert gradcheck.rel_error(dx, numeric) < 1e-6


def test_spatial_batchnorm_equals_batchnorm_on_channels_as_features():
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 2.0, size=(4, 3, 2, 5))
    dout = rng.standard_normal(x.shape)
    spatial, _ = built("batchnorm", (3, 2, 5))
    flat, _ = built("batchnorm", (3,))
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
def test_batchnorm_gradients_match_centered_differences(in_shape):
    layer, _ = built("batchnorm", in_shape)
    layer.params["gamma"][:] = np.random.default_rng(1).normal(1, 0.5, in_shape[0])
    layer.params["beta"][:] = np.random.default_rng(2).standard_normal(in_shape[0])
    assert_gradients_match(layer, np.random.default_rng(0).normal(1, 2, (6, *in_shape)))


def test_batchnorm_keeps_float32():
    layer, _ = built("batchnorm", (2, 3, 3), dtype=np.float32)
    x = np.random.default_rng(0).standard_normal((4, 2, 3, 3)).astype(np.float32)
    assert layer.forward(x, train=True).dtype == np.float32
    assert layer.forward(x, train=False).dtype == np.float32
    assert layer.backward(np.ones_like(x)).dtype == np.float32
    assert layer.buffers["running_var"].dtype == np.float32


def test_batchnorm_needs_two_values_per_feature_to_train():
    layer, _ = built("batchnorm", (3,))
    with pytest.raises(ValueError, match="at least 2 values"):
        layer.forward(np.ones((1, 3)), train=True)
    assert layer.forward(np.ones((1, 3)), train=False).shape == (1, 3)


def test_batchnorm_rejects_bad_options_and_shapes():
    with pytest.raises(ValueError, match="momentum"):
        LAYERS.create({"type": "batchnorm", "momentum": 1.5})
    with pytest.raises(ValueError, match="eps"):
        LAYERS.create({"type": "batchnorm", "eps": 0})
    with pytest.raises(ShapeError, match=r"\(7, 3\)"):
        built("batchnorm", (7, 3))


# -- residual -------------------------------------------------------------------------

BODY = [{"type": "affine", "units": 4}, "tanh", {"type": "affine", "units": 4}]


def test_residual_adds_the_input_when_shapes_match():
    layer, out_shape = built({"type": "residual", "layers": BODY}, (4,))
    assert out_shape == (4,) and layer.shortcut is None
    x = np.random.default_rng(0).standard_normal((3, 4))
    out = layer.forward(x)
    np.testing.assert_allclose(out, layer.body.forward(x) + x)


def test_residual_identity_path_carries_the_gradient_unchanged():
    layer, _ = built({"type": "residual", "layers": BODY}, (4,))
    x = np.random.default_rng(0).standard_normal((3, 4))
    dout = np.random.default_rng(1).standard_normal((3, 4))
    layer.forward(x)
    dx = layer.backward(dout)
    layer.body.forward(x)
    np.testing.assert_allclose(dx - layer.body.backward(dout), dout)


def test_residual_projects_only_when_the_shape_changes_or_asked():
    layer, out_shape = built({"type": "residual", "layers": [{"type": "affine", "units": 3}]}, (5,))
    assert out_shape == (3,)
    assert layer.shortcut.config()["type"] == "affine"
    assert set(layer.shortcut.params) == {"W"} and layer.shortcut.params["W"].shape == (5, 3)
    x = np.random.default_rng(0).standard_normal((2, 5))
    np.testing.assert_allclose(layer.forward(x),
                               layer.body.forward(x) + layer.shortcut.forward(x))
    always, _ = built({"type": "residual", "layers": BODY, "projection": "always"}, (4,))
    assert always.shortcut.params["W"].shape == (4, 4)


def test_residual_projection_none_needs_matching_shapes():
    with pytest.raises(ShapeError, match=r"maps \(5\) to \(3\)"):
        built({"type": "residual", "layers": [{"type": "affine", "units": 3}],
               "projection": "none"}, (5,))
    layer, _ = built({"type": "residual", "layers": BODY, "projection": "none"}, (4,))
    assert layer.shortcut is None


def test_residual_spatial_projection_is_a_strided_1x1_convolution():
    spec = {"type": "residual", "layers": [
        {"type": "conv2d", "filters": 6, "kernel": 3, "stride": 2, "pad": 1}, "relu",
        {"type": "conv2d", "filters": 6, "kernel": 3, "stride": 1, "pad": 1}]}
    layer, out_shape = built(spec, (3, 7, 7))
    assert out_shape == (6, 4, 4)
    shortcut = layer.shortcut.config()
    assert {k: shortcut[k] for k in ("type", "filters", "kernel", "stride", "pad")} == {
        "type": "conv2d", "filters": 6, "kernel": 1, "stride": 2, "pad": 0}
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 7))
    assert layer.forward(x).shape == (2, 6, 4, 4)
    assert layer.macs((3, 7, 7), out_shape) == (16 * 6 * 9 * 3 + 16 * 6 * 9 * 6 + 16 * 6 * 3)


@pytest.mark.parametrize("size_in,size_out,window", [
    (7, 4, (1, 2)), (5, 5, (1, 1)), (9, 3, (1, 4)), (8, 4, (2, 2)), (5, 4, (2, 1)), (6, 1, (6, 1)),
])
def test_projection_window_is_the_smallest_kernel_that_fits(size_in, size_out, window):
    kernel, stride = projection_window(size_in, size_out)
    assert (kernel, stride) == window
    assert (size_in - kernel) % stride == 0 and (size_in - kernel) // stride + 1 == size_out


def test_residual_projects_even_sizes_with_a_strided_window():
    spec = {"type": "residual", "layers": [
        {"type": "conv2d", "filters": 3, "kernel": 4, "stride": 2, "pad": 1}]}
    layer, out_shape = built(spec, (2, 8, 6))
    assert out_shape == (3, 4, 3)
    shortcut = layer.shortcut.config()
    assert (shortcut["kernel"], shortcut["stride"]) == (2, 2)
    assert layer.forward(np.ones((1, 2, 8, 6))).shape == (1, 3, 4, 3)
    wide, _ = built({"type": "residual", "layers": [
        {"type": "conv2d", "filters": 2, "kernel": [1, 2], "stride": 1, "pad": 0}]}, (2, 5, 5))
    assert (wide.shortcut.config()["kernel"], wide.shortcut.config()["stride"]) == ([1, 2], 1)


def test_residual_rejects_shapes_no_projection_can_map():
    with pytest.raises(ShapeError, match="no projection"):
        built({"type": "residual", "layers": ["flatten"]}, (2, 3, 3))


def test_residual_rejects_bad_options():
    with pytest.raises(ValueError, match="projection"):
        LAYERS.create({"type": "residual", "layers": BODY, "projection": "sometimes"})
    with pytest.raises(ValueError, match="layers"):
        LAYERS.create({"type": "residual", "layers": []})
    with pytest.raises(ValueError, match="layers"):
        LAYERS.create({"type": "residual", "layers": "relu"})


def test_residual_macs_sum_the_children():
    layer, out_shape = built({"type": "residual", "layers": [{"type": "affine", "units": 3}]}, (5,))
    assert layer.macs((5,), out_shape) == 5 * 3 + 5 * 3


def test_block_parameter_names_inside_a_model():
    model = Model(layers=[{"type": "affine", "units": 5},
                          {"type": "residual", "layers": [{"type": "affine", "units": 3},
                                                          "batchnorm", "relu"]},
                          {"type": "concat", "branches": [[{"type": "affine", "units": 2}], []]},
                          {"type": "affine", "units": 2}],
                  in_shape=(4,), dtype="float32")
    assert set(model.params) == {
        "0.W", "0.b",
        "1.body.0.W", "1.body.0.b", "1.body.1.gamma", "1.body.1.beta", "1.shortcut.W",
        "2.branches.0.0.W", "2.branches.0.0.b",
        "3.W", "3.b"}
    assert model.decay == {"0.W", "1.body.0.W", "1.shortcut.W", "2.branches.0.0.W", "3.W"}
    assert set(model.buffers) == {"1.body.1.running_mean", "1.body.1.running_var"}
    assert all(p.dtype == np.float32 for p in model.params.values())
    assert model.forward(np.ones((2, 4), np.float32)).dtype == np.float32


def test_model_with_blocks_dropout_and_batchnorm_passes_gradcheck():
    model = Model(layers=[{"type": "affine", "units": 6},
                          # batchnorm first: right after an affine layer it would make
                          # that layer's bias gradient exactly 0, which no difference checks
                          {"type": "residual", "layers": ["batchnorm",
                                                          {"type": "affine", "units": 6},
                                                          "tanh",
                                                          {"type": "dropout", "drop_rate": 0.3}]},
                          {"type": "concat", "branches": [[{"type": "affine", "units": 2}],
                                                          ["tanh"], []]},
                          {"type": "affine", "units": 3}],
                  in_shape=(4,), l2=0.1, dtype="float64", seed=1)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((5, 4)), rng.integers(0, 3, 5)
    checks = gradcheck.check_model(model, x, y)
    assert {c.param for c in checks} >= {"body.0.gamma", "body.1.W", "branches.0.0.W"}
    for check in checks:
        assert check.passed, f"{check.layer} {check.param}: rel error {check.error:.2e}"


def test_nested_block_config_round_trip():
    spec = {"type": "residual", "projection": "always", "layers": [
        {"type": "concat", "branches": [
            [{"type": "residual", "layers": [{"type": "affine", "units": 3}, "tanh"]}],
            [{"type": "affine", "units": 2}, {"type": "dropout", "drop_rate": 0.2}],
        ]},
        "batchnorm",
    ]}
    layer, out_shape = built(spec, (4,))
    config = layer.config()
    assert (config["layers"][0]["branches"][0][0]["layers"][0]
            == LAYERS.create({"type": "affine", "units": 3}).config())
    clone, clone_shape = built(config, (4,))
    assert clone.config() == config and clone_shape == out_shape == (5,)
    params, clone_params = layer.named("params"), clone.named("params")
    assert set(params) == set(clone_params)
    assert "body.0.branches.0.0.shortcut.W" in params
    for key, value in params.items():
        np.testing.assert_array_equal(clone_params[key], value)
    x = np.random.default_rng(0).standard_normal((3, 4))
    np.testing.assert_array_equal(clone.forward(x, train=False), layer.forward(x, train=False))


# -- concat ---------------------------------------------------------------------------

def test_concat_stacks_branch_outputs_along_axis_1():
    spec = {"type": "concat", "branches": [[{"type": "affine", "units": 3}], [], ["tanh"]]}
    layer, out_shape = built(spec, (4,))
    assert out_shape == (11,)
    x = np.random.default_rng(0).standard_normal((2, 4))
    out = layer.forward(x)
    np.testing.assert_allclose(out[:, :3], layer.branches[0].forward(x))
    np.testing.assert_array_equal(out[:, 3:7], x)
    np.testing.assert_allclose(out[:, 7:], np.tanh(x))


def test_concat_backward_sums_the_split_gradients():
    layer, out_shape = built({"type": "concat", "branches": [[], []]}, (2, 3, 3))
    assert out_shape == (4, 3, 3)
    x = np.random.default_rng(0).standard_normal((2, 2, 3, 3))
    np.testing.assert_array_equal(layer.forward(x), np.concatenate([x, x], axis=1))
    dout = np.random.default_rng(1).standard_normal((2, 4, 3, 3))
    np.testing.assert_allclose(layer.backward(dout), dout[:, :2] + dout[:, 2:])


def test_inception_module_shapes_names_and_gradients():
    spec = {"type": "concat", "branches": [
        [{"type": "conv2d", "filters": 2, "kernel": 1, "stride": 1, "pad": 0}],
        [{"type": "conv2d", "filters": 1, "kernel": 1, "stride": 1, "pad": 0}, "tanh",
         {"type": "conv2d", "filters": 3, "kernel": 3, "stride": 1, "pad": 1}],
        [{"type": "conv2d", "filters": 2, "kernel": 5, "stride": 1, "pad": 2}],
        [],
    ]}
    layer, out_shape = built(spec, (3, 5, 5))
    assert out_shape == (2 + 3 + 2 + 3, 5, 5)
    assert {"branches.0.0.W", "branches.1.2.W", "branches.2.0.W"} <= set(layer.named("params"))
    assert layer.macs((3, 5, 5), out_shape) == 25 * (2 * 3 + 1 * 3 + 3 * 9 + 2 * 25 * 3)
    assert_gradients_match(layer, np.random.default_rng(0).standard_normal((2, 3, 5, 5)))


def test_concat_names_the_mismatched_branch_shapes():
    spec = {"type": "concat", "branches": [
        [{"type": "conv2d", "filters": 2, "kernel": 3, "stride": 1, "pad": 0}], []]}
    with pytest.raises(ShapeError, match=r"branch 0 \(2, 3, 3\), branch 1 \(3, 5, 5\)"):
        built(spec, (3, 5, 5))
    with pytest.raises(ShapeError, match=r"branch 0 \(3, 4\), branch 1 \(12\)"):
        built({"type": "concat", "branches": [[], ["flatten"]]}, (3, 4))


def test_concat_rejects_bad_branches():
    with pytest.raises(ValueError, match="branches"):
        LAYERS.create({"type": "concat", "branches": []})
    with pytest.raises(ValueError, match="branches"):
        LAYERS.create({"type": "concat", "branches": [{"type": "affine", "units": 2}]})


# -- key paths in build errors ----------------------------------------------------------
# conv2d cannot take the (4,) features the first affine layer gives: at the top, in a
# residual body, in a residual inside a concat branch inside a residual body
MISFIT = {"type": "conv2d", "filters": 2, "kernel": 3}
NESTED_MISFIT = [{"type": "affine", "units": 4}, {"type": "residual", "layers": [
    "relu", {"type": "concat", "branches": [[{"type": "affine", "units": 2}],
                                            [{"type": "residual", "layers": [MISFIT]}]]}]}]


@pytest.mark.parametrize("layers,key,name", [
    ([{"type": "affine", "units": 4}, MISFIT], "model.layers.1", "conv2d"),
    ([{"type": "affine", "units": 4}, {"type": "residual", "layers": ["relu", MISFIT]}],
     "model.layers.1.layers.1", "conv2d"),
    (NESTED_MISFIT, "model.layers.1.layers.1.branches.1.0.layers.0", "conv2d"),
    # the block's own refusal names the block
    ([{"type": "affine", "units": 4},
      {"type": "residual", "projection": "none", "layers": [{"type": "affine", "units": 3}]}],
     "model.layers.1", "residual"),
])
def test_a_model_with_a_key_path_names_the_misfit_layer_by_its_key(layers, key, name):
    with pytest.raises(ShapeError) as error:
        Model(layers, in_shape=(2,), path="model.layers")
    assert str(error.value).startswith(f"{key} ({name}) with input shape (4): ")
    assert error.value.key == key


def test_a_model_without_a_key_path_names_the_misfit_layer_by_positions():
    with pytest.raises(ShapeError) as error:
        Model(NESTED_MISFIT, in_shape=(2,))
    assert str(error.value).startswith(
        "layer 1 (residual) with input shape (4): body: layer 1 (concat) with input shape "
        "(4): branch 1: layer 0 (residual) with input shape (4): body: layer 0 (conv2d) "
        "with input shape (4): conv2d needs images")
    assert error.value.key is None
