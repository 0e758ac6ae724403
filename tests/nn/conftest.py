"""Fixtures of the layer tests: a layer built on its own from its config, as a model
would build it, or the message of the ShapeError that building it raises; a layer of
sequences with random parameters everywhere; and the check that a float32 layer
computes in float32 throughout."""

import numpy as np
import pytest

from dl_cli.nn import ShapeError
from dl_cli.registry import LAYERS


def built_layer(spec, in_shape, dtype=np.float64, init="he_normal", seed=0):
    layer = LAYERS.create(spec)
    layer.configure(dtype, init)
    out_shape = layer.build(in_shape, np.random.default_rng(seed))
    return layer, out_shape


@pytest.fixture(scope="session")
def build_layer():
    """``build_layer(spec, in_shape, dtype=np.float64, init="he_normal", seed=0)``: the
    layer ``spec`` names, in ``dtype``, built for samples of ``in_shape`` with parameters
    drawn from ``seed`` by ``init`` (unless the spec names its own); returns
    ``(layer, out_shape)``."""
    return built_layer


@pytest.fixture(scope="session")
def shape_error():
    """``shape_error(spec, in_shape)``: the message of the ShapeError that building the
    layer ``spec`` names for samples of ``in_shape`` raises (the test fails if it builds)."""
    def message(spec, in_shape):
        layer = LAYERS.create(spec)
        with pytest.raises(ShapeError) as error:
            layer.build(in_shape, np.random.default_rng(0))
        return str(error.value)
    return message


@pytest.fixture(scope="session")
def sequence_layer():
    """``sequence_layer(spec, in_shape, dtype=np.float64, seed=0)``: the layer alone, built
    as ``build_layer`` builds it, with ``xavier_normal`` as the init."""
    def build(spec, in_shape, dtype=np.float64, seed=0):
        return built_layer(spec, in_shape, dtype, "xavier_normal", seed)[0]
    return build


@pytest.fixture(scope="session")
def randomize():
    """``randomize(layer, rng, scale=0.5)``: nonzero values in every parameter, biases and
    initial states included, so no term of a gradient hides behind a zero."""
    def fill(layer, rng, scale=0.5):
        for value in layer.params.values():
            value[...] = scale * rng.standard_normal(value.shape)
    return fill


@pytest.fixture(scope="session")
def assert_stays_float32():
    """``assert_stays_float32(layer, x)``: a layer built in float32 returns float32 from
    ``forward(x)``, and from ``backward`` its input gradient and every parameter's."""
    def check(layer, x):
        out = layer.forward(x)
        assert out.dtype == np.float32
        dx = layer.backward(np.ones_like(out))
        assert dx.dtype == np.float32
        for name, grad in layer.grads.items():
            assert grad.dtype == np.float32, name
    return check
