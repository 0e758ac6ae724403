"""Segmentation end to end: a per-pixel model's gradients, pixel accuracy and mean IoU,
and its export with probabilities over the class axis."""

import numpy as np
import pytest

from dl_cli import gradcheck
from dl_cli.metrics import evaluate, mean_iou, reported_metrics
from dl_cli.nn import Model


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
