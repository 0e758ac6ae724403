"""The residual and concat blocks."""

import numpy as np
import pytest

from dl_cli import gradcheck
from dl_cli.nn import Model, ShapeError
from dl_cli.nn.blocks import projection_window
from dl_cli.registry import LAYERS


def built(spec, in_shape, dtype=np.float64, seed=0):
    layer = LAYERS.create(spec)
    layer.configure(dtype, "xavier_normal")
    out_shape = layer.build(in_shape, np.random.default_rng(seed))
    return layer, out_shape


# -- residual -----------------------------------------------------------------------

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
    (7, 4, (1, 2)), (5, 5, (1, 1)), (9, 3, (1, 3)), (8, 4, (1, 2)), (4, 2, (1, 2)),
    (32, 16, (1, 2)), (5, 4, (2, 1)), (6, 1, (6, 1)),
])
def test_projection_window_is_the_smallest_kernel_that_fits(size_in, size_out, window):
    kernel, stride = projection_window(size_in, size_out)
    assert (kernel, stride) == window
    assert (size_in - kernel) // stride + 1 == size_out  # conv2d's floored count
    if kernel > 1:  # no 1×1 window fits: the kernel tiles the input exactly
        assert (size_in - kernel) % stride == 0


@pytest.mark.parametrize("size", [4, 7, 8, 32])
def test_resnet_downsampling_block_has_a_1x1_stride_2_projection(size):
    """The block of PyTorch's ResNet: a k3 s2 p1 body beside a 1×1 stride-2 shortcut,
    whose pixels 2·i are the centres of the body's windows, on even sizes too."""
    spec = {"type": "residual", "layers": [
        {"type": "conv2d", "filters": 4, "kernel": 3, "stride": 2, "pad": 1}, "relu",
        {"type": "conv2d", "filters": 4, "kernel": 3, "pad": 1}]}
    layer, out_shape = built(spec, (2, size, size))
    half = -(-size // 2)
    assert out_shape == (4, half, half)
    shortcut = layer.shortcut.config()
    assert (shortcut["kernel"], shortcut["stride"], shortcut["pad"]) == (1, 2, 0)
    x = np.random.default_rng(0).standard_normal((2, 2, size, size))
    W = layer.shortcut.params["W"][:, :, 0, 0]  # (4, 2)
    body = layer.body.forward(x)
    b = layer.shortcut.params["b"][None, :, None, None]
    np.testing.assert_allclose(layer.forward(x) - body,
                               np.einsum("fc,nchw->nfhw", W, x[:, :, ::2, ::2]) + b, atol=1e-12)


def test_residual_projects_even_sizes_with_a_strided_window():
    spec = {"type": "residual", "layers": [
        {"type": "conv2d", "filters": 3, "kernel": 4, "stride": 2, "pad": 1}]}
    layer, out_shape = built(spec, (2, 8, 6))
    assert out_shape == (3, 4, 3)
    shortcut = layer.shortcut.config()
    assert (shortcut["kernel"], shortcut["stride"]) == (1, 2)
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


# -- concat -------------------------------------------------------------------------

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


def test_inception_module_shapes_names_and_gradients(assert_gradients_match):
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
