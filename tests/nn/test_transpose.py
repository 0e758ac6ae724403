"""conv2d_transpose against its reference loop, as the adjoint of conv2d, by numerical
gradients and, where it is installed, PyTorch."""

import numpy as np
import pytest

from dl_cli.nn import Model, ShapeError, reference
from dl_cli.registry import LAYERS


def built(spec, in_shape, dtype=np.float64, seed=0):
    layer = LAYERS.create(spec)
    layer.configure(dtype, "he_normal")
    return layer, layer.build(in_shape, np.random.default_rng(seed))


def transpose_spec(kernel, stride=1, pad=0, output_padding=0, filters=3):
    return {"type": "conv2d_transpose", "filters": filters, "kernel": kernel, "stride": stride,
            "pad": pad, "output_padding": output_padding}


# (input C, H, W; kernel; stride; pad; output_padding)
TRANSPOSE_CASES = [
    ((2, 4, 5), 3, 1, 0, 0),
    ((2, 4, 5), 3, 1, 1, 0),
    ((3, 3, 4), 4, 2, 1, 0),
    ((2, 3, 3), 3, 2, 1, 1),
    ((1, 2, 3), [2, 3], [2, 3], [0, 1], [1, 2]),
    ((2, 5, 4), 1, 2, 0, 1),
]


@pytest.mark.parametrize("in_shape,kernel,stride,pad,extra", TRANSPOSE_CASES)
def test_transpose_matches_the_reference(in_shape, kernel, stride, pad, extra):
    layer, out_shape = built(transpose_spec(kernel, stride, pad, extra), in_shape)
    layer.params["b"][:] = np.random.default_rng(1).standard_normal(layer.params["b"].shape)
    x = np.random.default_rng(2).standard_normal((2, *in_shape))
    out = layer.forward(x)
    assert out.shape == (2, *out_shape)
    want = reference.conv_transpose_forward(x, layer.params["W"], layer.params["b"], stride,
                                            pad, extra)
    np.testing.assert_allclose(out, want, atol=1e-12)


@pytest.mark.parametrize("in_shape,kernel,stride,pad,extra", TRANSPOSE_CASES)
def test_transpose_is_the_adjoint_of_conv2d(in_shape, kernel, stride, pad, extra):
    """⟨conv(z), x⟩ = ⟨z, conv_transpose(x)⟩ with the same weights, no biases; and
    conv2d maps the transpose's output size back to its input size."""
    transpose, (F, Ho, Wo) = built(transpose_spec(kernel, stride, pad, extra), in_shape)
    C = in_shape[0]
    conv, conv_out = built({"type": "conv2d", "filters": C, "kernel": kernel, "stride": stride,
                            "pad": pad}, (F, Ho, Wo))
    assert conv_out == in_shape
    conv.params["W"][...] = transpose.params["W"]  # (C, F, KH, KW): conv2d's (filters, channels)
    rng = np.random.default_rng(3)
    z, x = rng.standard_normal((2, F, Ho, Wo)), rng.standard_normal((2, *in_shape))
    assert np.vdot(conv.forward(z), x) == pytest.approx(np.vdot(z, transpose.forward(x)), rel=1e-12)
    # and each layer's input gradient is the other's forward
    np.testing.assert_allclose(transpose.backward(z), conv.forward(z), atol=1e-12)
    np.testing.assert_allclose(conv.backward(x), transpose.forward(x), atol=1e-12)


@pytest.mark.parametrize("in_shape,kernel,stride,pad,extra", TRANSPOSE_CASES)
def test_transpose_gradients_at_every_coordinate(in_shape, kernel, stride, pad, extra,
                                                 assert_gradients_match):
    layer, _ = built(transpose_spec(kernel, stride, pad, extra), in_shape)
    assert_gradients_match(layer, np.random.default_rng(4).standard_normal((2, *in_shape)))


@pytest.mark.parametrize("kernel,stride,pad,extra", [(4, 2, 1, 0), (3, 2, 1, 1), (2, 2, 0, 0)])
def test_the_usual_transposes_double_the_image(kernel, stride, pad, extra):
    _, out_shape = built(transpose_spec(kernel, stride, pad, extra, filters=5), (3, 8, 6))
    assert out_shape == (5, 16, 12)


def test_transpose_counts_parameters_and_multiply_adds():
    model = Model([transpose_spec(4, 2, 1, filters=5)], in_shape=(3, 8, 8))
    row = model.summary()[0]
    assert row["output"] == (5, 16, 16)
    assert row["params"] == 3 * 5 * 4 * 4 + 5
    assert row["macs"] == 8 * 8 * 3 * 5 * 4 * 4


def test_transpose_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="output_padding must be smaller than the stride, got 2 "
                                         "on the height with stride 2"):
        LAYERS.create(transpose_spec(3, 2, 1, [2, 1]))
    with pytest.raises(ValueError, match="^output_padding must be"):
        LAYERS.create(transpose_spec(3, 1, 0, -1))
    with pytest.raises(ShapeError, match=r"pad 2 cuts the whole output height away: "
                                         r"\(1 − 1\)·1 − 2·2 \+ 3 \+ 0 = -1"):
        built(transpose_spec(3, 1, 2), (1, 1, 4))
    with pytest.raises(ShapeError, match="conv2d_transpose needs images"):
        built(transpose_spec(3), (4,))


def test_transpose_agrees_with_torch():
    torch = pytest.importorskip("torch")
    layer, _ = built(transpose_spec([3, 4], [2, 3], [1, 0], [1, 2], filters=4), (3, 5, 4))
    rng = np.random.default_rng(5)
    layer.params["b"][:] = rng.standard_normal(4)
    x = rng.standard_normal((2, 3, 5, 4))
    tx = torch.tensor(x, requires_grad=True)
    tW, tb = (torch.tensor(layer.params[k], requires_grad=True) for k in ("W", "b"))
    want = torch.nn.functional.conv_transpose2d(tx, tW, tb, stride=(2, 3), padding=(1, 0),
                                                output_padding=(1, 2))
    out = layer.forward(x)
    np.testing.assert_allclose(out, want.detach().numpy(), atol=1e-10)
    dout = rng.standard_normal(out.shape)
    grads = torch.autograd.grad(want, (tx, tW, tb), torch.tensor(dout))
    dx = layer.backward(dout)
    for mine, theirs in zip((dx, layer.grads["W"], layer.grads["b"]), grads):
        np.testing.assert_allclose(mine, theirs.numpy(), atol=1e-10)


def test_float32_stays_float32():
    layer, _ = built(transpose_spec(3, 2, 1, 1), (2, 3, 3), dtype=np.float32)
    x = np.random.default_rng(5).standard_normal((2, 2, 3, 3)).astype(np.float32)
    out = layer.forward(x)
    assert out.dtype == np.float32
    assert layer.backward(np.ones_like(out)).dtype == np.float32
    assert all(grad.dtype == np.float32 for grad in layer.grads.values())
