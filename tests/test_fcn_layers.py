"""The layers of fully convolutional networks (transposed convolution, upsampling, global
average pooling), the per-pixel softmax loss and the segmentation metrics: against their
definitions written as loops, the adjoint identities, centered differences in float64
and, where it is installed, PyTorch."""

import numpy as np
import pytest

from dl_cli import gradcheck
from dl_cli.metrics import evaluate, mean_iou, reported_metrics
from dl_cli.nn import Model, ShapeError
from dl_cli.nn.resample import bilinear_matrix
from dl_cli.registry import LAYERS, LOSSES

from gradients import assert_gradients_match


def built(spec, in_shape, dtype=np.float64, seed=0):
    layer = LAYERS.create(spec)
    layer.configure(dtype, "he_normal")
    return layer, layer.build(in_shape, np.random.default_rng(seed))


def transpose_spec(kernel, stride=1, pad=0, output_padding=0, filters=3):
    return {"type": "conv2d_transpose", "filters": filters, "kernel": kernel, "stride": stride,
            "pad": pad, "output_padding": output_padding}


def pair(value):
    return tuple(value) if isinstance(value, (list, tuple)) else (value, value)


def scattered(x, W, b, stride, pad, out_hw):
    """The transposed convolution by its definition: every input pixel adds its
    kernel-weighted values into a patch of the (padded) output."""
    (SH, SW), (PH, PW) = pair(stride), pair(pad)
    N, C, H, Wd = x.shape
    _, F, KH, KW = W.shape
    Ho, Wo = out_hw
    padded = np.zeros((N, F, Ho + 2 * PH + KH, Wo + 2 * PW + KW))
    for n in range(N):
        for c in range(C):
            for i in range(H):
                for j in range(Wd):
                    padded[n, :, SH * i:SH * i + KH, SW * j:SW * j + KW] += x[n, c, i, j] * W[c]
    return padded[:, :, PH:PH + Ho, PW:PW + Wo] + b[None, :, None, None]


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
def test_transpose_matches_the_scatter_loop(in_shape, kernel, stride, pad, extra):
    layer, out_shape = built(transpose_spec(kernel, stride, pad, extra), in_shape)
    layer.params["b"][:] = np.random.default_rng(1).standard_normal(layer.params["b"].shape)
    x = np.random.default_rng(2).standard_normal((2, *in_shape))
    want = scattered(x, layer.params["W"], layer.params["b"], stride, pad, out_shape[1:])
    np.testing.assert_allclose(layer.forward(x), want, atol=1e-12)


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
def test_transpose_gradients_at_every_coordinate(in_shape, kernel, stride, pad, extra):
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


# -- upsample and global average pooling ----------------------------------------------

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
    (transpose_spec(3, 2, 1, 1), (2, 3, 3)),
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


# -- per-pixel softmax cross-entropy --------------------------------------------------

def pixel_example(rng, ignored=True):
    scores = rng.standard_normal((2, 4, 3, 5))
    y = rng.integers(0, 4, size=(2, 3, 5))
    if ignored:
        y[0, 1, 2:] = y[1, 0, 0] = 255
    return scores, y


def test_per_pixel_loss_is_the_mean_over_pixels_of_the_row_loss():
    rng = np.random.default_rng(6)
    scores, y = pixel_example(rng, ignored=False)
    loss = LOSSES.create("softmax_cross_entropy")
    rows = scores.transpose(0, 2, 3, 1).reshape(-1, 4)
    value, dscores = loss(scores, y)
    row_value, drows = loss(rows, y.reshape(-1))
    assert value == pytest.approx(row_value)
    np.testing.assert_allclose(dscores.transpose(0, 2, 3, 1).reshape(-1, 4), drows)
    np.testing.assert_array_equal(loss.predict(scores), scores.argmax(axis=1))


def test_ignored_pixels_count_for_nothing():
    rng = np.random.default_rng(7)
    scores, y = pixel_example(rng)
    loss = LOSSES.create({"type": "softmax_cross_entropy", "ignore_index": 255})
    value, dscores = loss(scores, y)
    kept = y != 255
    log_p = scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))
    picked = np.take_along_axis(log_p, np.where(kept, y, 0)[:, None], axis=1)[:, 0]
    assert value == pytest.approx(-picked[kept].mean())
    assert not dscores.transpose(0, 2, 3, 1)[~kept].any()
    check = gradcheck.check_loss(loss, scores, y)
    assert check.passed, f"rel error {check.error:.2e}"
    everything_ignored, dnone = loss(scores, np.full_like(y, 255))
    assert everything_ignored == 0.0 and not dnone.any()


def test_ignore_index_works_on_rows_too():
    loss = LOSSES.create({"type": "softmax_cross_entropy", "ignore_index": -1})
    scores = np.random.default_rng(8).standard_normal((4, 3))
    value, dscores = loss(scores, np.array([0, -1, 2, -1]))
    kept_value, dkept = LOSSES.create("softmax_cross_entropy")(scores[[0, 2]], np.array([0, 2]))
    assert value == pytest.approx(kept_value)
    np.testing.assert_allclose(dscores[[0, 2]], dkept)
    assert not dscores[[1, 3]].any()


