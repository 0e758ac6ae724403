"""The rnn and lstm layers: gradients through time against centered differences, the
forward pass against the step-by-step reference, the LSTM's gates."""

import numpy as np
import pytest

from dl_cli import gradcheck
from dl_cli.nn import Model, ShapeError, reference
from dl_cli.registry import LAYERS


RECURRENT = ["rnn", "lstm"]


# -- gradients ----------------------------------------------------------------------

@pytest.mark.parametrize("name", RECURRENT)
@pytest.mark.parametrize("return_sequences", [True, False])
def test_gradients_through_time_include_learned_initial_states(name, return_sequences,
                                                               sequence_layer, randomize):
    layer = sequence_layer({"type": name, "hidden": 3, "return_sequences": return_sequences,
                   "initial_state": "learned"}, (5, 4))
    randomize(layer, np.random.default_rng(1))
    x = np.random.default_rng(2).standard_normal((3, 5, 4))
    checks = gradcheck.check_layer(layer, x, np.random.default_rng(3), max_coords=None)
    checked = {check.param for check in checks}
    assert {"Wx", "Wh", "b", "h0", "input"} <= checked
    assert name == "rnn" or "c0" in checked
    for check in checks:
        assert check.passed, f"{name} {check.param}: rel error {check.error:.2e}"


def test_stacked_model_gradients_with_masked_temporal_loss(randomize):
    model = Model(layers=[{"type": "rnn", "hidden": 4, "initial_state": "learned"},
                          {"type": "lstm", "hidden": 3, "initial_state": "learned"},
                          {"type": "temporal_affine", "units": 5}],
                  in_shape=(4, 3), loss={"type": "temporal_softmax_cross_entropy"},
                  init="xavier_normal", l2=0.1, dtype="float64", seed=0)
    rng = np.random.default_rng(4)
    for layer in model.layers:
        randomize(layer, rng)
    x = rng.standard_normal((3, 4, 3))
    y = rng.integers(0, 5, size=(3, 4))
    y[1, 2:] = -1
    checks = gradcheck.check_model(model, x, y, np.random.default_rng(5), max_coords=None)
    assert {f"{c.layer}.{c.param}" for c in checks} >= {"0 rnn.h0", "1 lstm.c0", "2 temporal_affine.W"}
    for check in checks:
        assert check.passed, f"{check.layer} {check.param}: rel error {check.error:.2e}"


# -- forward against the reference --------------------------------------------------

@pytest.mark.parametrize("return_sequences", [True, False])
def test_rnn_forward_matches_the_reference(return_sequences, sequence_layer, randomize):
    layer = sequence_layer({"type": "rnn", "hidden": 4, "return_sequences": return_sequences,
                   "initial_state": "learned"}, (5, 3))
    randomize(layer, np.random.default_rng(7))
    x = np.random.default_rng(8).standard_normal((2, 5, 3))
    p = layer.params
    expected = reference.rnn_forward(x, p["Wx"], p["Wh"], p["b"], p["h0"])
    out = layer.forward(x)
    np.testing.assert_allclose(out, expected if return_sequences else expected[:, -1], atol=1e-12)


@pytest.mark.parametrize("return_sequences", [True, False])
def test_lstm_forward_matches_the_reference(return_sequences, sequence_layer, randomize):
    layer = sequence_layer({"type": "lstm", "hidden": 3, "return_sequences": return_sequences,
                   "initial_state": "learned"}, (4, 2))
    randomize(layer, np.random.default_rng(9), scale=1.0)
    x = np.random.default_rng(10).standard_normal((3, 4, 2))
    p = layer.params
    expected = reference.lstm_forward(x, p["Wx"], p["Wh"], p["b"], p["h0"], p["c0"])
    out = layer.forward(x)
    np.testing.assert_allclose(out, expected if return_sequences else expected[:, -1], atol=1e-12)


@pytest.mark.parametrize("name", RECURRENT)
def test_zero_initial_state_has_no_state_parameters(name, sequence_layer):
    layer = sequence_layer({"type": name, "hidden": 2}, (3, 2))
    assert set(layer.params) == {"Wx", "Wh", "b"}
    assert layer.decay == {"Wx", "Wh"}
    x = np.random.default_rng(11).standard_normal((2, 3, 2))
    p = layer.params
    zeros = np.zeros(2)
    expected = (reference.rnn_forward(x, p["Wx"], p["Wh"], p["b"], zeros) if name == "rnn"
                else reference.lstm_forward(x, p["Wx"], p["Wh"], p["b"], zeros, zeros))
    np.testing.assert_allclose(layer.forward(x), expected, atol=1e-12)


# -- shapes, dtypes, options --------------------------------------------------------

@pytest.mark.parametrize("name", RECURRENT)
@pytest.mark.parametrize("return_sequences", [True, False])
def test_return_sequences_shapes(name, return_sequences):
    layer = LAYERS.create({"type": name, "hidden": 5, "return_sequences": return_sequences})
    out_shape = layer.build((6, 3), np.random.default_rng(0))
    assert out_shape == ((6, 5) if return_sequences else (5,))
    x = np.random.default_rng(14).standard_normal((2, 6, 3))
    out = layer.forward(x)
    assert out.shape == (2, *out_shape)
    assert layer.backward(np.ones_like(out)).shape == x.shape


