"""Per-sample draws (dl_cli.draws): a sample's random numbers do not depend on its batch."""

import numpy as np
import pytest

from dl_cli.data import build_augment
from dl_cli.draws import SampleDraws, sample_keys, stream_of
from dl_cli.nn.model import Model

KEYS = sample_keys(4, np.arange(1000))


def test_a_part_of_a_batch_draws_the_rows_of_the_whole_batch():
    whole = SampleDraws(7, KEYS)
    part = SampleDraws(7, KEYS[[5, 900, 17]])
    for draw in ("uniform", "normal"):
        np.testing.assert_array_equal(getattr(part, draw)((3, 2)),
                                      getattr(whole, draw)((3, 2))[[5, 900, 17]])
    np.testing.assert_array_equal(part.integers(5, (2,)), whole.integers(5, (2,))[[5, 900, 17]])


def test_each_call_epoch_and_stream_draws_new_numbers():
    draws = SampleDraws(7, KEYS)
    first, second = draws.uniform((8,)), draws.uniform((8,))
    assert not np.any(first == second)
    assert not np.any(SampleDraws(7, sample_keys(5, np.arange(1000))).uniform((8,)) == first)
    assert not np.any(SampleDraws(8, KEYS).uniform((8,)) == first)
    assert stream_of(0, 3) != stream_of(1, 3) != stream_of(0, 4)


def test_uniform_normal_and_integers_have_their_distributions():
    draws = SampleDraws(1, sample_keys(0, np.arange(20_000)))
    u = draws.uniform((5,))
    assert u.shape == (20_000, 5) and 0 <= u.min() and u.max() < 1
    assert u.mean() == pytest.approx(0.5, abs=0.005) and u.var() == pytest.approx(1 / 12, rel=0.02)
    assert abs(np.corrcoef(u[:, 0], u[:, 1])[0, 1]) < 0.02
    z = draws.normal((5,))
    assert z.mean() == pytest.approx(0.0, abs=0.01) and z.std() == pytest.approx(1.0, abs=0.01)
    k = draws.integers(3, (5,))
    assert set(np.unique(k)) == {0, 1, 2} and np.bincount(k.ravel()).min() > 0.32 * k.size


def test_dropout_masks_a_sample_alike_in_a_batch_and_in_a_part_of_it():
    model = Model([{"type": "affine", "units": 30}, {"type": "dropout", "drop_rate": 0.5}],
                  (4,), loss="mse", dtype="float64", seed=3)
    X = np.random.default_rng(0).standard_normal((12, 4))
    keys = sample_keys(2, np.arange(100, 112))
    whole = model.forward(X, train=True, keys=keys)
    part = model.forward(X[3:7], train=True, keys=keys[3:7])
    np.testing.assert_array_equal(part, whole[3:7])
    assert 0.3 < np.mean(whole == 0) < 0.7
    later_epoch = model.forward(X, train=True, keys=sample_keys(3, np.arange(100, 112)))
    assert not np.array_equal(later_epoch == 0, whole == 0)


def test_augmentation_changes_a_sample_alike_in_a_batch_and_in_a_part_of_it():
    augment = build_augment(["flip", {"type": "crop", "pad": 1}, {"type": "noise", "std": 0.1}],
                            (1, 5, 5))
    X = np.random.default_rng(0).standard_normal((10, 1, 5, 5))
    keys = sample_keys(0, np.arange(10))
    whole = augment(X, SampleDraws(11, keys))
    np.testing.assert_array_equal(augment(X[[8, 2]], SampleDraws(11, keys[[8, 2]])), whole[[8, 2]])
    assert not np.array_equal(whole, X)


def test_the_loss_of_a_batch_is_the_size_weighted_sum_of_its_parts_with_dropout():
    """Map-reduce in one process: the mean loss and its gradient over a batch equal the
    sum over its parts weighted by part size, dropout included (no batchnorm)."""
    model = Model([{"type": "affine", "units": 16}, "relu", {"type": "dropout", "drop_rate": 0.3},
                   {"type": "affine", "units": 3}], (5,), dtype="float64", seed=1)
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((20, 5)), rng.integers(0, 3, 20)
    keys = sample_keys(0, np.arange(20))
    loss, grads = model.loss(X, y, keys=keys)
    grads = {k: v.copy() for k, v in grads.items()}
    total, summed = 0.0, {k: 0.0 for k in grads}
    for part in (np.arange(0, 7), np.arange(7, 20)):
        part_loss, part_grads = model.loss(X[part], y[part], keys=keys[part])
        total += len(part) / 20 * part_loss
        for k in summed:
            summed[k] = summed[k] + len(part) / 20 * part_grads[k]
    assert total == pytest.approx(loss, rel=1e-12)
    for k in grads:
        np.testing.assert_allclose(summed[k], grads[k], rtol=1e-10, atol=1e-14)
