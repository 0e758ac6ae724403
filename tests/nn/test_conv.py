"""conv2d against its reference loops and numerical gradients; im2col and col2im; the
notes' counts."""

import numpy as np
import pytest

from dl_cli.nn import reference
from dl_cli.nn.conv import as_pair, col2im, im2col
from dl_cli.nn.model import Model
from dl_cli.registry import LAYERS

# (input shape C, H, W; kernel; stride; pad): non-square inputs, strides 1 and 2, pads,
# 1×1 kernels, a kernel larger than the unpadded input, per-axis pairs, strides that
# leave the last rows or columns to no window (ResNet's k3 s2 p1 on an even size), and
# at stride 1 rows that share their padding (k3 p1) or cannot (a pad as wide as the
# kernel).
CONV_CASES = [
    ((3, 5, 7), 3, 1, 0),
    ((2, 5, 6), 3, 1, 1),
    ((2, 4, 5), 1, 1, 1),
    ((1, 5, 4), 2, 1, [1, 2]),
    ((3, 5, 7), 3, 2, 1),
    ((2, 6, 4), 1, 1, 0),
    ((2, 5, 7), 1, 2, 0),
    ((2, 4, 4), 5, 1, 2),
    ((3, 6, 8), 4, 2, 1),
    ((1, 7, 6), [3, 2], [2, 1], [1, 0]),
    ((1, 8, 8), 3, 3, 0),
    ((2, 7, 8), 3, 2, 0),
    ((2, 8, 6), 3, 2, 1),
]


def conv_spec(kernel, stride, pad, filters=3):
    return {"type": "conv2d", "filters": filters, "kernel": kernel, "stride": stride, "pad": pad}


# -- outputs and gradients ----------------------------------------------------------

@pytest.mark.parametrize("in_shape,kernel,stride,pad", CONV_CASES)
def test_conv_matches_the_reference(in_shape, kernel, stride, pad, build_layer):
    layer, out_shape = build_layer(conv_spec(kernel, stride, pad), in_shape)
    layer.params["b"][:] = np.random.default_rng(1).standard_normal(3)
    x = np.random.default_rng(2).standard_normal((2, *in_shape))
    out = layer.forward(x)
    assert out.shape == (2, *out_shape)
    expected = reference.conv_forward(x, layer.params["W"], layer.params["b"], stride, pad)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    assert out.flags.c_contiguous


@pytest.mark.parametrize("in_shape,kernel,stride,pad", CONV_CASES)
def test_conv_backward_matches_the_reference(in_shape, kernel, stride, pad, build_layer):
    layer, _ = build_layer(conv_spec(kernel, stride, pad), in_shape)
    rng = np.random.default_rng(14)
    x = rng.standard_normal((2, *in_shape))
    dout = rng.standard_normal(layer.forward(x).shape)
    dx = layer.backward(dout)
    expected_dx, expected_dW, expected_db = reference.conv_backward(
        x, layer.params["W"], dout, stride, pad)
    np.testing.assert_allclose(dx, expected_dx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.grads["W"], expected_dW, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.grads["b"], expected_db, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("wide", [True, False])
@pytest.mark.parametrize("in_shape,kernel,stride,pad", CONV_CASES)
def test_col2im_is_the_adjoint_of_im2col(in_shape, kernel, stride, pad, wide):
    kernel, stride, pad = as_pair("k", kernel, 1), as_pair("s", stride, 1), as_pair("p", pad, 0)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, *in_shape))
    cols = im2col(x, kernel, stride, pad, wide)
    c = rng.standard_normal(cols.shape)
    dx = col2im(c, x.shape, kernel, stride, pad, wide)
    assert np.vdot(cols, c) == pytest.approx(np.vdot(x, dx))


