"""Strides as PyTorch and Keras count them: ``⌊(H + 2·pad − kernel)/stride⌋ + 1`` outputs,
the rows and columns no window reaches left out (zero gradient), and ``pad: same``."""

import numpy as np
import pytest

from dl_cli.nn import Model, ShapeError
from dl_cli.nn.conv import same_pad
from dl_cli.registry import LAYERS


def built(spec, in_shape, seed=0):
    layer = LAYERS.create(spec)
    layer.configure(np.float64, "he_normal")
    return layer, layer.build(in_shape, np.random.default_rng(seed))


def reached(size, kernel, stride, pad):
    """How many input rows the windows read: those after are reached by none."""
    out = (size + 2 * pad - kernel) // stride + 1
    return min(size, (out - 1) * stride + kernel - pad)


@pytest.mark.parametrize("spec,in_shape,out_hw", [
    ({"type": "conv2d", "filters": 3, "kernel": 2, "stride": 3, "pad": 1}, (2, 8, 8), (3, 3)),
    ({"type": "conv2d", "filters": 3, "kernel": 3, "stride": 2, "pad": 0}, (2, 8, 9), (3, 4)),
    ({"type": "conv2d", "filters": 2, "kernel": [3, 2], "stride": [3, 2], "pad": 0}, (1, 8, 7), (2, 3)),
    ({"type": "conv2d", "filters": 2, "kernel": 1, "stride": 2, "pad": 0}, (2, 7, 8), (4, 4)),
    ({"type": "maxpool", "pool": 2}, (2, 5, 7), (2, 3)),
    ({"type": "maxpool", "pool": 3, "stride": 2}, (2, 8, 6), (3, 2)),
    ({"type": "avgpool", "pool": 2}, (2, 7, 5), (3, 2)),
    ({"type": "avgpool", "pool": [2, 3], "stride": [3, 2]}, (1, 8, 8), (3, 3)),
])
def test_rows_no_window_reaches_are_left_out(spec, in_shape, out_hw):
    """The output is that of the input cut to the rows and columns the windows read, and
    the gradient of the rows and columns after them is exactly zero."""
    layer, out_shape = built(spec, in_shape)
    assert out_shape[1:] == out_hw
    C, H, W = in_shape
    kernel = np.broadcast_to(spec.get("kernel", spec.get("pool", 2)), 2)
    stride = np.broadcast_to(spec.get("stride") or kernel, 2)
    pad = np.broadcast_to(spec.get("pad", 0), 2)
    h, w = (reached(size, k, s, p) for size, k, s, p in zip((H, W), kernel, stride, pad))
    assert (h, w) != (H, W)  # some rows or columns are left out
    x = np.random.default_rng(1).standard_normal((3, *in_shape))
    out = layer.forward(x)
    dx = layer.backward(np.random.default_rng(2).standard_normal(out.shape))
    assert not dx[:, :, h:].any() and not dx[:, :, :, w:].any()
    cut, _ = built(spec, (C, h, w))
    cut.params = layer.params
    np.testing.assert_allclose(cut.forward(np.ascontiguousarray(x[:, :, :h, :w])), out, atol=1e-12)


@pytest.mark.parametrize("size", [4, 5, 7, 8, 32])
def test_resnet_downsampling_conv_halves_the_image(size):
    """k3 s2 p1, refused on even sizes before: ⌈size/2⌉ outputs, as in PyTorch's ResNet."""
    spec = {"type": "conv2d", "filters": 4, "kernel": 3, "stride": 2, "pad": 1}
    _, out_shape = built(spec, (3, size, size))
    assert out_shape == (4, -(-size // 2), -(-size // 2))


@pytest.mark.parametrize("kernel", [1, 2, 3, 4, 5, 7])
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("size", [1, 4, 5, 8, 9, 16])
def test_pad_same_keeps_the_size_over_the_stride(size, kernel, stride):
    if stride == 1 and kernel % 2 == 0:
        return  # refused, see below
    spec = {"type": "conv2d", "filters": 1, "kernel": kernel, "stride": stride, "pad": "same"}
    layer, out_shape = built(spec, (1, size, size))
    assert out_shape[1:] == (-(-size // stride),) * 2
    pad = same_pad(size, kernel, stride)
    assert layer.pad_hw == (pad, pad)
    explicit, _ = built({**spec, "pad": pad}, (1, size, size))
    x = np.random.default_rng(0).standard_normal((2, 1, size, size))
    np.testing.assert_array_equal(layer.forward(x), explicit.forward(x))
    assert LAYERS.create(layer.config()).config()["pad"] == "same"


def test_pad_is_a_number_a_pair_or_same():
    with pytest.raises(ValueError, match=r"^pad must be an integer >= 0, a pair \[height, width\] "
                                         r"of them, or same, got 'sam'"):
        LAYERS.create({"type": "conv2d", "filters": 1, "kernel": 3, "pad": "sam"})


def test_pad_same_with_stride_one_refuses_an_even_kernel():
    with pytest.raises(ValueError, match="pad: same with stride 1 needs an odd kernel width"):
        LAYERS.create({"type": "conv2d", "filters": 1, "kernel": [3, 2], "pad": "same"})
    LAYERS.create({"type": "conv2d", "filters": 1, "kernel": 2, "stride": 2, "pad": "same"})


def test_a_window_larger_than_the_input_is_still_refused():
    with pytest.raises(ShapeError, match="kernel height 5 is larger than the padded input "
                                         r"height 4 \(2 \+ 2·1\)"):
        built({"type": "conv2d", "filters": 1, "kernel": 5, "stride": 2, "pad": 1}, (1, 2, 9))
    with pytest.raises(ShapeError, match="pool width 3 is larger than the input width 2"):
        Model([{"type": "maxpool", "pool": 3, "stride": 1}], (1, 4, 2))


def test_the_floored_shapes_agree_with_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 9, 8))
    conv, _ = built({"type": "conv2d", "filters": 4, "kernel": 3, "stride": 2, "pad": 1}, (3, 9, 8))
    pool, _ = built({"type": "maxpool", "pool": 2}, (3, 9, 8))
    avg, _ = built({"type": "avgpool", "pool": 3, "stride": 2}, (3, 9, 8))
    tx = torch.tensor(x, requires_grad=True)
    W, b = (torch.tensor(conv.params[k]) for k in ("W", "b"))
    for layer, f in ((conv, lambda t: torch.nn.functional.conv2d(t, W, b, stride=2, padding=1)),
                     (pool, lambda t: torch.nn.functional.max_pool2d(t, 2)),
                     (avg, lambda t: torch.nn.functional.avg_pool2d(t, 3, 2))):
        out = layer.forward(x)
        want = f(tx)
        np.testing.assert_allclose(out, want.detach().numpy(), atol=1e-10)
        dout = rng.standard_normal(out.shape)
        (dx,) = torch.autograd.grad(want, tx, torch.tensor(dout))
        np.testing.assert_allclose(layer.backward(dout), dx.numpy(), atol=1e-10)
