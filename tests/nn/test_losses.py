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
