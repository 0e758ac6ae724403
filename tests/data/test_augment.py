"""Augmentation of training batches: flip, crop, translate, noise; shapes and dtypes
kept, the input left alone, the steps checked against the data and applied in order."""

import numpy as np
import pytest

from dl_cli.data import DataError, build_augment
from dl_cli.draws import SampleDraws, sample_keys
from dl_cli.registry import AUGMENTATIONS


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
