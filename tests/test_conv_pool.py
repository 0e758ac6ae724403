"""Convolution and pooling against naive loops, numerical gradients and the notes' counts."""

import numpy as np
import pytest

from dl_cli import gradcheck
from dl_cli.nn import ShapeError
from dl_cli.nn.conv import as_pair, col2im, im2col
from dl_cli.nn.model import Model
from dl_cli.registry import LAYERS

from gradients import assert_gradients_match

# (input shape C, H, W; kernel; stride; pad): non-square inputs, strides 1 and 2, pads,
# 1×1 kernels, a kernel larger than the unpadded input, and per-axis pairs.
CONV_CASES = [
    ((3, 5, 7), 3, 1, 0),
    ((3, 5, 7), 3, 2, 1),
    ((2, 6, 4), 1, 1, 0),
    ((2, 5, 7), 1, 2, 0),
    ((2, 4, 4), 5, 1, 2),
    ((3, 6, 8), 4, 2, 1),
    ((1, 7, 6), [3, 2], [2, 1], [1, 0]),
]

# (input shape; pool; stride): tiling windows, overlapping ones, and ones with gaps.
POOL_CASES = [
    ((2, 4, 6), 2, None),
    ((2, 6, 9), 3, None),
    ((2, 4, 5), [2, 3], [2, 1]),
    ((2, 7, 5), 3, 2),
    ((1, 5, 6), 3, 1),
    ((1, 8, 5), 2, 3),
]


def build(spec, in_shape, dtype=np.float64, seed=0):
    layer = LAYERS.create(spec)
    layer.configure(dtype, "he_normal")
    out_shape = layer.build(in_shape, np.random.default_rng(seed))
    return layer, out_shape


def conv_spec(kernel, stride, pad, filters=3):
    return {"type": "conv2d", "filters": filters, "kernel": kernel, "stride": stride, "pad": pad}


def pool_spec(kind, pool, stride):
    return {"type": kind, "pool": pool, "stride": stride}


# -- naive references: explicit loops over samples, filters/channels and positions ------

def naive_conv(x, W, b, stride, pad):
    (SH, SW), (PH, PW) = as_pair("stride", stride, 1), as_pair("pad", pad, 0)
    N, C, H, Wd = x.shape
    F, _, KH, KW = W.shape
    xp = np.zeros((N, C, H + 2 * PH, Wd + 2 * PW))
    xp[:, :, PH:PH + H, PW:PW + Wd] = x
    Ho, Wo = (H + 2 * PH - KH) // SH + 1, (Wd + 2 * PW - KW) // SW + 1
    out = np.zeros((N, F, Ho, Wo))
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    field = xp[n, :, i * SH:i * SH + KH, j * SW:j * SW + KW]
                    out[n, f, i, j] = np.sum(field * W[f]) + b[f]
    return out


