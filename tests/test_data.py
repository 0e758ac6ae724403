"""Datasets, splits, preprocessing and augmentation (dl_cli.data)."""

import gzip
import json
import math
import pickle
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dl_cli.cli.app import app
from dl_cli.data import DataError, build_augment, kfold_indices, load, split_indices
from dl_cli.draws import SampleDraws, sample_keys
from dl_cli.data.image_files import CIFAR_RECORD, MNIST_FILES
from dl_cli.registry import AUGMENTATIONS, DATASETS, PREPROCESSORS, RegistryError
from dl_cli.schema import DataConfig, SplitConfig


def raw(spec, seed=0):
    return DATASETS.create(spec).load(np.random.default_rng(seed))


# -- built-in datasets ------------------------------------------------------------------

BUILT_IN = [  # spec, X shape, classes (None: regression), X_test shape
    ("spiral", (900, 2), 3, None),
    ({"type": "spiral", "classes": 4, "samples": 50}, (200, 2), 4, None),
    ({"type": "blobs", "classes": 5, "samples": 10, "features": 3}, (50, 3), 5, None),
    ("moons", (200, 2), 2, None),
    ("circles", (200, 2), 2, None),
    ("xor", (200, 2), 2, None),
    ("linear", (20, 200), None, (100, 200)),
    ("polynomial", (100, 4), None, (100, 4)),
    ({"type": "polynomial", "degree": 19}, (100, 20), None, (100, 20)),
    ("digits", (1797, 64), 10, None),
    ({"type": "digits", "images": True}, (1797, 1, 8, 8), 10, None),
    ("iris", (150, 4), 3, None),
    ("wine", (178, 13), 3, None),
    ("breast_cancer", (569, 30), 2, None),
]


@pytest.mark.parametrize("spec,shape,classes,test_shape", BUILT_IN, ids=[str(b[0]) for b in BUILT_IN])
def test_built_in_datasets_load_with_right_shapes_and_types(spec, shape, classes, test_shape):
    data = raw(spec)
    assert data.X.shape == shape and data.X.dtype == np.float64
    assert data.y.shape == shape[:1]
    if classes is None:
        assert data.task == "regression" and data.classes is None and data.y.dtype == np.float64
    else:
        assert data.task == "classification" and data.classes == classes
        assert data.y.dtype == np.int64
        np.testing.assert_array_equal(np.unique(data.y), np.arange(classes))
    if test_shape is None:
        assert data.X_test is None and data.y_test is None
    else:
        assert data.X_test.shape == test_shape and data.y_test.shape == test_shape[:1]
    assert np.isfinite(data.X).all()


def test_every_registered_dataset_is_covered():
    files = {"npz", "csv", "mnist", "cifar10"}  # tested below on files written here
    sequences = {"sine", "adding", "text", "hello"}  # tested in tests/test_sequences.py
    segmentation = {"shapes"}  # tested in tests/test_shapes_autoencoder.py
    covered = {spec if isinstance(spec, str) else spec["type"] for spec, *_ in BUILT_IN}
    assert covered | files | sequences | segmentation == set(DATASETS.names())


@pytest.mark.parametrize("name,loader", [("digits", "load_digits"), ("iris", "load_iris"),
                                         ("wine", "load_wine"), ("breast_cancer", "load_breast_cancer")])
def test_bundled_sets_equal_what_scikit_learn_loads(name, loader):
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, loader)()
    data = raw(name)
    np.testing.assert_array_equal(data.X, bunch.data)
    np.testing.assert_array_equal(data.y, bunch.target)
    assert data.names == [str(n) for n in bunch.target_names]


def test_sklearn_sets_have_class_names():
    assert raw("iris").names == ["setosa", "versicolor", "virginica"]
    np.testing.assert_array_equal(raw({"type": "digits", "images": True}).X.reshape(-1, 64),
                                  raw("digits").X)


def test_synthetic_data_follows_the_seed():
    np.testing.assert_array_equal(raw("spiral", seed=1).X, raw("spiral", seed=1).X)
    assert not np.array_equal(raw("spiral", seed=1).X, raw("spiral", seed=2).X)


def test_spiral_arms_have_linear_radius_and_turn_four_radians():
    data = raw({"type": "spiral", "classes": 3, "samples": 50, "noise": 0.0})
    arm = data.X[data.y == 1]
    np.testing.assert_allclose(np.linalg.norm(arm, axis=1), np.linspace(0, 1, 50), atol=1e-12)
    angle = np.arctan2(arm[-1, 0], arm[-1, 1])  # (r sin t, r cos t) at t = 8
    np.testing.assert_allclose(np.mod(angle, 2 * np.pi), np.mod(8.0, 2 * np.pi), atol=1e-12)


def test_toy_geometry_without_noise():
    circles = raw({"type": "circles", "noise": 0.0, "factor": 0.3})
    radius = np.linalg.norm(circles.X, axis=1)
    np.testing.assert_allclose(radius, np.where(circles.y == 0, 1.0, 0.3))
    xor = raw({"type": "xor", "noise": 0.0})
    np.testing.assert_array_equal(xor.y, (np.sign(xor.X[:, 0]) != np.sign(xor.X[:, 1])).astype(int))
    moons = raw({"type": "moons", "noise": 0.0})
    np.testing.assert_allclose(np.linalg.norm(moons.X[moons.y == 0], axis=1), 1.0)
    np.testing.assert_allclose(np.linalg.norm(moons.X[moons.y == 1] - [1.0, 0.5], axis=1), 1.0)
    blobs = raw({"type": "blobs", "classes": 2, "samples": 200, "spread": 0.5})
    for c in range(2):
        assert np.std(blobs.X[blobs.y == c], axis=0) == pytest.approx([0.5, 0.5], rel=0.2)