@pytest.mark.parametrize("kernel,pad,row", [(3, 1, 7 + 1), (5, 2, 7 + 2), (1, 1, 7 + 2)])
def test_rows_of_the_padded_images_share_their_padding(kernel, pad, row):
    """With stride 1 the wide columns run over rows of W + P (the zeros that end a row
    start the next), or W + 2P where the pad is as wide as the kernel."""
    x = np.random.default_rng(3).standard_normal((1, 2, 4, 7))
    cols = im2col(x, (kernel, kernel), (1, 1), (pad, pad))
    assert cols.shape == (1, kernel * kernel * 2, (4 + 2 * pad - kernel + 1) * row)


@pytest.mark.parametrize("filters,wide", [(4, True), (12, False)])
def test_thin_inputs_take_narrow_columns_with_the_same_results(filters, wide, build_layer):
    """One channel and a 3×3 kernel: 9 values a receptive field, so 12 filters make the
    columns narrow (``wide_columns``); the sums are the reference's either way."""
    layer, _ = build_layer(conv_spec(3, 1, 1, filters=filters), (1, 5, 6))
    assert layer.wide_columns(1) == wide
    rng = np.random.default_rng(15)
    layer.params["b"][:] = rng.standard_normal(filters)
    x = rng.standard_normal((3, 1, 5, 6))
    out = layer.forward(x)
    np.testing.assert_allclose(out, reference.conv_forward(x, layer.params["W"],
                                                           layer.params["b"], 1, 1),
                               rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    expected_dx, expected_dW, expected_db = reference.conv_backward(
        x, layer.params["W"], dout, 1, 1)
    for got, expected in [(dx, expected_dx), (layer.grads["W"], expected_dW),
                          (layer.grads["b"], expected_db)]:
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("in_shape,kernel,stride,pad", CONV_CASES)
def test_conv_gradients_match_numerical(in_shape, kernel, stride, pad, build_layer,
                                        assert_gradients_match):
    layer, _ = build_layer(conv_spec(kernel, stride, pad, filters=2), in_shape)
    layer.params["b"][:] = [0.3, -0.2]
    assert_gradients_match(layer, np.random.default_rng(8).standard_normal((2, *in_shape)))


@pytest.mark.parametrize("spec,in_shape", [
    (conv_spec(3, 2, 1), (2, 5, 7)),
])
def test_float32_stays_float32(spec, in_shape, build_layer, assert_stays_float32):
    layer, _ = build_layer(spec, in_shape, dtype=np.float32)
    x = np.random.default_rng(10).standard_normal((2, *in_shape)).astype(np.float32)
    assert_stays_float32(layer, x)


# -- shape errors and bad options ---------------------------------------------------

@pytest.mark.parametrize("spec,in_shape,message", [
    (conv_spec(5, 1, 0), (1, 3, 6),
     "kernel height 5 is larger than the padded input height 3 (3 + 2·0)"),
    (conv_spec([1, 4], 1, [0, 1]), (1, 3, 1),
     "kernel width 4 is larger than the padded input width 3 (1 + 2·1)"),
    (conv_spec(3, 1, 0), (10,),
     "conv2d needs images (C, H, W) per sample, got the 1-D shape (10,)"),
    (conv_spec(3, 1, 0), (5, 5), "got the 2-D shape (5, 5)"),
])
def test_shape_errors_say_what_is_wrong(spec, in_shape, message, shape_error):
    assert message in shape_error(spec, in_shape)


@pytest.mark.parametrize("spec,option", [
    ({"type": "conv2d", "filters": 0, "kernel": 3}, "filters"),
    ({"type": "conv2d", "filters": 2, "kernel": 0}, "kernel"),
    ({"type": "conv2d", "filters": 2, "kernel": [3]}, "kernel"),
    ({"type": "conv2d", "filters": 2, "kernel": 3, "stride": True}, "stride"),
    ({"type": "conv2d", "filters": 2, "kernel": 3, "pad": -1}, "pad"),
])
def test_bad_options_raise_value_error_naming_the_option(spec, option):
    with pytest.raises(ValueError, match=f"^{option} must be"):
        LAYERS.create(spec)


# -- counts from the notes ----------------------------------------------------------

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
