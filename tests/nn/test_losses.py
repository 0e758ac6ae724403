"""Every registered loss: gradient check, value against a direct formula, stability."""

import numpy as np
import pytest

from dl_cli import gradcheck
from dl_cli.nn import losses  # noqa: F401
from dl_cli.registry import LOSSES


@pytest.mark.parametrize("name", LOSSES.names())
def test_loss_gradient_matches_centered_differences(name):
    loss = LOSSES.create(name)
    scores, y = loss.example(np.random.default_rng(0))
    check = gradcheck.check_loss(loss, scores, y)
    assert check.passed, f"{name}: rel error {check.error:.2e}"


@pytest.mark.parametrize("name", LOSSES.names())
def test_loss_keeps_float32(name):
    loss = LOSSES.create(name)
    scores, y = loss.example(np.random.default_rng(1))
    value, dscores = loss(scores.astype(np.float32), y)
    assert dscores.dtype == np.float32
    assert np.isfinite(value)


def test_softmax_cross_entropy_value_and_stability():
    loss = LOSSES.create("softmax_cross_entropy")
    scores = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    y = np.array([2, 0])
    expected = np.mean([-np.log(np.exp(3) / np.exp([1, 2, 3]).sum()), np.log(3)])
    assert loss(scores, y)[0] == pytest.approx(expected)
    value, dscores = loss(np.array([[1000.0, 0.0], [-1000.0, 0.0]]), np.array([0, 0]))
    assert value == pytest.approx(500.0)
    assert np.all(np.isfinite(dscores))


def test_svm_value_by_hand():
    scores = np.array([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]])
    y = np.array([0, 1, 2])
    # CS231n's worked example: per-sample losses 2.9, 0, 12.9 (cat, car, frog).
    assert LOSSES.create("svm")(scores, y)[0] == pytest.approx((2.9 + 0.0 + 12.9) / 3)


def test_mse_is_half_mean_squared_error():
    scores = np.array([[1.0], [3.0]])
    y = np.array([0.0, 1.0])
    assert LOSSES.create("mse")(scores, y)[0] == pytest.approx(0.5 * (1 + 4) / 2)


def test_binary_cross_entropy_stable_for_large_logits():
    loss = LOSSES.create("binary_cross_entropy")
    value, dz = loss(np.array([[800.0], [-800.0]]), np.array([0, 1]))
    assert value == pytest.approx(800.0)
    np.testing.assert_allclose(dz.ravel(), [0.5, -0.5])
    small, _ = loss(np.array([[0.3]]), np.array([1]))
    assert small == pytest.approx(-np.log(1 / (1 + np.exp(-0.3))))


@pytest.mark.parametrize("name", ["softmax_cross_entropy", "svm"])
@pytest.mark.parametrize("y, message", [
    ([0, -1], r"labels must lie in \[0, 3\), got values from -1 to 0"),  # -1 would be class 2
    ([0, 3], r"labels must lie in \[0, 3\), got values from 0 to 3"),
    ([[0], [1]], r"labels must have shape \(N,\) = \(2,\) to match scores \(2, 3\), got \(2, 1\)"),
])
def test_class_losses_refuse_labels_that_name_no_column(name, y, message):
    with pytest.raises(ValueError, match=message):
        LOSSES.create(name)(np.zeros((2, 3)), np.array(y))