def test_macs_count_both_products_of_every_step(sequence_layer):
    rnn = sequence_layer({"type": "rnn", "hidden": 4}, (5, 3))
    lstm = sequence_layer({"type": "lstm", "hidden": 4}, (5, 3))
    assert rnn.macs((5, 3), (5, 4)) == 5 * (3 + 4) * 4
    assert lstm.macs((5, 3), (5, 4)) == 5 * (3 + 4) * 16


CASES32 = [
    ({"type": "rnn", "hidden": 3, "initial_state": "learned"}, (4, 2)),
    ({"type": "lstm", "hidden": 3, "return_sequences": False, "initial_state": "learned"}, (4, 2)),
]


@pytest.mark.parametrize("spec,in_shape", CASES32, ids=[c[0]["type"] for c in CASES32])
def test_float32_stays_float32(spec, in_shape, sequence_layer, assert_stays_float32):
    layer = sequence_layer(spec, in_shape, dtype=np.float32)
    x = np.random.default_rng(15).standard_normal((2, *in_shape)).astype(np.float32)
    assert_stays_float32(layer, x)


@pytest.mark.parametrize("spec,match", [
    ({"type": "rnn", "hidden": 0}, "hidden"),
    ({"type": "lstm", "hidden": 2.5}, "hidden"),
    ({"type": "rnn", "hidden": 2, "initial_state": "random"}, "initial_state"),
    ({"type": "lstm", "hidden": 2, "return_sequences": "yes"}, "return_sequences"),
])
def test_bad_options_name_the_option(spec, match):
    with pytest.raises(ValueError, match=match):
        LAYERS.create(spec)


@pytest.mark.parametrize("spec,in_shape", [
    ({"type": "rnn", "hidden": 2}, (5,)),
    ({"type": "lstm", "hidden": 2}, (3, 4, 4)),
])
def test_impossible_input_shapes_raise_shape_error(spec, in_shape, sequence_layer):
    with pytest.raises(ShapeError, match="got"):
        sequence_layer(spec, in_shape)


# -- the LSTM's gates ---------------------------------------------------------------

@pytest.fixture
def lstm_with_gates(sequence_layer):
    """``lstm_with_gates(b_input, b_forget, b_output, b_block, input_weight=0.0)``: one
    hidden unit, one input feature, Wh = 0: each gate sees only its own bias, plus
    ``input_weight·x_t`` for the input gate."""
    def build(b_input, b_forget, b_output, b_block, input_weight=0.0):
        layer = sequence_layer({"type": "lstm", "hidden": 1}, (3, 1))
        layer.params["Wx"][...] = [[input_weight, 0.0, 0.0, 0.0]]
        layer.params["Wh"][...] = 0.0
        layer.params["b"][...] = [b_input, b_forget, b_output, b_block]
        return layer
    return build


OPEN, SHUT = 40.0, -40.0  # σ(±40) is 1 or 0 to 1e-17
X_FIRST_ONLY = np.array([[[1.0], [0.0], [0.0]]])  # the input gate opens at t = 0 only


def test_lstm_gate_order_input_gate_writes_block_input(lstm_with_gates):
    layer = lstm_with_gates(SHUT, SHUT, OPEN, 1.0, input_weight=2 * OPEN)
    out = layer.forward(X_FIRST_ONLY)[0, :, 0]
    np.testing.assert_allclose(out, [np.tanh(np.tanh(1.0)), 0.0, 0.0], atol=1e-12)


def test_lstm_gate_order_forget_gate_keeps_the_cell(lstm_with_gates):
    layer = lstm_with_gates(SHUT, OPEN, OPEN, 1.0, input_weight=2 * OPEN)
    out = layer.forward(X_FIRST_ONLY)[0, :, 0]
    np.testing.assert_allclose(out, [np.tanh(np.tanh(1.0))] * 3, atol=1e-12)


def test_lstm_gate_order_output_gate_hides_the_cell(lstm_with_gates):
    layer = lstm_with_gates(OPEN, OPEN, SHUT, 1.0)
    np.testing.assert_allclose(layer.forward(X_FIRST_ONLY), 0.0, atol=1e-12)


def test_lstm_gate_order_block_input_is_a_signed_tanh(lstm_with_gates):
    layer = lstm_with_gates(OPEN, SHUT, OPEN, -0.5)
    out = layer.forward(X_FIRST_ONLY)[0, :, 0]
    np.testing.assert_allclose(out, [np.tanh(np.tanh(-0.5))] * 3, atol=1e-12)


def test_lstm_forget_bias_starts_at_one(sequence_layer):
    layer = sequence_layer({"type": "lstm", "hidden": 3}, (2, 2))
    np.testing.assert_array_equal(layer.params["b"], [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])