def test_polynomial_features_are_powers_over_factorials_and_targets_follow_the_notes():
    data = raw({"type": "polynomial", "degree": 5, "noise": 0.1})
    x = data.X[:, 1]
    for i in range(6):
        np.testing.assert_allclose(data.X[:, i], x ** i / math.factorial(i))
    X = np.concatenate([data.X, data.X_test])[:, :4]
    y = np.concatenate([data.y, data.y_test])
    w = np.linalg.lstsq(X, y, rcond=None)[0]
    np.testing.assert_allclose(w, [5.0, 1.2, -3.4, 5.6], atol=0.1)
    residual = y - X @ w
    assert np.std(residual) == pytest.approx(0.1, rel=0.25)


def test_linear_has_the_notes_sizes_and_its_weights_and_bias():
    data = raw("linear")
    assert data.X.shape == (20, 200) and data.X_test.shape == (100, 200)
    big = raw({"type": "linear", "samples": 4000, "features": 5, "weight": 0.5, "bias": 2.0})
    design = np.c_[big.X, np.ones(len(big.X))]
    w = np.linalg.lstsq(design, big.y, rcond=None)[0]
    np.testing.assert_allclose(w, [0.5] * 5 + [2.0], atol=0.01)


@pytest.mark.parametrize("spec,word", [
    ({"type": "spiral", "classes": 0}, "classes"),
    ({"type": "spiral", "noise": -1}, "noise"),
    ({"type": "blobs", "samples": 2.5}, "samples"),
    ({"type": "circles", "factor": 2}, "factor"),
    ({"type": "polynomial", "degree": -1}, "degree"),
    ({"type": "digits", "images": "yes"}, "images"),
    ({"type": "csv", "path": "x.csv", "header": False}, "label"),
    ({"type": "npz", "path": "x.npz", "task": "ranking"}, "task"),
])
def test_bad_options_name_the_option_and_value(spec, word):
    with pytest.raises(ValueError, match=word):
        DATASETS.create(spec)


def test_unknown_option_is_refused():
    with pytest.raises(RegistryError, match="noise"):
        DATASETS.create({"type": "iris", "noise": 0.1})


def test_import_is_lazy():
    code = "import sys, dl_cli.data; assert 'sklearn' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# -- splits -----------------------------------------------------------------------------

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


# -- preprocessing ----------------------------------------------------------------------

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


# -- load -------------------------------------------------------------------------------

def test_load_returns_typed_splits_and_info():
    splits = load(DataConfig(dataset="iris"), seed=0)
    assert splits.train.X.dtype == np.float32 and splits.train.y.dtype == np.int64
    assert splits.in_shape == (4,) and splits.num_classes == 3 and splits.task == "classification"
    assert splits.info["sizes"] == {"train": 90, "val": 30, "test": 30}
    assert splits.info["class_names"] == ["setosa", "versicolor", "virginica"]
    assert json.loads(json.dumps(splits.info))["dataset"] == "iris"
    regression = load(DataConfig(dataset="polynomial"), seed=0, dtype="float64")
    assert regression.train.y.dtype == np.float64 and regression.num_classes is None
    again = load(DataConfig(dataset="iris"), seed=0)
    np.testing.assert_array_equal(again.val.X, splits.val.X)
    assert not np.array_equal(load(DataConfig(dataset="iris"), seed=1).val.X, splits.val.X)
    with pytest.raises(ValueError, match="dtype"):
        load(DataConfig(dataset="iris"), dtype="int32")


def test_load_refuses_unknown_names():
    with pytest.raises(RegistryError, match="spiral"):
        load(DataConfig(dataset="spirals"))
    with pytest.raises(RegistryError, match="standardize"):
        load(DataConfig(dataset="iris", preprocess=["standardise"]))


# -- npz and csv files ------------------------------------------------------------------

