"""One table-driven test over every registered layer (Keras ``run_layer_test`` style).

The cases are the ``examples`` each layer class lists; a registered layer without one
fails the suite. For each: the output shape ``build`` promises, the ``config()`` round
trip, a float64 gradient check of every parameter and the input, and eval mode, whose
backward must give the gradient of what the eval-mode forward computed."""

import numpy as np
import pytest

from dl_cli import gradcheck
from dl_cli.nn import Layer
from dl_cli.registry import LAYERS


CASES = [(name, i, example)
         for name in LAYERS.names()
         for i, example in enumerate(LAYERS.get(name).examples)]


def build(example, seed=0):
    layer = LAYERS.create(example.spec)
    layer.configure(np.float64, "xavier_normal")
    out_shape = layer.build(example.in_shape, np.random.default_rng(seed))
    return layer, out_shape


@pytest.mark.parametrize("name", LAYERS.names())
def test_every_registered_layer_has_an_example(name):
    assert LAYERS.get(name).examples, f"layer '{name}' lists no examples"


@pytest.mark.parametrize("name,i,example", CASES, ids=[f"{n}-{i}" for n, i, _ in CASES])
def test_output_shape_matches_build(name, i, example):
    layer, out_shape = build(example)
    x = example.input(3, np.random.default_rng(1))
    assert layer.forward(x, train=True).shape == (3, *out_shape)
    assert layer.forward(x, train=False).shape == (3, *out_shape)


@pytest.mark.parametrize("name,i,example", CASES, ids=[f"{n}-{i}" for n, i, _ in CASES])
def test_config_round_trip(name, i, example):
    layer, out_shape = build(example)
    clone = LAYERS.create(layer.config())
    assert clone.config() == layer.config()
    clone.configure(np.float64, "xavier_normal")
    assert clone.build(example.in_shape, np.random.default_rng(0)) == out_shape
    for key, value in layer.named("params").items():
        np.testing.assert_array_equal(clone.named("params")[key], value)


@pytest.mark.parametrize("name,i,example", CASES, ids=[f"{n}-{i}" for n, i, _ in CASES])
def test_gradients_match_centered_differences(name, i, example):
    layer, _ = build(example)
    x = example.input(4, np.random.default_rng(2))
    checks = gradcheck.check_layer(layer, x, np.random.default_rng(3))
    assert checks, "nothing was checked"
    for check in checks:
        assert check.passed, f"{name} {check.param}: rel error {check.error:.2e}"


@pytest.mark.parametrize("name,i,example", CASES, ids=[f"{n}-{i}" for n, i, _ in CASES])
def test_eval_mode_is_deterministic(name, i, example):
    layer, _ = build(example)
    x = example.input(3, np.random.default_rng(4))
    layer.forward(x, train=True)
    buffers = {k: v.copy() for k, v in layer.named("buffers").items()}
    first = layer.forward(x, train=False)
    np.testing.assert_array_equal(layer.forward(x, train=False), first)
    for key, value in layer.named("buffers").items():
        np.testing.assert_array_equal(value, buffers[key], err_msg=f"eval changed {key}")


# What the layer saw before the eval-mode forward: nothing, or a training batch of 5
# samples (another batch size) or of 3 (the same size, other values), which leaves a
# training cache behind and moves batchnorm's running statistics off their start.
BEFORE_EVAL = {"fresh": None, "after_train_other_size": 5, "after_train_same_size": 3}


@pytest.mark.parametrize("before", BEFORE_EVAL)
@pytest.mark.parametrize("name,i,example", CASES, ids=[f"{n}-{i}" for n, i, _ in CASES])
def test_eval_mode_gradients_match_centered_differences(name, i, example, before,
                                                         assert_eval_gradients_match):
    # Model.loss(x, y, train=False) backpropagates through eval-mode forwards: dropout's
    # identity, batchnorm's running statistics, and every other layer's eval path.
    layer, _ = build(example)
    if BEFORE_EVAL[before]:
        layer.forward(example.input(BEFORE_EVAL[before], np.random.default_rng(6)), train=True)
    x = example.input(3, np.random.default_rng(7))
    assert_eval_gradients_match(layer, x, np.random.default_rng(8), f"{name} ")


@pytest.mark.parametrize("name,i,example", CASES, ids=[f"{n}-{i}" for n, i, _ in CASES])
def test_backward_assigns_grads_for_every_param(name, i, example):
    layer, out_shape = build(example)
    x = example.input(2, np.random.default_rng(5))
    out = layer.forward(x, train=True)
    layer.backward(np.ones_like(out))
    params, grads = layer.named("params"), layer.named("grads")
    assert set(grads) == set(params)
    for key in params:
        assert grads[key].shape == params[key].shape


def test_base_layer_is_not_registered():
    assert Layer not in [LAYERS.get(n) for n in LAYERS.names()]
