"""Per-layer diagnostics: activation statistics, dead and saturated units, gradient
norms and update ratios, each against a direct computation."""

import numpy as np
import pytest

from dl_cli.diagnostics import Diagnostics
from dl_cli.nn import Model


def model_with(layers, seed=0):
    return Model(layers, in_shape=(4,), loss="softmax_cross_entropy", dtype="float64", seed=seed)


def sgd_step(model, x, y, lr, diagnostics):
    diagnostics.before_step()
    _, grads = model.loss(x, y)
    for name, g in grads.items():
        model.params[name] -= lr * g
    diagnostics.after_step(grads)
    return grads


def test_activation_statistics_match_the_outputs():
    rng = np.random.default_rng(0)
    model = model_with([{"type": "affine", "units": 5}, "tanh", {"type": "affine", "units": 3}])
    diagnostics = Diagnostics(model, sample_every=1)
    x, y = rng.standard_normal((8, 4)), rng.integers(0, 3, 8)
    out = np.tanh(x @ model.params["0.W"] + model.params["0.b"])
    sgd_step(model, x, y, 0.0, diagnostics)
    rows = diagnostics.summary()
    assert rows[1]["act_mean"] == pytest.approx(out.mean())
    assert rows[1]["act_std"] == pytest.approx(out.std())
    assert rows[1]["saturated"] == pytest.approx(np.mean(np.abs(out) > 0.98))


def test_dead_units_are_those_never_positive_over_the_epoch():
    rng = np.random.default_rng(1)
    model = model_with([{"type": "affine", "units": 6}, "relu", {"type": "affine", "units": 3}])
    model.params["0.W"][:, :2] = 0.0
    model.params["0.b"][:2] = -1.0  # units 0 and 1 can never fire
    diagnostics = Diagnostics(model)
    for _ in range(3):
        sgd_step(model, rng.standard_normal((16, 4)), rng.integers(0, 3, 16), 0.0, diagnostics)
    assert diagnostics.summary()[1]["dead"] == pytest.approx(2 / 6)


def test_grad_norm_and_update_ratio_of_plain_sgd():
    rng = np.random.default_rng(2)
    model = model_with([{"type": "affine", "units": 3}])
    diagnostics = Diagnostics(model, sample_every=1)
    x, y = rng.standard_normal((8, 4)), rng.integers(0, 3, 8)
    before = {k: v.copy() for k, v in model.params.items()}
    grads = sgd_step(model, x, y, 0.1, diagnostics)
    row = diagnostics.summary()[0]
    norm = np.sqrt(sum(np.sum(g ** 2) for g in grads.values()))
    weight = np.sqrt(sum(np.sum(w ** 2) for w in before.values()))
    assert row["grad_norm"] == pytest.approx(norm)
    assert row["update_ratio"] == pytest.approx(0.1 * norm / weight)


def test_summary_resets_and_eval_passes_are_ignored():
    rng = np.random.default_rng(3)
    model = model_with([{"type": "affine", "units": 3}, "sigmoid"])
    diagnostics = Diagnostics(model)
    model.forward(rng.standard_normal((5, 4)), train=False)
    assert "act_mean" not in diagnostics.summary()[1]
    diagnostics.detach()
    model.forward(rng.standard_normal((5, 4)), train=True)
    assert "act_mean" not in diagnostics.summary()[1]


def test_deep_sigmoid_stack_shows_vanishing_gradients_across_depth():
    """The notes' claim: σ' ≤ 1/4, so gradient norms shrink layer by layer."""
    rng = np.random.default_rng(4)
    layers = []
    for _ in range(10):
        layers += [{"type": "affine", "units": 32}, "sigmoid"]
    model = Model(layers + [{"type": "affine", "units": 3}], in_shape=(4,), init="xavier_normal",
                  dtype="float64")
    diagnostics = Diagnostics(model)
    sgd_step(model, rng.standard_normal((64, 4)), rng.integers(0, 3, 64), 0.0, diagnostics)
    norms = [row["grad_norm"] for row in diagnostics.summary() if "grad_norm" in row]
    assert norms[0] < 1e-3 * norms[-1]


def test_a_unit_firing_only_on_an_unsampled_iteration_is_not_dead():
    model = model_with([{"type": "affine", "units": 2}, "relu", {"type": "affine", "units": 3}])
    model.params["0.W"][...] = 0.0
    model.params["0.W"][0, 0] = 1.0  # unit 0 copies input feature 0; unit 1 never fires
    diagnostics = Diagnostics(model, sample_every=10)
    y = np.zeros(4, dtype=np.int64)
    sgd_step(model, np.full((4, 4), -1.0), y, 0.0, diagnostics)  # sampled: unit 0 silent
    sgd_step(model, np.full((4, 4), 1.0), y, 0.0, diagnostics)   # not sampled: unit 0 fires
    row = diagnostics.summary()[1]
    assert row["dead"] == pytest.approx(0.5)
    assert row["act_mean"] == 0.0  # statistics come from the sampled iteration only
