"""The layers and the loss for sequences: embedding, temporal_affine and the temporal
softmax loss, against direct formulas and centered differences."""

import numpy as np
import pytest

from dl_cli import gradcheck
from dl_cli.nn import Model, ShapeError
from dl_cli.registry import LAYERS, LOSSES


# -- embedding and temporal_affine --------------------------------------------------

def test_embedding_model_gradients_from_integer_tokens():
    model = Model(layers=[{"type": "embedding", "vocab": 6, "dim": 3},
                          {"type": "lstm", "hidden": 4, "return_sequences": False},
                          {"type": "affine", "units": 2}],
                  in_shape=(5,), loss="softmax_cross_entropy", init="xavier_normal",
                  dtype="float64", seed=0)
    rng = np.random.default_rng(6)
    tokens = rng.integers(0, 6, size=(4, 5))
    checks = gradcheck.check_model(model, tokens, rng.integers(0, 2, size=4), max_coords=None)
    assert "0 embedding" in {check.layer for check in checks}
    for check in checks:
        assert check.passed, f"{check.layer} {check.param}: rel error {check.error:.2e}"


def test_temporal_affine_is_the_same_affine_map_at_every_step(sequence_layer, randomize):
    layer = sequence_layer({"type": "temporal_affine", "units": 4}, (3, 5))
    randomize(layer, np.random.default_rng(12))
    x = np.random.default_rng(13).standard_normal((2, 3, 5))
    out = layer.forward(x)
    for t in range(3):
        np.testing.assert_allclose(out[:, t], x[:, t] @ layer.params["W"] + layer.params["b"])
    assert layer.decay == {"W"}
    assert layer.macs((3, 5), (3, 4)) == 3 * 5 * 4


def test_embedding_looks_up_rows(sequence_layer):
    layer = sequence_layer({"type": "embedding", "vocab": 4, "dim": 3}, (2,))
    tokens = np.array([[3, 0], [1, 3]])
    out = layer.forward(tokens)
    np.testing.assert_array_equal(out[1, 1], layer.params["W"][3])
    np.testing.assert_array_equal(out[0, 1], layer.params["W"][0])


CASES32 = [
    ({"type": "temporal_affine", "units": 3}, (4, 2), 0),
    ({"type": "embedding", "vocab": 5, "dim": 3}, (4,), 5),
]


@pytest.mark.parametrize("spec,in_shape,tokens", CASES32, ids=[c[0]["type"] for c in CASES32])
def test_float32_stays_float32(spec, in_shape, tokens, sequence_layer, assert_stays_float32):
    layer = sequence_layer(spec, in_shape, dtype=np.float32)
    rng = np.random.default_rng(15)
    x = (rng.integers(0, tokens, size=(2, *in_shape)) if tokens
         else rng.standard_normal((2, *in_shape)).astype(np.float32))
    assert_stays_float32(layer, x)


def test_temporal_loss_keeps_float32():
    loss = LOSSES.create("temporal_softmax_cross_entropy")
    scores, y = loss.example(np.random.default_rng(16))
    _, dscores = loss(scores.astype(np.float32), y)
    assert dscores.dtype == np.float32


@pytest.mark.parametrize("spec,match", [
    ({"type": "embedding", "vocab": 0, "dim": 2}, "vocab"),
    ({"type": "embedding", "vocab": 3, "dim": -1}, "dim"),
    ({"type": "temporal_affine", "units": True}, "units"),
])
def test_bad_options_name_the_option(spec, match):
    with pytest.raises(ValueError, match=match):
        LAYERS.create(spec)


@pytest.mark.parametrize("spec,in_shape", [
    ({"type": "temporal_affine", "units": 2}, (6,)),
    ({"type": "embedding", "vocab": 3, "dim": 2}, (4, 2)),
])
def test_impossible_input_shapes_raise_shape_error(spec, in_shape, sequence_layer):
    with pytest.raises(ShapeError, match="got"):
        sequence_layer(spec, in_shape)


