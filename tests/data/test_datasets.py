"""The built-in data sets: shapes and types, the bundled scikit-learn sets, the seed,
the geometry and formulas their docstrings state, and their options."""

import math
import subprocess
import sys

import numpy as np
import pytest

from dl_cli.registry import DATASETS, RegistryError

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
def test_built_in_datasets_load_with_right_shapes_and_types(spec, shape, classes, test_shape, raw):
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
def test_bundled_sets_equal_what_scikit_learn_loads(name, loader, raw):
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, loader)()
    data = raw(name)
    np.testing.assert_array_equal(data.X, bunch.data)
    np.testing.assert_array_equal(data.y, bunch.target)
    assert data.names == [str(n) for n in bunch.target_names]


def test_sklearn_sets_have_class_names(raw):
    assert raw("iris").names == ["setosa", "versicolor", "virginica"]
    np.testing.assert_array_equal(raw({"type": "digits", "images": True}).X.reshape(-1, 64),
                                  raw("digits").X)


def test_synthetic_data_follows_the_seed(raw):
    np.testing.assert_array_equal(raw("spiral", seed=1).X, raw("spiral", seed=1).X)
    assert not np.array_equal(raw("spiral", seed=1).X, raw("spiral", seed=2).X)


def test_spiral_arms_have_linear_radius_and_turn_four_radians(raw):
    data = raw({"type": "spiral", "classes": 3, "samples": 50, "noise": 0.0})
    arm = data.X[data.y == 1]
    np.testing.assert_allclose(np.linalg.norm(arm, axis=1), np.linspace(0, 1, 50), atol=1e-12)
    angle = np.arctan2(arm[-1, 0], arm[-1, 1])  # (r sin t, r cos t) at t = 8
    np.testing.assert_allclose(np.mod(angle, 2 * np.pi), np.mod(8.0, 2 * np.pi), atol=1e-12)


def test_toy_geometry_without_noise(raw):
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


def test_polynomial_features_are_powers_over_factorials_and_targets_follow_the_notes(raw):
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


def test_linear_has_the_notes_sizes_and_its_weights_and_bias(raw):
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