def test_npz_loads_classification_with_its_own_test_set(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "data.npz"
    np.savez(path, X=rng.normal(size=(30, 2, 3)), y=np.arange(30) % 3,
             X_test=rng.normal(size=(6, 2, 3)), y_test=np.arange(6) % 3,
             names=np.array(["a", "b", "c"]))
    data = raw({"type": "npz", "path": str(path)})
    assert data.X.shape == (30, 2, 3) and data.X_test.shape == (6, 2, 3)
    assert data.task == "classification" and data.classes == 3 and data.names == ["a", "b", "c"]
    splits = load(DataConfig(dataset={"type": "npz", "path": str(path)}), seed=0)
    assert len(splits.test) == 6 and splits.in_shape == (2, 3)


def test_npz_float_targets_mean_regression(tmp_path):
    path = tmp_path / "reg.npz"
    np.savez(path, X=np.ones((5, 2)), y=np.linspace(0, 1, 5))
    data = raw({"type": "npz", "path": str(path)})
    assert data.task == "regression" and data.classes is None


def test_npz_with_an_object_array_is_refused(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, X=np.array([[1, "a"], [None, 2]], dtype=object), y=np.array([0, 1]))
    with pytest.raises(DataError, match=r"objects\.npz.*'X'.*pickle"):
        raw({"type": "npz", "path": str(path)})


@pytest.mark.parametrize("arrays,message", [
    ({"X": np.ones((4, 2))}, "no array named y"),
    ({"X": np.ones((4, 2)), "y": np.arange(3)}, "one row per sample"),
    ({"X": np.ones((4, 2)), "y": np.array([0, 1, -1, 0])}, r"y\[2\]: label -1"),
    ({"X": np.array([[1.0, np.nan], [0, 0]]), "y": np.array([0, 1])}, r"X\[0\]: holds NaN"),
    ({"X": np.ones((4, 2)), "y": np.arange(4), "X_test": np.ones((2, 2))}, "come together"),
])
def test_malformed_npz_raises_data_error_naming_the_file(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=rf"bad\.npz: .*{message}"):
        raw({"type": "npz", "path": str(path)})


def test_missing_and_non_npz_files_raise_data_error(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        raw({"type": "npz", "path": str(tmp_path / "absent.npz")})
    path = tmp_path / "text.npz"
    path.write_text("hello")  # NumPy would try it as a pickle, and advise allow_pickle
    with pytest.raises(DataError, match=r"text\.npz: not a \.npz archive \(the zip of \.npy"):
        raw({"type": "npz", "path": str(path)})


def test_damaged_npz_archives_name_the_file_and_the_array(tmp_path):
    good = tmp_path / "good.npz"
    np.savez_compressed(good, X=np.random.rand(30, 2), y=np.arange(30) % 3)
    data = good.read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(DataError, match=r"cut\.npz: not a \.npz archive"):
        raw({"type": "npz", "path": str(cut)})
    flipped = tmp_path / "flipped.npz"
    flipped.write_bytes(data[:60] + bytes([data[60] ^ 0xFF]) + data[61:])
    with pytest.raises(DataError, match=r"flipped\.npz: array 'X' is damaged"):
        raw({"type": "npz", "path": str(flipped)})
    other = tmp_path / "other.npz"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("X.npy", b"not npy data")
        archive.writestr("y.npy", b"nor this")
    with pytest.raises(DataError, match=r"other\.npz: member 'X' is not \.npy data"):
        raw({"type": "npz", "path": str(other)})


def test_values_beyond_float32_are_refused_before_they_become_infinity(tmp_path):
    X = np.random.rand(30, 2)
    X[3, 1] = 1e39
    path = tmp_path / "large.npz"
    np.savez(path, X=X, y=np.arange(30) % 3)
    data = DataConfig(dataset={"type": "npz", "path": str(path)})
    with pytest.raises(DataError, match=r"X holds values beyond float32's largest"):
        load(data)
    assert np.isfinite(load(data, dtype="float64").train.X).all()


def test_a_training_split_of_one_class_is_refused(tmp_path):
    path = tmp_path / "one.npz"
    np.savez(path, X=np.random.rand(30, 2), y=np.zeros(30, dtype=int))
    with pytest.raises(DataError, match=r"the training split holds one class only \(0\)"):
        load(DataConfig(dataset={"type": "npz", "path": str(path)}))


def rare_classes(tmp_path, names=None):
    """Two classes of 100 samples and 60 of one sample each: an npz and its data config."""
    y = np.concatenate([np.repeat([0, 1], 100), np.arange(2, 62)])
    path = tmp_path / "rare.npz"
    extra = {} if names is None else {"names": np.array(names)}
    np.savez(path, X=np.random.default_rng(0).normal(size=(len(y), 2)), y=y, **extra)
    return {"type": "npz", "path": str(path)}


def left_out(splits):
    """The classes of val and test samples that no training sample has."""
    return np.setdiff1d(np.concatenate([splits.val.y, splits.test.y]), splits.train.y)


def test_classes_the_stratified_split_leaves_out_of_training_are_a_warning(tmp_path):
    names = ["cat", "dog"] + [str(c) for c in range(2, 62)]
    splits = load(DataConfig(dataset=rare_classes(tmp_path, names)), seed=0)
    missing = left_out(splits)  # val and test take 52 each: 2 × 20 large, 12 singletons
    assert missing.size == 24
    [message] = splits.warnings
    shown = ", ".join(map(str, missing[:10]))
    assert message.startswith(f"data: 24 of the 62 classes have no sample in the training "
                              f"split: {shown} and 14 more; validation and test hold 24 "
                              f"samples of them, which the model always misclassifies")
    assert message.endswith("The stratified split (data.split: val 0.2, test 0.2) left these "
                            "classes, too small to be in every split, out of training; to train "
                            "on every class, lower data.split.val or data.split.test, or add "
                            "samples of them")
    two = tmp_path / "two"
    two.mkdir()
    y = np.array([0] * 10 + [1] * 10 + [2, 3])  # 30% of each split takes both singletons
    np.savez(two / "named.npz", X=np.ones((len(y), 2)), y=y, names=np.array(["cat", "dog", "eel", "fox"]))
    named = load(DataConfig(dataset={"type": "npz", "path": str(two / "named.npz")},
                            split=SplitConfig(val=0.3, test=0.3)))
    assert named.warnings[0].startswith("data: 2 of the 4 classes have no sample in the training "
                                        "split: 2 (eel), 3 (fox); validation and test hold 2 ")


def test_classes_an_unstratified_split_leaves_out_say_to_stratify(tmp_path):
    data = DataConfig(dataset=rare_classes(tmp_path), split=SplitConfig(val=0.1, test=0.3, stratify=False))
    splits = load(data, seed=0)
    missing = left_out(splits)
    assert missing.size > 10
    [message] = splits.warnings
    assert f"{missing.size} of the 62 classes" in message and f"and {missing.size - 10} more" in message
    assert message.endswith("The split (data.split: val 0.1, test 0.3, stratify: false) left these "
                            "classes out of training; to train on every class, set "
                            "data.split.stratify: true, or lower data.split.val or data.split.test")


def test_no_warning_when_training_has_every_class_or_labels_are_per_step():
    assert load(DataConfig(dataset="iris"), seed=0).warnings == []
    assert load(DataConfig(dataset="polynomial"), seed=0).warnings == []
    text = load(DataConfig(dataset={"type": "text", "steps": 32}, split=SplitConfig(val=0.1, test=0.1)))
    assert left_out(text).size  # a rare character only in val or test: ordinary for text
    assert text.warnings == []


def test_csv_numbers_in_quotes_read_as_numbers(tmp_path):
    path = tmp_path / "quoted.csv"
    path.write_text('"a","b","label"\n"1","2","0"\n"3.5","4","1"\n5,6,2\n')  # as spreadsheets write
    data = raw({"type": "csv", "path": str(path)})
    np.testing.assert_array_equal(data.X, [[1, 2], [3.5, 4], [5, 6]])
    np.testing.assert_array_equal(data.y, [0, 1, 2])


def test_csv_with_header_and_label_column(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("a,label,b\n1.5,0,2\n-1,1,3e-1\n\n0,2,4\n")
    data = raw({"type": "csv", "path": str(path)})
    np.testing.assert_array_equal(data.X, [[1.5, 2.0], [-1.0, 0.3], [0.0, 4.0]])
    np.testing.assert_array_equal(data.y, [0, 1, 2])
    assert data.classes == 3 and data.y.dtype == np.int64


def test_csv_labels_that_are_words_name_classes_in_sorted_order(tmp_path):
    path = tmp_path / "flowers.csv"
    path.write_text("length,width,species\n5.1,3.5,setosa\n7.0,3.2,versicolor\n"
                    "6.3,3.3,virginica\n4.9,3.0, setosa\n6.4,3.2,versicolor\n")
    data = raw({"type": "csv", "path": str(path), "label": "species"})
    np.testing.assert_array_equal(data.y, [0, 1, 2, 0, 1])
    assert (data.classes, data.names) == (3, ["setosa", "versicolor", "virginica"])
    np.testing.assert_array_equal(data.X[:, 1], [3.5, 3.2, 3.3, 3.0, 3.2])
    path.write_text("length,species\n5.1,setosa\n7.0,\n")
    with pytest.raises(DataError, match=r"flowers\.csv: line 3: no label"):
        raw({"type": "csv", "path": str(path), "label": "species"})
    path.write_text("length,species\n5.1,setosa\n7.0,virginica\n")
    with pytest.raises(DataError, match=r"line 2, column 2: 'setosa' is not a number"):
        raw({"type": "csv", "path": str(path), "label": "species", "task": "regression"})


def test_a_csv_of_named_classes_trains_and_keeps_the_names(tmp_path):
    rng = np.random.default_rng(0)
    species = ["virginica", "setosa", "versicolor"]
    rows = [f"{x:.3f},{y:.3f},{species[k]}" for k in range(3)
            for x, y in rng.normal(loc=3 * k, size=(20, 2))]
    (tmp_path / "flowers.csv").write_text("x,y,species\n" + "\n".join(rows) + "\n")
    config = tmp_path / "flowers.yaml"
    config.write_text(f"name: flowers\nruns_dir: {tmp_path / 'runs'}\n"
                      f"data: {{dataset: {{type: csv, path: {tmp_path / 'flowers.csv'}, "
                      f"label: species}}}}\nmodel: {{layers: [{{type: affine, units: 3}}]}}\n"
                      f"train: {{epochs: 2}}\n")
    result = CliRunner().invoke(app, ["train", str(config), "-q"])
    assert result.exit_code == 0, result.output
    (run_dir,) = [p for p in (tmp_path / "runs" / "flowers").iterdir() if p.name != "latest"]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["data"]["class_names"] == ["setosa", "versicolor", "virginica"]


def test_csv_without_header_takes_a_label_index_and_finds_regression(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text("1,2,0.5\n3,4,1.25\n")
    data = raw({"type": "csv", "path": str(path), "header": False, "label": -1})
    np.testing.assert_array_equal(data.X, [[1, 2], [3, 4]])
    assert data.task == "regression"
    np.testing.assert_array_equal(data.y, [0.5, 1.25])


@pytest.mark.parametrize("text,message", [
    ("a,b,label\n1,2,0\n\n3,4\n", "line 4: 2 cells where the table has 3"),
    ("a,b,label\n1,2,0\n3,x,1\n", "line 3, column 2: 'x' is not a number"),
    ("a,b,label\n1,2,0\n3,,1\n", "line 3, column 2: '' is not a number"),
    ("a,b,label\n1,2\n3,4\n", "line 2: 2 cells where the header on line 1 names 3"),
    ("a,b,c\n1,2,0\n", "line 1: no column named 'label'"),
    ("a,b,label\n1,2,0\n\n3,nan,1\n", "line 4: holds NaN"),
    ("a,b,label\n", "no data rows"),
])
def test_malformed_csv_names_the_file_and_line(tmp_path, text, message):
    path = tmp_path / "broken.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=rf"broken\.csv: {message}"):
        raw({"type": "csv", "path": str(path)})


def test_npz_without_samples_or_features_is_refused(tmp_path):
    for name, X, message in [("empty", np.zeros((0, 4)), r"X \(0, 4\) holds no samples"),
                             ("flat", np.zeros((6, 0)), r"X \(6, 0\) has no features"),
                             ("images", np.zeros((6, 1, 0, 3)), r"X \(6, 1, 0, 3\) has no features")]:
        path = tmp_path / f"{name}.npz"
        np.savez(path, X=X, y=np.arange(len(X)) % 2)
        with pytest.raises(DataError, match=rf"{name}\.npz: {message}"):
            raw({"type": "npz", "path": str(path)})


def test_csv_with_only_the_label_column_is_refused(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("label\n0\n1\n")
    with pytest.raises(DataError, match=r"labels\.csv: only the label column"):
        raw({"type": "csv", "path": str(path)})


def test_csv_that_is_not_utf8_is_refused_with_or_without_header(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("f\xe9,label\n1,0\n2,1\n".encode("latin-1"))
    for header, label in ((True, "label"), (False, -1)):
        with pytest.raises(DataError, match=r"latin1\.csv: not UTF-8 text"):
            raw({"type": "csv", "path": str(path), "header": header, "label": label})


def test_csv_with_a_byte_order_mark_finds_its_first_column(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("label,a\n0,1.5\n1,2\n".encode("utf-8-sig"))
    data = raw({"type": "csv", "path": str(path)})
    np.testing.assert_array_equal(data.y, [0, 1])
    np.testing.assert_array_equal(data.X, [[1.5], [2.0]])
    path.write_bytes("0,1.5\n1,2\n".encode("utf-8-sig"))
    data = raw({"type": "csv", "path": str(path), "header": False, "label": 0})
    np.testing.assert_array_equal(data.y, [0, 1])


def test_plus_minus_one_labels_say_how_to_map_them(tmp_path):
    path = tmp_path / "pm1.csv"
    path.write_text("a,label\n1,1\n2,-1\n3,1\n")
    with pytest.raises(DataError, match=r"pm1\.csv: line 3: label -1 is not a class index; class "
                                        r"labels must be whole numbers 0\.\.K-1, got -1, 1: map "
                                        r"them, e.g. -1 → 0, 1 → 1"):
        raw({"type": "csv", "path": str(path), "task": "classification"})


@pytest.mark.parametrize("y,message", [
    (np.array([1, 2, 3, 1, 2, 3]), r"labels 1, 2, 3 leave class 0 without samples; map them to "
                                   r"0\.\.2 \(e\.g\. 1 → 0, 2 → 1, 3 → 2\), or, if they are values "
                                   r"to predict, set the data set's task: regression"),
    (np.array([0, 1, 5, 0, 1, 5]), r"labels 0, 1, 5 leave class 2, 3, 4 without samples.*5 → 2"),
])
def test_class_labels_with_empty_classes_are_refused(tmp_path, y, message):
    npz, csv = tmp_path / "gap.npz", tmp_path / "gap.csv"
    np.savez(npz, X=np.ones((6, 2)), y=y)
    csv.write_text("a,label\n" + "".join(f"1,{label}\n" for label in y))
    for path in (npz, csv):
        with pytest.raises(DataError, match=rf"gap\.(npz|csv): class labels must be 0\.\.K-1, but {message}"):
            raw({"type": path.suffix[1:], "path": str(path)})


def test_npz_names_allow_a_class_without_samples(tmp_path):
    path = tmp_path / "named.npz"
    np.savez(path, X=np.ones((4, 2)), y=np.array([1, 2, 1, 2]), names=np.array(["a", "b", "c"]))
    assert raw({"type": "npz", "path": str(path)}).classes == 3


def test_npz_test_labels_unseen_in_training_are_refused(tmp_path):
    path = tmp_path / "unseen.npz"
    np.savez(path, X=np.ones((6, 2)), y=np.arange(6) % 3, X_test=np.ones((2, 2)), y_test=np.array([2, 4]))
    with pytest.raises(DataError, match=r"unseen\.npz: y_test holds class 4, which no training sample has"):
        raw({"type": "npz", "path": str(path)})


def test_csv_labels_must_be_class_indices_when_classification_is_asked(tmp_path):
    path = tmp_path / "frac.csv"
    path.write_text("a,label\n1,0\n2,0.5\n")
    with pytest.raises(DataError, match=r"frac\.csv: line 3: label 0\.5"):
        raw({"type": "csv", "path": str(path), "task": "classification"})


HUGE_LABELS = [  # file, its contents, where and which label is refused, the labels found
    ("big.csv", "a,label\n1,0\n2,1\n3,1e19\n", r"line 4: label 1e\+19", r"0, 1, 1e\+19"),
    ("big.npz", {"y": np.array([0, 1, 2**63], dtype=np.uint64)}, r"y\[2\]: label 9223372036854775808",
     "0, 1, 9223372036854775808"),
    ("big.npz", {"y": np.array([0, 1, 1], dtype=np.uint64), "X_test": np.ones((2, 2)),
                 "y_test": np.array([1, 2**64 - 1], dtype=np.uint64)},
     r"y_test\[1\]: label 18446744073709551615", "1, 18446744073709551615"),
]


@pytest.mark.parametrize("name,contents,where,found", HUGE_LABELS, ids=["csv", "npz-uint64", "npz-y_test"])
def test_labels_beyond_int64_name_the_file_the_value_and_what_is_allowed(tmp_path, name, contents,
                                                                         where, found):
    path = tmp_path / name
    if name.endswith(".csv"):
        path.write_text(contents)
    else:
        np.savez(path, X=np.ones((3, 2)), **contents)
    message = (rf"{re.escape(name)}: {where} is too large to be a class index; class labels must "
               rf"be whole numbers 0\.\.K-1, got {found}: map them to 0\.\.\d, or, if they are "
               rf"values to predict, set the data set's task: regression")
    with pytest.raises(DataError, match=message):
        raw({"type": path.suffix[1:], "path": str(path)})


def test_train_on_a_label_beyond_int64_exits_2_naming_it(tmp_path):
    path = tmp_path / "floats.npz"
    np.savez(path, X=np.ones((20, 2)), y=np.r_[np.arange(19) % 2, 1e19])
    result = CliRunner().invoke(app, ["train", QUICKSTART, f"data.dataset={{type: npz, path: {path}, "
                                      f"task: classification}}", "train.epochs=1", "-q",
                                      "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert "floats.npz: y[19]: label 1e+19 is too large to be a class index" in " ".join(result.output.split())


def test_a_label_far_beyond_the_samples_lists_the_first_empty_classes(tmp_path):
    path = tmp_path / "far.csv"
    path.write_text("a,label\n1,0\n2,1\n3,1000000000000\n")  # 0..10**12 in full: 8 TB
    with pytest.raises(DataError, match=r"far\.csv: class labels must be 0\.\.K-1, but labels 0, 1, "
                                        r"1000000000000 leave class 2, 3, 4, 5, 6, 7, … without "
                                        r"samples; map them to 0\.\.2 \(e\.g\. 1000000000000 → 2\)"):
        raw({"type": "csv", "path": str(path)})


# -- MNIST IDX and CIFAR-10 binary ------------------------------------------------------

def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def write_mnist(folder, gz, train=6, test=4, size=28):
    rng = np.random.default_rng(0)
    arrays = {
        "train_images": rng.integers(0, 256, size=(train, size, size)),
        "train_labels": np.arange(train) % 10,
        "test_images": rng.integers(0, 256, size=(test, size, size)),
        "test_labels": np.arange(test) % 10,
    }
    for key, array in arrays.items():
        name = MNIST_FILES[key]
        if gz:
            with gzip.open(folder / f"{name}.gz", "wb") as file:
                file.write(idx_bytes(array))
        else:
            (folder / name).write_bytes(idx_bytes(array))
    return arrays


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzipped"])
def test_mnist_reads_idx_files(tmp_path, gz):
    arrays = write_mnist(tmp_path, gz)
    data = raw({"type": "mnist", "path": str(tmp_path)})
    assert data.X.shape == (6, 1, 28, 28) and data.X_test.shape == (4, 1, 28, 28)
    np.testing.assert_allclose(data.X[:, 0], arrays["train_images"] / 255, rtol=1e-6)
    np.testing.assert_array_equal(data.y_test, arrays["test_labels"])
    assert data.classes == 10 and data.X.min() >= 0 and data.X.max() <= 1
    flat = raw({"type": "mnist", "path": str(tmp_path), "flatten": True})
    assert flat.X.shape == (6, 784)


def test_mnist_through_load_keeps_its_test_set(tmp_path):
    write_mnist(tmp_path, gz=True, train=20, test=5)
    splits = load(DataConfig(dataset={"type": "mnist", "path": str(tmp_path)}), seed=0)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (16, 4, 5)
    assert splits.in_shape == (1, 28, 28)


def test_classes_only_the_own_test_set_has_are_a_warning_no_split_fixes(tmp_path):
    write_mnist(tmp_path, gz=False, train=8, test=10)  # training labels 0..7, test 0..9
    splits = load(DataConfig(dataset={"type": "mnist", "path": str(tmp_path)},
                             split=SplitConfig(val=0.0)), seed=0)
    assert splits.warnings == ["data: 2 of the 10 classes have no sample in the training split: "
                               "8, 9; validation and test hold 2 samples of them, which the model "
                               "always misclassifies, as it never learns to predict a class it has "
                               "not seen. Only the data set's own test set has samples of class "
                               "8, 9, which no split setting changes"]
    both = load(DataConfig(dataset={"type": "mnist", "path": str(tmp_path)},
                           split=SplitConfig(val=0.25)), seed=0)  # 2 of 8 singletons to val
    assert both.warnings[0].endswith("no split setting changes. The stratified split (data.split: "
                                     "val 0.25, the data set's own test set) left the others, too "
                                     "small to be in every split, out of training; to train on "
                                     "every class, lower data.split.val, or add samples of them")


def corrupt(folder, key, data: bytes):
    (folder / MNIST_FILES[key]).write_bytes(data)


def test_mnist_wrong_magic_names_file_and_offset(tmp_path):
    write_mnist(tmp_path, gz=False)
    corrupt(tmp_path, "train_images", b"\x01\x02\x08\x03" + bytes(100))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: byte offset 0: magic number"):
        raw({"type": "mnist", "path": str(tmp_path)})


def test_mnist_wrong_dimension_count_names_offset_3(tmp_path):
    write_mnist(tmp_path, gz=False)
    corrupt(tmp_path, "test_labels", idx_bytes(np.zeros((4, 2))))
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte: byte offset 3: 2 dimensions"):
        raw({"type": "mnist", "path": str(tmp_path)})


def test_mnist_size_not_matching_header_names_the_data_offset(tmp_path):
    write_mnist(tmp_path, gz=False)
    good = idx_bytes(np.zeros((6, 28, 28)))
    corrupt(tmp_path, "train_images", good[:-10])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: .*byte offset 16, but the file has 4694"):
        raw({"type": "mnist", "path": str(tmp_path)})


def test_mnist_label_out_of_range_names_its_byte_offset(tmp_path):
    write_mnist(tmp_path, gz=True)
    with gzip.open(tmp_path / f"{MNIST_FILES['train_labels']}.gz", "wb") as file:
        file.write(idx_bytes(np.array([1, 2, 3, 12, 0, 0])))
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz: byte offset 11: label 12"):
        raw({"type": "mnist", "path": str(tmp_path)})


def test_mnist_counts_must_agree_and_files_must_exist(tmp_path):
    write_mnist(tmp_path, gz=False)
    corrupt(tmp_path, "test_labels", idx_bytes(np.zeros(3)))
    with pytest.raises(DataError, match=r"4 images, but .*t10k-labels-idx1-ubyte has 3 labels"):
        raw({"type": "mnist", "path": str(tmp_path)})
    (tmp_path / MNIST_FILES["test_labels"]).unlink()
    with pytest.raises(DataError, match="missing t10k-labels-idx1-ubyte"):
        raw({"type": "mnist", "path": str(tmp_path)})


def cifar_records(labels, rng):
    images = rng.integers(0, 256, size=(len(labels), 3 * 32 * 32), dtype=np.uint8)
    return np.c_[np.asarray(labels, dtype=np.uint8), images].tobytes()


def write_cifar(folder, per_batch=2, test=3):
    rng = np.random.default_rng(0)
    for i in range(1, 6):
        (folder / f"data_batch_{i}.bin").write_bytes(cifar_records(np.arange(per_batch) + i, rng))
    (folder / "test_batch.bin").write_bytes(cifar_records(np.arange(test), rng))
    (folder / "batches.meta.txt").write_text("\n".join(f"class{i}" for i in range(10)) + "\n\n")


def test_cifar10_reads_binary_batches(tmp_path):
    write_cifar(tmp_path)
    data = raw({"type": "cifar10", "path": str(tmp_path)})
    assert data.X.shape == (10, 3, 32, 32) and data.X_test.shape == (3, 3, 32, 32)
    np.testing.assert_array_equal(data.y, [1, 2, 2, 3, 3, 4, 4, 5, 5, 6])
    first = np.frombuffer((tmp_path / "data_batch_1.bin").read_bytes()[:CIFAR_RECORD], np.uint8)
    np.testing.assert_allclose(data.X[0, 0] * 255, first[1:1025].reshape(32, 32), atol=1e-4)  # red plane
    np.testing.assert_allclose(data.X[0, 2] * 255, first[2049:].reshape(32, 32), atol=1e-4)  # blue
    assert data.names == [f"class{i}" for i in range(10)]


def test_cifar10_class_names_that_are_not_text_are_named(tmp_path):
    write_cifar(tmp_path)
    (tmp_path / "batches.meta.txt").write_bytes("caf\xe9\n".encode("latin-1") * 10)
    with pytest.raises(DataError, match=r"batches\.meta\.txt: not UTF-8 text"):
        raw({"type": "cifar10", "path": str(tmp_path)})


@pytest.mark.parametrize("flatten", [False, True])
def test_an_idx_file_without_images_is_refused(tmp_path, flatten):
    write_mnist(tmp_path, gz=False, train=0)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: holds no images"):
        load(DataConfig(dataset={"type": "mnist", "path": str(tmp_path), "flatten": flatten}))


def test_cifar10_length_not_a_multiple_of_the_record(tmp_path):
    write_cifar(tmp_path)
    path = tmp_path / "data_batch_3.bin"
    path.write_bytes(path.read_bytes() + b"\x00" * 5)
    with pytest.raises(DataError, match=r"data_batch_3\.bin: length 6151 .*3073-byte record.*offset 6146"):
        raw({"type": "cifar10", "path": str(tmp_path)})


def test_cifar10_label_out_of_range_names_the_record_offset(tmp_path):
    write_cifar(tmp_path)
    (tmp_path / "test_batch.bin").write_bytes(cifar_records([3, 10, 1], np.random.default_rng(1)))
    with pytest.raises(DataError, match=r"test_batch\.bin: byte offset 3073: label 10"):
        raw({"type": "cifar10", "path": str(tmp_path)})


def test_cifar10_python_version_is_refused_not_unpickled(tmp_path):
    write_cifar(tmp_path)
    payload = pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1]}, protocol=2)
    (tmp_path / "data_batch_2.bin").write_bytes(payload)
    with pytest.raises(DataError, match=r"data_batch_2\.bin: a Python pickle.*binary version"):
        raw({"type": "cifar10", "path": str(tmp_path)})
    python_version = tmp_path / "python"
    python_version.mkdir()
    (python_version / "data_batch_1").write_bytes(payload)
    with pytest.raises(DataError, match=r"data_batch_1: a pickled batch.*binary version"):
        raw({"type": "cifar10", "path": str(python_version)})


# -- augmentation -----------------------------------------------------------------------

def images(n=6, shape=(2, 5, 7), seed=0):
    return np.random.default_rng(seed).normal(size=(n, *shape)).astype(np.float32)


def draws_for(X, stream=0):
    """Per-sample draws for the batch X: samples 0..N-1 of epoch 0."""
    return SampleDraws(stream, sample_keys(0, np.arange(len(X))))


@pytest.mark.parametrize("name", AUGMENTATIONS.names())
def test_augmentations_keep_shape_and_dtype_and_leave_the_input_alone(name):
    X = images()
    before = X.copy()
    out = AUGMENTATIONS.create(name)(X, draws_for(X))
    assert out.shape == X.shape and out.dtype == X.dtype
    np.testing.assert_array_equal(X, before)


def test_flip_mirrors_left_right_with_its_probability():
    X = images()
    np.testing.assert_array_equal(AUGMENTATIONS.create({"type": "flip", "probability": 1.0})(X, draws_for(X)),
                                  X[..., ::-1])
    np.testing.assert_array_equal(AUGMENTATIONS.create({"type": "flip", "probability": 0.0})(X, draws_for(X)), X)
    out = AUGMENTATIONS.create("flip")(images(n=200), draws_for(images(n=200)))
    flipped = np.all(out == images(n=200)[..., ::-1], axis=(1, 2, 3))
    assert 60 < flipped.sum() < 140


def test_crop_with_pad_0_is_identity():
    X = images()
    np.testing.assert_array_equal(AUGMENTATIONS.create({"type": "crop", "pad": 0})(X, draws_for(X)), X)


def shifted(image, dy, dx):
    """image (C, H, W) moved down by dy and right by dx, zero fill."""
    C, H, W = image.shape
    out = np.zeros_like(image)
    out[:, max(dy, 0):H + min(dy, 0), max(dx, 0):W + min(dx, 0)] = \
        image[:, max(-dy, 0):H - max(dy, 0), max(-dx, 0):W - max(dx, 0)]
    return out


@pytest.mark.parametrize("spec,reach", [({"type": "crop", "pad": 2}, 2), ({"type": "translate", "max_shift": 1}, 1)])
def test_crop_and_translate_shift_each_image_with_zero_fill(spec, reach):
    X = images(n=40)
    out = AUGMENTATIONS.create(spec)(X, draws_for(X))
    moves = set()
    for image, result in zip(X, out):
        matches = [(dy, dx) for dy in range(-reach, reach + 1) for dx in range(-reach, reach + 1)
                   if np.array_equal(result, shifted(image, dy, dx))]
        assert matches, "output is not a shifted copy of its input"
        moves.add(matches[0])
    assert len(moves) > 3  # the offsets vary per image


def test_crop_reflect_padding_keeps_values_from_the_image():
    X = images(n=10)
    out = AUGMENTATIONS.create({"type": "crop", "pad": 2, "mode": "reflect"})(X, draws_for(X))
    assert np.all(out != 0)


def test_noise_changes_values_by_its_std():
    X = np.zeros((500, 20), dtype=np.float64)
    out = AUGMENTATIONS.create({"type": "noise", "std": 0.3})(X, draws_for(X))
    assert out.std() == pytest.approx(0.3, rel=0.02)


def test_build_augment_checks_the_data_shape():
    assert build_augment([], (2,)) is None
    for name in ("flip", "crop", "translate"):
        with pytest.raises(DataError, match=rf"data\.augment\.1 \({name}\): needs image samples .*\(2,\)"):
            build_augment(["noise", name], (2,))
    with pytest.raises(DataError, match=r"data\.augment\.0 \(translate\): max_shift .* got 5"):
        build_augment([{"type": "translate", "max_shift": 5}], (1, 5, 5))
    assert build_augment(["noise"], (2,)) is not None


def test_build_augment_refuses_every_step_on_token_ids():
    with pytest.raises(DataError, match=r"data\.augment\.0 \(noise\) .*integer token ids"):
        build_augment(["noise"], (32,), np.int64)
    assert build_augment(["noise"], (32,), np.float32) is not None


def test_build_augment_applies_steps_in_order():
    X = images()
    augment = build_augment([{"type": "flip", "probability": 1.0}, {"type": "noise", "std": 0.0}], X.shape[1:])
    np.testing.assert_array_equal(augment(X, draws_for(X)), X[..., ::-1])


# -- bad data settings end in exit 2 with a message, never a traceback ----------------

QUICKSTART = str(Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml")
DIGITS_CNN = str(Path(__file__).resolve().parents[1] / "configs" / "digits_cnn.yaml")


@pytest.mark.parametrize("config,override,message", [
    (QUICKSTART, "data.augment=[flip]", r"data\.augment\.0 \(flip\): needs image samples"),
    (DIGITS_CNN, "data.augment=[{type: translate, max_shift: 8}]",
     r"data\.augment\.0 \(translate\): max_shift must be smaller than the image \(8×8\), got 8"),
    (DIGITS_CNN, "data.augment=[{type: crop, pad: 8}]",
     r"data\.augment\.0 \(crop\): pad must be smaller than the image \(8×8\), got 8"),
    (QUICKSTART, "data.preprocess=[{type: pca, components: 5}]",
     r"data\.preprocess\.0: 'pca': components must be at most the 2 input features, got 5"),
])
def test_train_refuses_data_steps_that_do_not_fit_with_exit_2(tmp_path, config, override, message):
    result = CliRunner().invoke(app, ["train", config, override, "train.epochs=1", "-q",
                                      "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert re.search(message, " ".join(result.output.split())), result.output


def test_train_on_plus_minus_one_labels_says_how_to_map_them(tmp_path):
    path = tmp_path / "pm1.csv"
    path.write_text("a,b,label\n" + "".join(f"{i},{i % 3},{1 - 2 * (i % 2)}\n" for i in range(20)))
    result = CliRunner().invoke(app, ["train", QUICKSTART, f"data.dataset={{type: csv, path: {path}}}",
                                      "train.epochs=1", "-q", "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert "whole numbers -1, 1, read as regression" in " ".join(result.output.split())
    assert "-1 → 0" in result.output
