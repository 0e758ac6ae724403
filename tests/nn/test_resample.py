"""upsample (nearest, bilinear) and global average pooling: by hand, as adjoints, and
against PyTorch where it is installed."""

import numpy as np
import pytest

from dl_cli.nn import ShapeError
from dl_cli.nn.resample import bilinear_matrix
from dl_cli.registry import LAYERS


def built(spec, in_shape, dtype=np.float64, seed=0):
    layer = LAYERS.create(spec)
    layer.configure(dtype, "he_normal")
    return layer, layer.build(in_shape, np.random.default_rng(seed))


def test_nearest_upsampling_repeats_pixels_and_sums_blocks_back():
    layer, out_shape = built({"type": "upsample", "factor": [2, 3]}, (2, 3, 4))
    assert out_shape == (2, 6, 12)
    x = np.random.default_rng(0).standard_normal((2, 2, 3, 4))
    np.testing.assert_array_equal(layer.forward(x), x.repeat(2, axis=2).repeat(3, axis=3))
    dout = np.random.default_rng(1).standard_normal((2, 2, 6, 12))
    want = dout.reshape(2, 2, 3, 2, 4, 3).sum(axis=(3, 5))
    np.testing.assert_allclose(layer.backward(dout), want)


def test_bilinear_weights_by_hand():
    """Two pixels 0 and 1, doubled: output centres at input coordinates −¼ (clamped to
    0), ¼, ¾ and 1¼ (clamped to 1)."""
    np.testing.assert_allclose(bilinear_matrix(2, 2, np.float64) @ [0.0, 1.0], [0, 0.25, 0.75, 1])
    A = bilinear_matrix(5, 3, np.float64)
    np.testing.assert_allclose(A.sum(axis=1), 1.0)  # a constant image stays constant
    layer, _ = built({"type": "upsample", "mode": "bilinear"}, (1, 2, 3))
    ramp = np.broadcast_to(np.arange(3.0), (1, 1, 2, 3))
    np.testing.assert_allclose(layer.forward(ramp)[0, 0, 0], [0, 0.25, 0.75, 1.25, 1.75, 2])


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_upsampling_backward_is_the_adjoint_of_its_forward(mode):
    layer, out_shape = built({"type": "upsample", "factor": [3, 2], "mode": mode}, (2, 4, 3))
    rng = np.random.default_rng(2)
    x, dout = rng.standard_normal((3, 2, 4, 3)), rng.standard_normal((3, *out_shape))
    assert np.vdot(layer.forward(x), dout) == pytest.approx(np.vdot(x, layer.backward(dout)))


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_upsampling_agrees_with_torch(mode):
    torch = pytest.importorskip("torch")
    layer, _ = built({"type": "upsample", "factor": [2, 3], "mode": mode}, (2, 4, 5))
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 2, 4, 5))
    tx = torch.tensor(x, requires_grad=True)
    options = {"align_corners": False} if mode == "bilinear" else {}
    want = torch.nn.functional.interpolate(tx, scale_factor=(2, 3), mode=mode, **options)
    out = layer.forward(x)
    np.testing.assert_allclose(out, want.detach().numpy(), atol=1e-12)
    dout = rng.standard_normal(out.shape)
    (dx,) = torch.autograd.grad(want, tx, torch.tensor(dout))
    np.testing.assert_allclose(layer.backward(dout), dx.numpy(), atol=1e-12)


def test_upsample_refuses_bad_options():
    with pytest.raises(ValueError, match="^mode must be one of nearest, bilinear"):
        LAYERS.create({"type": "upsample", "mode": "cubic"})
    with pytest.raises(ValueError, match="^factor must be"):
        LAYERS.create({"type": "upsample", "factor": 0})


def test_global_average_pooling_is_the_mean_of_each_channel():
    layer, out_shape = built("global_avgpool", (3, 4, 5))
    assert out_shape == (3,)
    x = np.random.default_rng(4).standard_normal((2, 3, 4, 5))
    np.testing.assert_allclose(layer.forward(x), x.mean(axis=(2, 3)))
    dx = layer.backward(np.ones((2, 3)))
    np.testing.assert_allclose(dx, np.full((2, 3, 4, 5), 1 / 20))
    with pytest.raises(ShapeError, match="global_avgpool needs images"):
        built("global_avgpool", (6,))


@pytest.mark.parametrize("spec,in_shape", [
    ({"type": "upsample", "mode": "nearest"}, (2, 3, 4)),
    ({"type": "upsample", "mode": "bilinear"}, (2, 3, 4)),
    ("global_avgpool", (2, 3, 4)),
])
def test_float32_stays_float32(spec, in_shape):
    layer, _ = built(spec, in_shape, dtype=np.float32)
    x = np.random.default_rng(5).standard_normal((2, *in_shape)).astype(np.float32)
    out = layer.forward(x)
    assert out.dtype == np.float32
    assert layer.backward(np.ones_like(out)).dtype == np.float32
    assert all(grad.dtype == np.float32 for grad in layer.grads.values())
