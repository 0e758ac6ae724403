"""Splits: disjoint, stratified within one sample, following the seed; a given test set
kept; k-fold indices."""

import numpy as np
import pytest

from dl_cli.data import kfold_indices, load, split_indices
from dl_cli.schema import DataConfig, SplitConfig


def labels(counts):
    return np.repeat(np.arange(len(counts)), counts)


def test_split_is_disjoint_covers_everything_and_defaults_to_60_20_20():
    y = labels([50, 30, 20])
    train, val, test = split_indices(y, 0.2, 0.2, seed=0, stratify=False)
    assert (len(train), len(val), len(test)) == (60, 20, 20)
    together = np.concatenate([train, val, test])
    np.testing.assert_array_equal(np.sort(together), np.arange(100))
    assert all(part.dtype == np.int64 for part in (train, val, test))


def test_stratified_split_keeps_each_class_share_within_one_sample():
    y = labels([97, 41, 13, 5])
    val_fraction, test_fraction = 0.15, 0.25
    train, val, test = split_indices(y, val_fraction, test_fraction, seed=3, stratify=True)
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val, test])), np.arange(len(y)))
    for c, n_c in enumerate(np.bincount(y)):
        assert abs(np.sum(y[val] == c) - val_fraction * n_c) <= 1
        assert abs(np.sum(y[test] == c) - test_fraction * n_c) <= 1
        assert np.sum(y[train] == c) >= 1 and np.sum(y[val] == c) >= 1 and np.sum(y[test] == c) >= 1


def test_stratified_split_of_many_small_classes_keeps_the_overall_fractions():
    y = labels([2] * 10)
    train, val, test = split_indices(y, 0.2, 0.1, seed=0, stratify=True)
    assert (len(train), len(val), len(test)) == (14, 4, 2)
    assert np.bincount(y[val], minlength=10).max() == 1


def test_split_follows_the_seed():
    y = labels([40, 40])
    first, again = split_indices(y, seed=7), split_indices(y, seed=7)
    other = split_indices(y, seed=8)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])


def test_regression_targets_split_without_strata():
    y = np.linspace(0, 1, 10)
    train, val, test = split_indices(y, 0.2, 0.2, seed=0, stratify=True)
    assert (len(train), len(val), len(test)) == (6, 2, 2)


@pytest.mark.parametrize("val,test", [(-0.1, 0.2), (1.2, 0.0), (0.5, 0.5), (0.2, "a")])
def test_bad_fractions_are_refused(val, test):
    with pytest.raises(ValueError, match="split"):
        split_indices(labels([10, 10]), val, test, seed=0)


def test_given_test_set_is_kept_and_val_comes_from_training():
    splits = load(DataConfig(dataset="linear", split=SplitConfig(val=0.25, test=0.5)), seed=0)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (15, 5, 100)
    assert splits.info["test_set"] == "given"


def test_kfold_folds_are_disjoint_and_cover_every_sample():
    y = labels([23, 11, 7])
    folds = kfold_indices(y, k=5, seed=0, stratify=True)
    assert len(folds) == 5
    val_all = np.concatenate([val for _, val in folds])
    np.testing.assert_array_equal(np.sort(val_all), np.arange(len(y)))
    for train, val in folds:
        assert not set(train) & set(val)
        assert len(train) + len(val) == len(y)
        for c, n_c in enumerate(np.bincount(y)):
            assert np.sum(y[val] == c) in (n_c // 5, -(-n_c // 5))
    plain = kfold_indices(y, k=4, seed=0, stratify=False)
    assert sorted(len(val) for _, val in plain) == [10, 10, 10, 11]
    with pytest.raises(ValueError, match="k"):
        kfold_indices(y, k=1, seed=0)