def test_per_pixel_loss_refuses_labels_that_do_not_fit():
    loss = LOSSES.create("softmax_cross_entropy")
    with pytest.raises(ValueError, match=r"labels must have shape \(N, H, W\) = \(2, 3, 5\) to "
                                         r"match scores \(2, 4, 3, 5\), got \(2, 15\)"):
        loss(np.zeros((2, 4, 3, 5)), np.zeros((2, 15), np.int64))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\) or equal ignore_index 9, "
                                         r"got values from 4 to 4"):
        LOSSES.create({"type": "softmax_cross_entropy", "ignore_index": 9})(
            np.zeros((1, 4, 1, 2)), np.array([[[9, 4]]]))
    with pytest.raises(ValueError, match="ignore_index must be an integer or null"):
        LOSSES.create({"type": "softmax_cross_entropy", "ignore_index": 0.5})


def test_per_pixel_loss_agrees_with_torch():
    torch = pytest.importorskip("torch")
    scores, y = pixel_example(np.random.default_rng(9))
    loss = LOSSES.create({"type": "softmax_cross_entropy", "ignore_index": 255})
    value, dscores = loss(scores, y)
    t = torch.tensor(scores, requires_grad=True)
    want = torch.nn.functional.cross_entropy(t, torch.tensor(y), ignore_index=255)
    (grad,) = torch.autograd.grad(want, t)
    assert value == pytest.approx(want.item())
    np.testing.assert_allclose(dscores, grad.numpy(), atol=1e-12)


def test_a_segmentation_model_checks_its_gradients_end_to_end():
    model = Model([{"type": "conv2d", "filters": 3, "kernel": 3, "stride": 2, "pad": 1}, "relu",
                   {"type": "conv2d_transpose", "filters": 3, "kernel": 4, "stride": 2, "pad": 1}],
                  in_shape=(2, 6, 6), loss={"type": "softmax_cross_entropy", "ignore_index": 7},
                  dtype="float64")
    rng = np.random.default_rng(10)
    x, y = rng.standard_normal((2, 2, 6, 6)), rng.integers(0, 3, size=(2, 6, 6))
    y[1, :2] = 7
    checks = gradcheck.check_model(model, x, y)
    assert checks and all(c.passed for c in checks), [(c.param, c.error) for c in checks]


# -- pixel accuracy and mean IoU --------------------------------------------------------

def test_mean_iou_by_hand():
    y = np.array([0, 0, 1, 1, 2, 2])
    predicted = np.array([0, 1, 1, 1, 2, 0])
    # class 0: ∩ 1, ∪ 3; class 1: ∩ 2, ∪ 3; class 2: ∩ 1, ∪ 2; class 3: absent from both
    assert mean_iou(predicted, y, 4) == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert mean_iou(y, y, 4) == 1.0


def test_evaluate_reports_pixel_accuracy_and_mean_iou():
    model = Model([{"type": "conv2d", "filters": 3, "kernel": 1}], in_shape=(3, 2, 2),
                  loss={"type": "softmax_cross_entropy", "ignore_index": -1}, dtype="float64")
    model.params["0.W"][...] = np.eye(3).reshape(3, 3, 1, 1)  # scores = the input
    y = np.array([[[0, 1], [2, -1]]])
    x = np.zeros((1, 3, 2, 2))
    x[0, [0, 1, 1, 2], [0, 0, 1, 1], [0, 1, 0, 1]] = 1  # predicts 0, 1 / 1, 2
    scores = evaluate(model, x, y, "val")
    assert sorted(scores) == sorted(f"val/{m}" for m in reported_metrics("segmentation"))
    assert scores["val/acc"] == pytest.approx(2 / 3)  # the ignored pixel counts for neither
    assert scores["val/miou"] == pytest.approx((1 + 1 / 2 + 0) / 3)


def test_a_segmentation_model_exports_probabilities_over_the_class_axis():
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from dl_cli.export import to_onnx

    model = Model([{"type": "conv2d", "filters": 4, "kernel": 3, "stride": 2, "pad": "same"},
                   "relu", {"type": "upsample", "mode": "bilinear"},
                   {"type": "conv2d_transpose", "filters": 3, "kernel": 3, "pad": 1}],
                  in_shape=(2, 6, 6), dtype="float32")
    x = np.random.default_rng(11).standard_normal((3, 2, 6, 6)).astype(np.float32)
    session = ort.InferenceSession(to_onnx(model).SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    scores, probabilities = session.run(["scores", "probabilities"], {"X": x})
    want = model.forward(x)
    np.testing.assert_allclose(scores, want, atol=1e-5)
    e = np.exp(want - want.max(axis=1, keepdims=True))
    np.testing.assert_allclose(probabilities, e / e.sum(axis=1, keepdims=True), atol=1e-5)
