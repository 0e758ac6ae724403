"""Preprocessing, fitted on the training split only: standardize, center, minmax, PCA
(whitened too), per channel on images, in the input's dtype."""

import numpy as np
import pytest

from dl_cli.data import DataError, load
from dl_cli.registry import PREPROCESSORS
from dl_cli.schema import DataConfig


def test_standardize_is_fitted_on_train_only():
    plain = load(DataConfig(dataset="wine"), seed=0, dtype="float64")
    scaled = load(DataConfig(dataset="wine", preprocess=["standardize"]), seed=0, dtype="float64")
    np.testing.assert_allclose(scaled.train.X.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(scaled.train.X.std(axis=0), 1.0)
    assert np.abs(scaled.val.X.mean(axis=0)).max() > 1e-3  # not refitted on val
    mean, std = plain.train.X.mean(axis=0), plain.train.X.std(axis=0)
    np.testing.assert_allclose(scaled.val.X, (plain.val.X - mean) / std)
    np.testing.assert_allclose(scaled.test.X, (plain.test.X - mean) / std)


def fitted(spec, X):
    return PREPROCESSORS.create(spec).fit(X)


def test_center_and_standardize_work_per_channel_on_images():
    rng = np.random.default_rng(0)
    X = rng.normal([1.0, -2.0, 5.0], [1.0, 3.0, 0.5], size=(40, 5, 5, 3)).transpose(0, 3, 1, 2)
    centred = fitted("center", X).transform(X)
    np.testing.assert_allclose(centred.mean(axis=(0, 2, 3)), 0.0, atol=1e-12)
    assert np.abs(centred.mean(axis=0)).max() > 0.01  # per channel, not per pixel
    scaled = fitted("standardize", X).transform(X)
    np.testing.assert_allclose(scaled.std(axis=(0, 2, 3)), 1.0)


def test_minmax_maps_training_range_to_unit_interval_and_constant_features_stay_finite():
    rng = np.random.default_rng(0)
    X = np.c_[rng.normal(size=(30, 3)) * 10, np.full(30, 4.0)]
    out = fitted("minmax", X).transform(X)
    np.testing.assert_allclose(out[:, :3].min(axis=0), 0.0)
    np.testing.assert_allclose(out[:, :3].max(axis=0), 1.0)
    standardized = fitted("standardize", X).transform(X)
    assert np.isfinite(standardized).all() and np.all(standardized[:, 3] == 0)


def test_transforms_keep_the_input_dtype():
    X = np.random.default_rng(0).normal(size=(20, 6)).astype(np.float32)
    for name in PREPROCESSORS.names():
        assert fitted(name, X).transform(X).dtype == np.float32, name


def test_pca_reduces_dimension_with_decorrelated_components_in_decreasing_variance():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 6)) @ rng.normal(size=(6, 6))
    out = fitted({"type": "pca", "components": 3}, X).transform(X)
    assert out.shape == (200, 3)
    cov = out.T @ out / len(out)
    np.testing.assert_allclose(cov - np.diag(np.diag(cov)), 0.0, atol=1e-10)
    assert np.all(np.diff(np.diag(cov)) < 0)
    full = fitted("pca", X).transform(X)  # all components: a rotation keeps distances
    np.testing.assert_allclose(np.linalg.norm(full[0] - full[1]), np.linalg.norm(X[0] - X[1]))
    with pytest.raises(ValueError, match="components"):
        fitted({"type": "pca", "components": 7}, X)


def test_a_preprocessing_step_that_does_not_fit_names_its_key_path():
    with pytest.raises(DataError, match=r"data\.preprocess\.1: 'pca': components must be at "
                                        r"most the 2 input features, got 5"):
        load(DataConfig(dataset="spiral", preprocess=["center", {"type": "pca", "components": 5}]))


def test_pca_whiten_gives_identity_covariance_on_train():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 5)) @ rng.normal(size=(5, 5)) + 3.0
    out = fitted({"type": "pca_whiten", "eps": 1e-10}, X).transform(X)
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-10)
    np.testing.assert_allclose(out.T @ out / len(out), np.eye(5), atol=1e-6)


def test_pca_flattens_images_and_sets_the_input_shape():
    config = DataConfig(dataset={"type": "digits", "images": True},
                        preprocess=["center", {"type": "pca", "components": 10}])
    splits = load(config, seed=0)
    assert splits.in_shape == (10,) and splits.val.X.shape == (len(splits.val), 10)
