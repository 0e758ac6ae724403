"""k-fold splits: the folds share out the train and val samples, each fitting its
preprocessing on its own training part."""

import dataclasses

import numpy as np
import pytest
import yaml

from dl_cli.config import load_config
from dl_cli.data import load
from dl_cli.crossval import fold_splits


def test_kfold_preprocessing_that_does_not_fit_names_its_key_path(tmp_path, tiny_config):
    from dl_cli.data import DataError

    (tmp_path / "c.yaml").write_text(yaml.safe_dump(tiny_config()))
    cfg = load_config(tmp_path / "c.yaml", ["data.preprocess=[center, {type: pca, components: 5}]"])
    with pytest.raises(DataError, match=r"^data\.preprocess\.1: "):
        fold_splits(cfg, 2, 0)


def test_folds_partition_train_and_val_and_fit_preprocessing_on_the_fold(tmp_path, tiny_config):
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(tiny_config()))
    cfg = load_config(tmp_path / "c.yaml")
    bare = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, preprocess=[]))
    normal = load(bare.data, cfg.seed)
    pooled = np.concatenate([normal.train.X, normal.val.X])
    validated = []
    for i in range(3):
        raw, scaled = fold_splits(bare, 3, i), fold_splits(cfg, 3, i)
        assert len(raw.train) + len(raw.val) == len(pooled)
        assert np.array_equal(rows_sorted(np.concatenate([raw.train.X, raw.val.X])), rows_sorted(pooled))
        assert np.array_equal(raw.test.X, normal.test.X)  # the test split is set aside as always
        validated.append(raw.val.X)
        # standardize is fitted on the fold's training part, applied to its validation part
        mean, std = raw.train.X.mean(axis=0), raw.train.X.std(axis=0)
        np.testing.assert_allclose(scaled.train.X.mean(axis=0), 0, atol=1e-5)
        np.testing.assert_allclose(scaled.val.X, (raw.val.X - mean) / std, atol=1e-5)
    # the validation folds are disjoint and cover the pooled train + val samples
    assert np.array_equal(rows_sorted(np.concatenate(validated)), rows_sorted(pooled))


def rows_sorted(X: np.ndarray) -> np.ndarray:
    return X[np.lexsort(X.T[::-1])]