def test_embedding_rejects_out_of_range_and_float_tokens(sequence_layer):
    layer = sequence_layer({"type": "embedding", "vocab": 4, "dim": 2}, (3,))
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        layer.forward(np.array([[0, 4, 1]]))
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        layer.forward(np.array([[0, -1, 1]]))
    with pytest.raises(TypeError, match="integer"):
        layer.forward(np.array([[0.0, 1.0, 2.0]]))


def test_embedding_gradient_accumulates_repeated_tokens(sequence_layer):
    layer = sequence_layer({"type": "embedding", "vocab": 5, "dim": 3}, (6,))
    tokens = np.array([[1, 1, 4, 0, 1, 4], [4, 2, 1, 1, 0, 0]])
    dout = np.random.default_rng(17).standard_normal((2, 6, 3))
    layer.forward(tokens)
    dx = layer.backward(dout)
    expected = np.zeros((5, 3))
    for n in range(2):
        for t in range(6):
            expected[tokens[n, t]] += dout[n, t]
    np.testing.assert_allclose(layer.grads["W"], expected, atol=1e-12)
    assert not expected[3].any()
    np.testing.assert_array_equal(dx, np.zeros(tokens.shape))


def test_embedding_default_init_has_unit_variance(sequence_layer):
    layer = sequence_layer({"type": "embedding", "vocab": 400, "dim": 50}, (3,))
    assert layer.params["W"].std() == pytest.approx(1.0, abs=0.02)


# -- the temporal loss --------------------------------------------------------------

def masked_case(rng):
    scores = rng.standard_normal((3, 4, 5))
    y = rng.integers(0, 5, size=(3, 4))
    y[0, 3] = y[2, 1:] = -1
    return scores, y


def test_temporal_loss_sums_unmasked_steps_over_batch_size():
    loss = LOSSES.create("temporal_softmax_cross_entropy")
    scores, y = masked_case(np.random.default_rng(18))
    expected = 0.0
    for n in range(3):
        for t in range(4):
            if y[n, t] != -1:
                s = scores[n, t]
                expected -= s[y[n, t]] - np.log(np.exp(s).sum())
    assert loss(scores, y)[0] == pytest.approx(expected / 3)


def test_masked_scores_change_nothing():
    loss = LOSSES.create("temporal_softmax_cross_entropy")
    scores, y = masked_case(np.random.default_rng(19))
    value, dscores = loss(scores, y)
    changed = scores.copy()
    changed[y == -1] += 100 * np.random.default_rng(20).standard_normal((4, 5))
    changed_value, changed_dscores = loss(changed, y)
    assert changed_value == value
    np.testing.assert_array_equal(changed_dscores, dscores)
    assert not dscores[y == -1].any()
    assert dscores[y != -1].any()


def test_temporal_loss_gradient_matches_centered_differences():
    loss = LOSSES.create({"type": "temporal_softmax_cross_entropy", "ignore_index": 0})
    rng = np.random.default_rng(21)
    scores, y = rng.standard_normal((3, 4, 5)), rng.integers(0, 5, size=(3, 4))
    assert (y == 0).any()
    _, dscores = loss(scores, y)
    numeric = gradcheck.numeric_grad(lambda: loss(scores, y)[0], scores, np.arange(scores.size))
    assert gradcheck.rel_error(dscores, numeric) < 1e-6
    assert not dscores[y == 0].any()


def test_temporal_loss_rejects_bad_targets():
    loss = LOSSES.create("temporal_softmax_cross_entropy")
    scores = np.zeros((2, 3, 4))
    with pytest.raises(ValueError, match="shape"):
        loss(scores, np.zeros((2, 2), int))
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        loss(scores, np.array([[0, 4, 1], [0, 0, 0]]))
    with pytest.raises(ValueError, match="ignore_index"):
        LOSSES.create({"type": "temporal_softmax_cross_entropy", "ignore_index": "pad"})


def test_temporal_loss_predicts_argmax_at_every_step():
    loss = LOSSES.create("temporal_softmax_cross_entropy")
    scores = np.random.default_rng(22).standard_normal((2, 3, 4))
    np.testing.assert_array_equal(loss.predict(scores), scores.argmax(axis=2))
    assert loss.task == "classification"
    assert loss.config() == {"type": "temporal_softmax_cross_entropy", "ignore_index": -1}