def pool_windows(x, pool, stride):
    """Yield (n, c, i, j, window) for every pooling window, by explicit loops."""
    PH, PW = as_pair("pool", pool, 1)
    SH, SW = (PH, PW) if stride is None else as_pair("stride", stride, 1)
    N, C, H, W = x.shape
    for n in range(N):
        for c in range(C):
            for i in range((H - PH) // SH + 1):
                for j in range((W - PW) // SW + 1):
                    rows, cols = slice(i * SH, i * SH + PH), slice(j * SW, j * SW + PW)
                    yield n, c, i, j, rows, cols


def naive_pool(x, pool, stride, reduce):
    out = {}
    for n, c, i, j, rows, cols in pool_windows(x, pool, stride):
        out[n, c, i, j] = reduce(x[n, c, rows, cols])
    shape = tuple(max(k[a] for k in out) + 1 for a in range(4))
    result = np.zeros(shape)
    for key, value in out.items():
        result[key] = value
    return result


def naive_maxpool_backward(x, dout, pool, stride):
    """The whole gradient of each window to its first maximum (row-major argmax)."""
    dx = np.zeros_like(x)
    for n, c, i, j, rows, cols in pool_windows(x, pool, stride):
        window = x[n, c, rows, cols]
        u, v = np.unravel_index(np.argmax(window), window.shape)
        dx[n, c, rows.start + u, cols.start + v] += dout[n, c, i, j]
    return dx


# -- outputs -------------------------------------------------------------------------

@pytest.mark.parametrize("in_shape,kernel,stride,pad", CONV_CASES)
def test_conv_matches_naive_loops(in_shape, kernel, stride, pad):
    layer, out_shape = build(conv_spec(kernel, stride, pad), in_shape)
    layer.params["b"][:] = np.random.default_rng(1).standard_normal(3)
    x = np.random.default_rng(2).standard_normal((2, *in_shape))
    out = layer.forward(x)
    assert out.shape == (2, *out_shape)
    expected = naive_conv(x, layer.params["W"], layer.params["b"], stride, pad)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    assert out.flags.c_contiguous


@pytest.mark.parametrize("kind,reduce", [("maxpool", np.max), ("avgpool", np.mean)])
@pytest.mark.parametrize("in_shape,pool,stride", POOL_CASES)
def test_pool_matches_naive_loops(kind, reduce, in_shape, pool, stride):
    layer, out_shape = build(pool_spec(kind, pool, stride), in_shape)
    x = np.random.default_rng(3).standard_normal((2, *in_shape))
    out = layer.forward(x)
    assert out.shape == (2, *out_shape)
    np.testing.assert_allclose(out, naive_pool(x, pool, stride, reduce), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("in_shape,pool,stride", POOL_CASES)
def test_maxpool_gradient_goes_to_the_first_maximum_on_ties(in_shape, pool, stride):
    layer, _ = build(pool_spec("maxpool", pool, stride), in_shape)
    rng = np.random.default_rng(4)
    x = rng.integers(0, 2, size=(2, *in_shape)).astype(np.float64)  # ties in most windows
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape)
    np.testing.assert_allclose(layer.backward(dout), naive_maxpool_backward(x, dout, pool, stride),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("pool,stride", [(2, None), (3, 2)])
def test_maxpool_routes_to_exactly_one_position_per_window(pool, stride):
    layer, _ = build(pool_spec("maxpool", pool, stride), (1, 7, 7) if stride else (1, 6, 6))
    x = np.zeros((1, 1, 7, 7) if stride else (1, 1, 6, 6))
    out = layer.forward(x)
    dx = layer.backward(np.ones_like(out))
    assert dx.sum() == out.size
    if stride is None:
        assert np.count_nonzero(dx) == out.size
        np.testing.assert_array_equal(dx[0, 0, ::2, ::2], 1.0)  # the top-left of each window


@pytest.mark.parametrize("pool,stride,size", [(2, None, 8), (3, 2, 9), (2, 3, 8)])
def test_avgpool_spreads_the_gradient_equally(pool, stride, size):
    layer, _ = build(pool_spec("avgpool", pool, stride), (1, size, size))
    x = np.random.default_rng(5).standard_normal((1, 1, size, size))
    dout = np.ones_like(layer.forward(x))
    dx = layer.backward(dout)
    expected = np.zeros_like(x)
    for n, c, i, j, rows, cols in pool_windows(x, pool, stride):
        expected[n, c, rows, cols] += dout[n, c, i, j] / pool ** 2
    np.testing.assert_allclose(dx, expected, rtol=1e-12)


@pytest.mark.parametrize("in_shape,kernel,stride,pad", CONV_CASES)
def test_col2im_is_the_adjoint_of_im2col(in_shape, kernel, stride, pad):
    kernel, stride, pad = as_pair("k", kernel, 1), as_pair("s", stride, 1), as_pair("p", pad, 0)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, *in_shape))
    cols = im2col(x, kernel, stride, pad)
    c = rng.standard_normal(cols.shape)
    assert np.vdot(cols, c) == pytest.approx(np.vdot(x, col2im(c, x.shape, kernel, stride, pad)))


# -- gradients -------------------------------------------------------------------------

@pytest.mark.parametrize("in_shape,kernel,stride,pad", CONV_CASES)
def test_conv_gradients_match_numerical(in_shape, kernel, stride, pad):
    layer, _ = build(conv_spec(kernel, stride, pad, filters=2), in_shape)
    layer.params["b"][:] = [0.3, -0.2]
    assert_gradients_match(layer, np.random.default_rng(8).standard_normal((2, *in_shape)))


@pytest.mark.parametrize("kind", ["maxpool", "avgpool"])
@pytest.mark.parametrize("in_shape,pool,stride", POOL_CASES)
def test_pool_gradients_match_numerical(kind, in_shape, pool, stride):
    # Max pooling has a kink where two window entries are equal; normal draws are
    # farther apart than ε = 1e-6, so the strict tolerance holds.
    layer, _ = build(pool_spec(kind, pool, stride), in_shape)
    assert_gradients_match(layer, np.random.default_rng(9).standard_normal((2, *in_shape)))


@pytest.mark.parametrize("kind", ["maxpool", "avgpool"])
@pytest.mark.parametrize("in_shape,pool,stride", POOL_CASES)
def test_pool_eval_backward_after_a_training_batch_of_the_same_size(kind, in_shape, pool, stride):
    # Regression: maxpool's eval forward left the training batch's masks in the cache,
    # and backward routed the new batch's gradient to the old batch's maxima.
    layer, _ = build(pool_spec(kind, pool, stride), in_shape)
    rng = np.random.default_rng(11)
    layer.forward(rng.standard_normal((2, *in_shape)), train=True)
    x = rng.standard_normal((2, *in_shape))
    out = layer.forward(x, train=False)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    numeric = gradcheck.numeric_grad(lambda: float(np.sum(layer.forward(x, train=False) * dout)),
                                     x, np.arange(x.size))
    assert gradcheck.rel_error(dx, numeric) < gradcheck.TOLERANCE
    if kind == "maxpool":
        np.testing.assert_allclose(dx, naive_maxpool_backward(x, dout, pool, stride),
                                   rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("in_shape,pool,stride", POOL_CASES)
def test_maxpool_eval_backward_keeps_the_first_maximum_on_ties(in_shape, pool, stride):
    layer, _ = build(pool_spec("maxpool", pool, stride), in_shape)
    rng = np.random.default_rng(12)
    x = rng.integers(0, 2, size=(2, *in_shape)).astype(np.float64)  # ties in most windows
    out = layer.forward(x, train=False)
    dout = rng.standard_normal(out.shape)
    np.testing.assert_allclose(layer.backward(dout), naive_maxpool_backward(x, dout, pool, stride),
                               rtol=1e-12, atol=1e-12)


def test_model_eval_loss_gradients_match_centered_differences():
    # Model.loss(train=False) is public: its gradients are those of the eval-mode loss,
    # also right after a training step on a batch of the same size.
    model = Model([conv_spec(3, 1, 1, filters=3), "relu", {"type": "maxpool", "pool": 2},
                   {"type": "affine", "units": 3}], in_shape=(2, 4, 6), dtype="float64", l2=0.1)
    rng = np.random.default_rng(16)
    model.loss(rng.standard_normal((3, 2, 4, 6)), rng.integers(0, 3, 3), train=True)
    x, y = rng.standard_normal((3, 2, 4, 6)), rng.integers(0, 3, 3)
    _, grads = model.loss(x, y, train=False)
    grads = {name: np.array(grad) for name, grad in grads.items()}
    for name, param in model.params.items():
        numeric = gradcheck.numeric_grad(lambda: model.loss(x, y, train=False)[0], param,
                                         np.arange(param.size))
        assert gradcheck.rel_error(grads[name], numeric) < gradcheck.TOLERANCE, name


# -- dtype -------------------------------------------------------------------------------

@pytest.mark.parametrize("spec,in_shape", [
    (conv_spec(3, 2, 1), (2, 5, 7)),
    (pool_spec("maxpool", 2, None), (2, 4, 6)),
    (pool_spec("maxpool", 3, 2), (2, 5, 7)),
    (pool_spec("avgpool", 2, None), (2, 4, 6)),
    (pool_spec("avgpool", 3, 2), (2, 5, 7)),
])
def test_float32_stays_float32(spec, in_shape):
    layer, _ = build(spec, in_shape, dtype=np.float32)
    x = np.random.default_rng(10).standard_normal((2, *in_shape)).astype(np.float32)
    out = layer.forward(x)
    assert out.dtype == np.float32
    assert layer.backward(np.ones_like(out)).dtype == np.float32
    for name, grad in layer.grads.items():
        assert grad.dtype == np.float32, name


# -- shape errors and bad options ------------------------------------------------------------

@pytest.mark.parametrize("spec,in_shape,message", [
    (conv_spec(5, 1, 0), (1, 3, 6),
     "kernel height 5 is larger than the padded input height 3 (3 + 2·0)"),
    (conv_spec([1, 4], 1, [0, 1]), (1, 3, 1),
     "kernel width 4 is larger than the padded input width 3 (1 + 2·1)"),
    (conv_spec(3, 1, 0), (10,),
     "conv2d needs images (C, H, W) per sample, got the 1-D shape (10,)"),
    (conv_spec(3, 1, 0), (5, 5), "got the 2-D shape (5, 5)"),
    (pool_spec("maxpool", 3, None), (1, 2, 6), "pool height 3 is larger than the input height 2"),
    (pool_spec("avgpool", 2, None), (4, 4), "avgpool needs images (C, H, W) per sample"),
])
def test_shape_errors_say_what_is_wrong(spec, in_shape, message):
    layer = LAYERS.create(spec)
    with pytest.raises(ShapeError) as error:
        layer.build(in_shape, np.random.default_rng(0))
    assert message in str(error.value)


def test_shape_error_names_the_layer_in_a_model():
    with pytest.raises(ShapeError, match=r"layer 1 \(maxpool\) with input shape \(4, 5, 5\)"):
        Model([conv_spec(3, 1, 1, filters=4), {"type": "maxpool", "pool": 6}], in_shape=(1, 5, 5))


@pytest.mark.parametrize("spec,option", [
    ({"type": "conv2d", "filters": 0, "kernel": 3}, "filters"),
    ({"type": "conv2d", "filters": 2, "kernel": 0}, "kernel"),
    ({"type": "conv2d", "filters": 2, "kernel": [3]}, "kernel"),
    ({"type": "conv2d", "filters": 2, "kernel": 3, "stride": True}, "stride"),
    ({"type": "conv2d", "filters": 2, "kernel": 3, "pad": -1}, "pad"),
    ({"type": "maxpool", "pool": "2"}, "pool"),
    ({"type": "avgpool", "stride": [2, 0]}, "stride"),
])
def test_bad_options_raise_value_error_naming_the_option(spec, option):
    with pytest.raises(ValueError, match=f"^{option} must be"):
        LAYERS.create(spec)


# -- counts from the notes ----------------------------------------------------------------

def test_two_3x3x3_filters_have_56_parameters():
    model = Model([conv_spec(3, 1, 0, filters=2)], in_shape=(3, 8, 8))
    row = model.summary()[0]
    assert row["params"] == (3 * 3 * 3 + 1) * 2 == 56
    assert row["macs"] == 6 * 6 * 2 * 3 * 3 * 3


def test_vgg16_first_conv_counts():
    model = Model([conv_spec(3, 1, 1, filters=64)], in_shape=(3, 224, 224))
    row = model.summary()[0]
    assert row["output"] == (64, 224, 224)
    assert row["params"] == 1_792
    assert row["macs"] == 86_704_128


def test_pools_have_no_parameters_and_keep_channels():
    model = Model([{"type": "maxpool", "pool": 3, "stride": 2}, "avgpool"], in_shape=(5, 9, 9))
    assert [row["output"] for row in model.summary()] == [(5, 4, 4), (5, 2, 2)]
    assert model.num_params() == 0
