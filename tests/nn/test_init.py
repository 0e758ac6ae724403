"""Initializer statistics on large matrices, fans for affine and conv weights."""

import math

import numpy as np
import pytest

from dl_cli.nn import Model
from dl_cli.nn.init import fans
from dl_cli.registry import INITIALIZERS

AFFINE = (1000, 500)
CONV = (64, 32, 3, 3)  # fan_in 288, fan_out 576


def draw(name, shape, **options):
    return INITIALIZERS.create({"type": name, **options})(shape, np.random.default_rng(0))


def test_fans_of_affine_and_conv_weights():
    assert fans(AFFINE) == (1000, 500)
    assert fans(CONV) == (32 * 9, 64 * 9)


@pytest.mark.parametrize("shape", [AFFINE, CONV])
@pytest.mark.parametrize("name,expected_std", [
    ("he_normal", lambda fi, fo: math.sqrt(2 / fi)),
    ("he_uniform", lambda fi, fo: math.sqrt(2 / fi)),
    ("xavier_normal", lambda fi, fo: math.sqrt(1 / fi)),
    ("xavier_uniform", lambda fi, fo: math.sqrt(2 / (fi + fo))),
])
def test_scaled_initializers_have_their_std_within_3_percent(name, expected_std, shape):
    w = draw(name, shape)
    target = expected_std(*fans(shape))
    assert abs(w.std() - target) / target < 0.03
    assert abs(w.mean()) < 0.05 * target


def test_uniform_bounds_for_he_and_xavier():
    fan_in, fan_out = fans(AFFINE)
    assert np.abs(draw("he_uniform", AFFINE)).max() <= math.sqrt(6 / fan_in)
    assert np.abs(draw("xavier_uniform", AFFINE)).max() <= math.sqrt(6 / (fan_in + fan_out))


def test_small_random_and_uniform_and_constant():
    assert abs(draw("normal", AFFINE).std() - 0.01) < 0.0003
    assert abs(draw("normal", AFFINE, std=0.1).std() - 0.1) < 0.003
    u = draw("uniform", AFFINE, epsilon=0.2)
    assert u.min() >= -0.2 and u.max() <= 0.2 and u.std() == pytest.approx(0.2 / math.sqrt(3), rel=0.03)
    assert np.all(draw("constant", (3, 3), value=0.5) == 0.5)
    assert not draw("zeros", (3, 3)).any()


def test_bad_initializer_options_are_rejected():
    with pytest.raises(ValueError, match="std"):
        INITIALIZERS.create({"type": "normal", "std": -1})


def test_model_default_init_and_per_layer_override_and_zero_biases():
    model = Model([{"type": "affine", "units": 400},
                   {"type": "affine", "units": 400, "init": "zeros"}],
                  in_shape=(800,), init="he_normal", dtype="float64")
    assert model.params["0.W"].std() == pytest.approx(math.sqrt(2 / 800), rel=0.03)
    assert not model.params["1.W"].any()
    assert not model.params["0.b"].any() and not model.params["1.b"].any()


def test_zero_init_never_breaks_symmetry():
    """Every hidden unit of a zero-initialized layer gets the same gradient forever."""
    rng = np.random.default_rng(0)
    model = Model([{"type": "affine", "units": 5}, "tanh", {"type": "affine", "units": 3}],
                  in_shape=(4,), init="zeros", dtype="float64")
    x, y = rng.standard_normal((16, 4)), rng.integers(0, 3, 16)
    for _ in range(20):
        _, grads = model.loss(x, y)
        for name, g in grads.items():
            model.params[name] -= 0.5 * g
    w = model.params["0.W"]
    assert np.allclose(w, w[:, :1])  # all hidden units identical
