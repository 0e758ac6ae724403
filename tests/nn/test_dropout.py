"""Dropout: inverted scaling, its masks, eval mode."""

import numpy as np
import pytest

from dl_cli.registry import LAYERS


def test_dropout_is_identity_at_eval(build_layer):
    layer, _ = build_layer({"type": "dropout", "drop_rate": 0.5}, (10,))
    x = np.random.default_rng(0).standard_normal((4, 10))
    np.testing.assert_array_equal(layer.forward(x, train=False), x)
    dout = np.random.default_rng(1).standard_normal((4, 10))
    np.testing.assert_array_equal(layer.backward(dout), dout)


def test_dropout_keeps_the_expected_activation_and_drops_the_right_fraction(build_layer):
    drop_rate = 0.3
    layer, _ = build_layer({"type": "dropout", "drop_rate": drop_rate}, (500,))
    x = 2.0 + np.random.default_rng(0).standard_normal((200, 500))
    out = layer.forward(x, train=True)
    n = x.size
    standard_error = np.std(out - x) / np.sqrt(n)
    assert abs(out.mean() - x.mean()) < 4 * standard_error
    dropped = np.mean(out == 0)
    assert abs(dropped - drop_rate) < 4 * np.sqrt(drop_rate * (1 - drop_rate) / n)
    kept = out != 0
    np.testing.assert_allclose(out[kept], x[kept] / (1 - drop_rate))


def test_dropout_backward_uses_the_forward_mask(build_layer):
    layer, _ = build_layer({"type": "dropout", "drop_rate": 0.5}, (50,))
    x = np.random.default_rng(0).standard_normal((8, 50))
    out = layer.forward(x, train=True)
    dx = layer.backward(np.ones_like(x))
    np.testing.assert_allclose(dx * x, out)


def test_dropout_masks_come_from_the_layer_generator(build_layer):
    global_state = np.random.get_state()
    a, _ = build_layer("dropout", (20,), seed=7)
    b, _ = build_layer("dropout", (20,), seed=7)
    x = np.ones((5, 20))
    first = a.forward(x)
    np.testing.assert_array_equal(first, b.forward(x))     # same seed, same masks
    assert not np.array_equal(first, a.forward(x))          # a new mask every call
    assert np.random.get_state()[1].tolist() == global_state[1].tolist()


def test_dropout_keeps_float32(build_layer):
    layer, _ = build_layer("dropout", (30,), dtype=np.float32)
    x = np.ones((4, 30), dtype=np.float32)
    out = layer.forward(x, train=True)
    assert out.dtype == np.float32 and layer.cache.dtype == np.float32
    assert layer.backward(np.ones_like(x)).dtype == np.float32


def test_dropout_gradient_check_replays_the_mask(assert_gradients_match, build_layer):
    layer, _ = build_layer({"type": "dropout", "drop_rate": 0.4}, (3, 4))
    assert_gradients_match(layer, np.random.default_rng(0).standard_normal((5, 3, 4)))


@pytest.mark.parametrize("drop_rate", [1.5, -0.1, 1.0, "0.5"])
def test_dropout_rejects_bad_rates(drop_rate):
    with pytest.raises(ValueError, match="drop_rate"):
        LAYERS.create({"type": "dropout", "drop_rate": drop_rate})
