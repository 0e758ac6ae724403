"""Max and average pooling against their reference loops and numerical gradients."""

import numpy as np
import pytest

from dl_cli import gradcheck
from dl_cli.nn import reference
from dl_cli.nn.model import Model
from dl_cli.registry import LAYERS

# (input shape; pool; stride): tiling windows, overlapping ones, ones with gaps, and
# strides that leave the last rows or columns to no window.
POOL_CASES = [
    ((2, 4, 6), 2, None),
    ((2, 6, 9), 3, None),
    ((2, 4, 5), [2, 3], [2, 1]),
    ((2, 7, 5), 3, 2),
    ((1, 5, 6), 3, 1),
    ((1, 8, 5), 2, 3),
    ((1, 5, 4), 2, None),
    ((1, 7, 6), 3, 2),
]


def pool_spec(kind, pool, stride):
    return {"type": kind, "pool": pool, "stride": stride}


# -- outputs ------------------------------------------------------------------------

@pytest.mark.parametrize("kind,reduce", [("maxpool", np.max), ("avgpool", np.mean)])
@pytest.mark.parametrize("in_shape,pool,stride", POOL_CASES)
def test_pool_matches_the_reference(kind, reduce, in_shape, pool, stride, build_layer):
    layer, out_shape = build_layer(pool_spec(kind, pool, stride), in_shape)
    x = np.random.default_rng(3).standard_normal((2, *in_shape))
    out = layer.forward(x)
    assert out.shape == (2, *out_shape)
    np.testing.assert_allclose(out, reference.pool_forward(x, pool, stride, reduce),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("train,seed", [(True, 4), (False, 12)], ids=["train", "eval"])
@pytest.mark.parametrize("in_shape,pool,stride", POOL_CASES)
def test_maxpool_gradient_goes_to_the_first_maximum_on_ties(train, seed, in_shape, pool, stride,
                                                           build_layer):
    layer, _ = build_layer(pool_spec("maxpool", pool, stride), in_shape)
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2, size=(2, *in_shape)).astype(np.float64)  # ties in most windows
    out = layer.forward(x, train=train)
    dout = rng.standard_normal(out.shape)
    np.testing.assert_allclose(layer.backward(dout), reference.maxpool_backward(x, dout, pool, stride),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("pool,stride", [(2, None), (3, 2)])
def test_maxpool_routes_to_exactly_one_position_per_window(pool, stride, build_layer):
    layer, _ = build_layer(pool_spec("maxpool", pool, stride),
                           (1, 7, 7) if stride else (1, 6, 6))
    x = np.zeros((1, 1, 7, 7) if stride else (1, 1, 6, 6))
    out = layer.forward(x)
    dx = layer.backward(np.ones_like(out))
    assert dx.sum() == out.size
    if stride is None:
        assert np.count_nonzero(dx) == out.size
        np.testing.assert_array_equal(dx[0, 0, ::2, ::2], 1.0)  # the top-left of each window


@pytest.mark.parametrize("pool,stride,size", [(2, None, 8), (3, 2, 9), (2, 3, 8)])
def test_avgpool_spreads_the_gradient_equally(pool, stride, size, build_layer):
    layer, _ = build_layer(pool_spec("avgpool", pool, stride), (1, size, size))
    x = np.random.default_rng(5).standard_normal((1, 1, size, size))
    dout = np.ones_like(layer.forward(x))
    dx = layer.backward(dout)
    expected = np.zeros_like(x)
    for i, j, rows, cols in reference.windows(x.shape, pool, stride):
        expected[0, 0, rows, cols] += dout[0, 0, i, j] / pool ** 2
    np.testing.assert_allclose(dx, expected, rtol=1e-12)


@pytest.mark.parametrize("in_shape,pool,stride", POOL_CASES)
def test_avgpool_backward_matches_the_reference(in_shape, pool, stride, build_layer):
    layer, _ = build_layer(pool_spec("avgpool", pool, stride), in_shape)
    rng = np.random.default_rng(13)
    x = rng.standard_normal((2, *in_shape))
    dout = rng.standard_normal(layer.forward(x).shape)
    np.testing.assert_allclose(layer.backward(dout),
                               reference.avgpool_backward(x.shape, dout, pool, stride),
                               rtol=1e-12, atol=1e-12)


# -- gradients ----------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["maxpool", "avgpool"])
@pytest.mark.parametrize("in_shape,pool,stride", POOL_CASES)
def test_pool_gradients_match_numerical(kind, in_shape, pool, stride, build_layer,
                                        assert_gradients_match):
    # Max pooling has a kink where two window entries are equal; normal draws are
    # farther apart than ε = 1e-6, so the strict tolerance holds.
    layer, _ = build_layer(pool_spec(kind, pool, stride), in_shape)
    assert_gradients_match(layer, np.random.default_rng(9).standard_normal((2, *in_shape)))


@pytest.mark.parametrize("kind", ["maxpool", "avgpool"])
@pytest.mark.parametrize("in_shape,pool,stride", POOL_CASES)
def test_pool_eval_backward_after_a_training_batch_of_the_same_size(kind, in_shape, pool, stride,
                                                                   build_layer):
    # Regression: maxpool's eval forward left the training batch's masks in the cache,
    # and backward routed the new batch's gradient to the old batch's maxima.
    layer, _ = build_layer(pool_spec(kind, pool, stride), in_shape)
    rng = np.random.default_rng(11)
    layer.forward(rng.standard_normal((2, *in_shape)), train=True)
    x = rng.standard_normal((2, *in_shape))
    out = layer.forward(x, train=False)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    numeric = gradcheck.numeric_grad(lambda: float(np.sum(layer.forward(x, train=False) * dout)),
                                     x, np.arange(x.size))
    assert gradcheck.rel_error(dx, numeric) < gradcheck.TOLERANCE
    if kind == "maxpool":
        np.testing.assert_allclose(dx, reference.maxpool_backward(x, dout, pool, stride),
                                   rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("spec,in_shape", [
    (pool_spec("maxpool", 2, None), (2, 4, 6)),
    (pool_spec("maxpool", 3, 2), (2, 5, 7)),
    (pool_spec("avgpool", 2, None), (2, 4, 6)),
    (pool_spec("avgpool", 3, 2), (2, 5, 7)),
])
def test_float32_stays_float32(spec, in_shape, build_layer, assert_stays_float32):
    layer, _ = build_layer(spec, in_shape, dtype=np.float32)
    x = np.random.default_rng(10).standard_normal((2, *in_shape)).astype(np.float32)
    assert_stays_float32(layer, x)


# -- shape errors, bad options, counts ----------------------------------------------

@pytest.mark.parametrize("spec,in_shape,message", [
    (pool_spec("maxpool", 3, None), (1, 2, 6), "pool height 3 is larger than the input height 2"),
    (pool_spec("avgpool", 2, None), (4, 4), "avgpool needs images (C, H, W) per sample"),
])
def test_shape_errors_say_what_is_wrong(spec, in_shape, message, shape_error):
    assert message in shape_error(spec, in_shape)


@pytest.mark.parametrize("spec,option", [
    ({"type": "maxpool", "pool": "2"}, "pool"),
    ({"type": "avgpool", "stride": [2, 0]}, "stride"),
])
def test_bad_options_raise_value_error_naming_the_option(spec, option):
    with pytest.raises(ValueError, match=f"^{option} must be"):
        LAYERS.create(spec)


def test_pools_have_no_parameters_and_keep_channels():
    model = Model([{"type": "maxpool", "pool": 3, "stride": 2}, "avgpool"], in_shape=(5, 9, 9))
    assert [row["output"] for row in model.summary()] == [(5, 4, 4), (5, 2, 2)]
    assert model.num_params() == 0
