"""Optimizers, schedules and clipping against hand-computed numbers.

Each optimizer's first two updates are written out as arithmetic on a two-element weight
``w0 = [1, -2]`` with gradients ``g1 = [0.5, -1]`` then ``g2 = [0.2, 0.4]``.
"""

import io
import math

import numpy as np
import pytest

from dl_cli.optim import clip_grad_norm, clip_grad_value, global_norm
from dl_cli.registry import OPTIMIZERS, SCHEDULES

W0 = np.array([1.0, -2.0])
G1 = np.array([0.5, -1.0])
G2 = np.array([0.2, 0.4])
EPS = 1e-8

ALL_OPTIMIZERS = ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"]


def two_steps(spec):
    """The weight after the first and after the second update."""
    opt = OPTIMIZERS.create(spec)
    params = {"w": W0.copy()}
    opt.step(params, {"w": G1.copy()})
    w1 = params["w"].copy()
    opt.step(params, {"w": G2.copy()})
    return w1, params["w"]


def assert_two_steps(spec, w1, w2):
    got1, got2 = two_steps(spec)
    np.testing.assert_allclose(got1, w1, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got2, w2, rtol=1e-12, atol=1e-15)


# -- each optimizer's first two updates --------------------------------------------------
def test_sgd_two_steps():
    assert_two_steps({"type": "sgd", "lr": 0.1}, [0.95, -1.9], [0.93, -1.94])


def test_momentum_two_steps():
    # v1 = -0.1·g1 = [-0.05, 0.1]; v2 = 0.9·v1 - 0.1·g2 = [-0.065, 0.05]
    assert_two_steps({"type": "momentum", "lr": 0.1, "momentum": 0.9},
                     [1 - 0.05, -2 + 0.1], [0.95 - 0.065, -1.9 + 0.05])


def test_nesterov_two_steps():
    # same velocities as momentum; w ← w + 0.9·v - 0.1·g
    w1 = [1 + 0.9 * -0.05 - 0.05, -2 + 0.9 * 0.1 + 0.1]          # [0.905, -1.81]
    w2 = [w1[0] + 0.9 * -0.065 - 0.02, w1[1] + 0.9 * 0.05 - 0.04]  # [0.8265, -1.805]
    assert_two_steps({"type": "nesterov", "lr": 0.1, "momentum": 0.9}, w1, w2)


def test_adagrad_two_steps():
    # s1 = g1² = [0.25, 1]; s2 = s1 + g2² = [0.29, 1.16]
    w1 = W0 - 0.1 * G1 / (np.sqrt([0.25, 1.0]) + EPS)
    w2 = w1 - 0.1 * G2 / (np.sqrt([0.29, 1.16]) + EPS)
    assert_two_steps({"type": "adagrad", "lr": 0.1}, w1, w2)


def test_rmsprop_two_steps():
    # s1 = 0.2·g1² = [0.05, 0.2]; s2 = 0.8·s1 + 0.2·g2² = [0.048, 0.192]
    w1 = W0 - 0.01 * G1 / (np.sqrt([0.05, 0.2]) + EPS)
    w2 = w1 - 0.01 * G2 / (np.sqrt([0.048, 0.192]) + EPS)
    assert_two_steps({"type": "rmsprop", "lr": 0.01, "decay_rate": 0.8}, w1, w2)


def adam_by_hand():
    """Adam's two directions m̂/(√v̂ + ε) with β1 = 0.9, β2 = 0.999."""
    # m1 = 0.1·g1 = [0.05, -0.1], v1 = 0.001·g1² = [0.00025, 0.001]; corrections 0.1, 0.001
    d1 = np.array([0.05, -0.1]) / 0.1 / (np.sqrt(np.array([0.00025, 0.001]) / 0.001) + EPS)
    # m2 = 0.9·m1 + 0.1·g2 = [0.065, -0.05]
    # v2 = 0.999·v1 + 0.001·g2² = [0.00028975, 0.001159]; corrections 0.19, 0.001999
    d2 = np.array([0.065, -0.05]) / 0.19 / (np.sqrt(np.array([0.00028975, 0.001159]) / 0.001999)
                                           + EPS)
    return d1, d2


def test_adam_two_steps():
    d1, d2 = adam_by_hand()
    assert_two_steps({"type": "adam", "lr": 0.1}, W0 - 0.1 * d1, W0 - 0.1 * d1 - 0.1 * d2)


def test_adamw_two_steps_decays_only_the_named_params():
    d1, d2 = adam_by_hand()
    opt = OPTIMIZERS.create({"type": "adamw", "lr": 0.1, "weight_decay": 0.2})
    params = {"W": W0.copy(), "b": W0.copy()}
    opt.step(params, {"W": G1.copy(), "b": G1.copy()}, decay=frozenset({"W"}))
    W1 = W0 - 0.1 * (d1 + 0.2 * W0)
    b1 = W0 - 0.1 * d1
    np.testing.assert_allclose(params["W"], W1, rtol=1e-12)
    np.testing.assert_allclose(params["b"], b1, rtol=1e-12)
    opt.step(params, {"W": G2.copy(), "b": G2.copy()}, decay=frozenset({"W"}))
    np.testing.assert_allclose(params["W"], W1 - 0.1 * (d2 + 0.2 * W1), rtol=1e-12)
    np.testing.assert_allclose(params["b"], b1 - 0.1 * d2, rtol=1e-12)


def test_adamw_with_zero_gradient_only_shrinks_decayed_weights():
    opt = OPTIMIZERS.create({"type": "adamw", "lr": 0.1, "weight_decay": 0.5})
    params = {"0.W": W0.copy(), "0.b": W0.copy()}
    zeros = {"0.W": np.zeros(2), "0.b": np.zeros(2)}
    opt.step(params, zeros, decay={"0.W"})
    np.testing.assert_allclose(params["0.W"], W0 * (1 - 0.1 * 0.5), rtol=1e-15)
    np.testing.assert_array_equal(params["0.b"], W0)


# -- what the extra machinery is for ---------------------------------------------------
def test_momentum_step_grows_to_lr_g_over_one_minus_mu():
    opt = OPTIMIZERS.create({"type": "momentum", "lr": 0.01, "momentum": 0.9})
    params = {"w": np.zeros(1)}
    for _ in range(300):
        before = params["w"].copy()
        opt.step(params, {"w": np.ones(1)})
    np.testing.assert_allclose(before - params["w"], 0.01 / (1 - 0.9), rtol=1e-9)


def test_nesterov_is_the_look_ahead_gradient_update():
    # Classic NAG on f(w) = ½·a·w²: v ← μv − lr·∇f(w + μv), w ← w + v. The optimizer
    # works on φ = w + μv with the gradient at φ and must track it exactly.
    a, lr, mu = 3.0, 0.05, 0.9
    w, v = 2.0, 0.0
    opt = OPTIMIZERS.create({"type": "nesterov", "lr": lr, "momentum": mu})
    phi = {"w": np.array([w + mu * v])}
    for _ in range(20):
        v = mu * v - lr * a * (w + mu * v)
        w = w + v
        opt.step(phi, {"w": a * phi["w"]})
        np.testing.assert_allclose(phi["w"], w + mu * v, rtol=1e-12, atol=1e-15)


def test_adam_bias_correction_makes_the_first_step_lr_whatever_the_gradient_scale():
    # Uncorrected, the first step would be lr·0.1·g/√(0.001·g²) ≈ 3.16·lr.
    opt = OPTIMIZERS.create({"type": "adam", "lr": 0.01})
    params = {"w": np.zeros(3)}
    opt.step(params, {"w": np.array([1e-3, -1.0, 100.0])})
    np.testing.assert_allclose(params["w"], [-0.01, 0.01, -0.01], rtol=1e-4)


def test_step_uses_the_current_lr_and_keeps_base_lr():
    opt = OPTIMIZERS.create({"type": "sgd", "lr": 0.1})
    opt.lr = 0.5
    params = {"w": W0.copy()}
    opt.step(params, {"w": G1.copy()})
    np.testing.assert_allclose(params["w"], [0.75, -1.5])
    assert opt.base_lr == 0.1


# -- dtypes and state --------------------------------------------------------------------
def quadratic_grads(params):
    return {name: (np.arange(1, w.size + 1, dtype=w.dtype).reshape(w.shape) * (w - 1))
            for name, w in params.items()}


def float_params(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return {"0.W": rng.standard_normal((3, 4)).astype(dtype),
            "0.b": rng.standard_normal(4).astype(dtype)}


@pytest.mark.parametrize("name", ALL_OPTIMIZERS)
def test_float32_params_and_state_stay_float32(name):
    opt = OPTIMIZERS.create({"type": name, "lr": 0.01})
    opt.lr = np.float64(0.01)  # as a schedule computed with NumPy might return it
    assert type(opt.lr) is float  # a NumPy float64 scalar would promote the updates
    params = float_params(np.float32)
    arrays = dict(params)
    for _ in range(3):
        opt.step(params, quadratic_grads(params), decay={"0.W"})
    for key, w in params.items():
        assert w.dtype == np.float32, key
        assert w is arrays[key], f"{key} was replaced, not updated in place"
    for key, value in opt.state_dict().items():
        if key != "t":
            assert value.dtype == np.float32, key


@pytest.mark.parametrize("name", ALL_OPTIMIZERS)
def test_updates_after_the_first_allocate_no_arrays(name, traced_peak):
    """Intermediate values go into the optimizer's work arrays: after the first step has
    made them (and the state), a step of a 2 MB weight allocates less than a tenth of it
    (Python's own small objects, never an array of it)."""
    opt = OPTIMIZERS.create({"type": name, "lr": 0.01})
    params = {"0.W": np.ones((512, 512))}
    grads = {"0.W": np.full((512, 512), 0.5)}
    opt.step(params, grads, decay={"0.W"})
    _, peak = traced_peak(lambda: opt.step(params, grads, decay={"0.W"}))
    assert peak < params["0.W"].nbytes // 10


@pytest.mark.parametrize("name", ALL_OPTIMIZERS)
def test_state_dict_round_trip_continues_bit_identically(name):
    spec = {"type": name, "lr": 0.01}
    opt = OPTIMIZERS.create(spec)
    params = float_params(np.float32)
    for _ in range(3):
        opt.step(params, quadratic_grads(params), decay={"0.W"})
    buffer = io.BytesIO()
    np.savez(buffer, **opt.state_dict())
    saved_params = {k: v.copy() for k, v in params.items()}
    for _ in range(2):
        opt.step(params, quadratic_grads(params), decay={"0.W"})

    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as stored:
        state = dict(stored)
    assert int(state["t"]) == 3
    loaded = {k: v.copy() for k, v in state.items()}
    restored = OPTIMIZERS.create(spec)
    restored.load_state_dict(state, saved_params)
    for _ in range(2):
        restored.step(saved_params, quadratic_grads(saved_params), decay={"0.W"})
    for key in params:
        np.testing.assert_array_equal(saved_params[key], params[key])
    for key in state:  # the optimizer updates its own copies, not the caller's arrays
        np.testing.assert_array_equal(state[key], loaded[key])


def test_state_dict_keys_and_copies():
    opt = OPTIMIZERS.create({"type": "adam", "lr": 0.01})
    params = float_params(np.float64)
    opt.step(params, quadratic_grads(params))
    state = opt.state_dict()
    assert set(state) == {"t", "m/0.W", "v/0.W", "m/0.b", "v/0.b"}
    assert all(isinstance(v, np.ndarray) for v in state.values())
    saved = state["m/0.W"].copy()
    opt.step(params, quadratic_grads(params))
    np.testing.assert_array_equal(state["m/0.W"], saved)


def test_loading_another_optimizers_state_is_an_error():
    adam = OPTIMIZERS.create({"type": "adam"})
    params = float_params(np.float64)
    adam.step(params, quadratic_grads(params))
    with pytest.raises(ValueError, match="m/0.W"):
        OPTIMIZERS.create({"type": "momentum", "lr": 0.1}).load_state_dict(adam.state_dict(), params)
    with pytest.raises(ValueError, match="'t'"):
        OPTIMIZERS.create({"type": "sgd", "lr": 0.1}).load_state_dict({}, params)


# -- schedules -----------------------------------------------------------------------------
def lrs(spec, epochs, base_lr=1.0, total=20):
    schedule = SCHEDULES.create(spec)
    return [schedule.lr_at(t, base_lr, total) for t in epochs]


def test_constant_schedule():
    assert lrs("constant", [0, 5, 19], base_lr=0.3) == [0.3, 0.3, 0.3]


def test_step_schedule_halves_every_k_epochs():
    assert lrs({"type": "step", "every": 10}, [0, 9, 10, 19, 20, 35]) == \
        [1.0, 1.0, 0.5, 0.5, 0.25, 0.125]
    assert lrs({"type": "step", "every": 2, "gamma": 0.1}, [1, 2, 4], base_lr=2.0) == \
        pytest.approx([2.0, 0.2, 0.02])


def test_exponential_schedule():
    assert lrs({"type": "exponential", "k": 0.1}, [0, 10, 20], base_lr=2.0) == \
        pytest.approx([2.0, 2.0 * math.exp(-1), 2.0 * math.exp(-2)])


def test_inverse_time_schedule():
    assert lrs({"type": "inverse_time", "k": 0.5}, [0, 2, 6], base_lr=2.0) == \
        pytest.approx([2.0, 1.0, 0.5])


def test_cosine_schedule_over_the_run_and_over_given_epochs():
    assert lrs({"type": "cosine"}, [0, 5, 10, 12], total=10) == pytest.approx([1.0, 0.5, 0.0, 0.0])
    # cos(π/4) = √2/2: min_lr + (lr0 - min_lr)·(1 + √2/2)/2
    assert lrs({"type": "cosine", "epochs": 4, "min_lr": 0.2}, [0, 1, 2, 4, 9], total=100) == \
        pytest.approx([1.0, 0.2 + 0.8 * (1 + math.sqrt(0.5)) / 2, 0.6, 0.2, 0.2], abs=1e-12)


def test_warmup_ramps_linearly_then_holds():
    assert lrs({"type": "warmup", "epochs": 4}, [0, 1, 2, 3, 4, 10], base_lr=2.0) == \
        pytest.approx([0.5, 1.0, 1.5, 2.0, 2.0, 2.0])


def test_warmup_then_cosine_over_the_rest_of_the_run():
    spec = {"type": "warmup", "epochs": 4, "after": {"type": "cosine", "min_lr": 0.1}}
    # cosine spans the last 14 - 4 = 10 epochs: epoch 9 is its midpoint
    assert lrs(spec, [0, 3, 4, 9, 14], base_lr=2.0, total=14) == \
        pytest.approx([0.5, 2.0, 2.0, 0.1 + 1.9 / 2, 0.1])


def test_warmup_then_step():
    spec = {"type": "warmup", "epochs": 2, "after": {"type": "step", "every": 3}}
    assert lrs(spec, [0, 1, 2, 4, 5, 8]) == pytest.approx([0.5, 1.0, 1.0, 1.0, 0.5, 0.25])


def test_plateau_reduces_after_patience_epochs_without_improvement():
    plateau = SCHEDULES.create({"type": "plateau", "factor": 0.5, "patience": 2})
    for value, lr in [(1.0, 1.0), (0.9, 1.0), (0.9, 1.0), (0.95, 0.5),  # 2 stalls: halve
                      (0.95, 0.5), (0.8, 0.5), (0.8, 0.5), (0.8, 0.25)]:
        plateau.observe(value)
        assert plateau.lr_at(0, 1.0, 10) == lr


@pytest.mark.parametrize("mode,sign", [("max", 1), ("min", -1)])
def test_plateau_mode_and_min_delta(mode, sign):
    plateau = SCHEDULES.create({"type": "plateau", "patience": 1, "mode": mode,
                                "min_delta": 0.05})
    plateau.observe(sign * 0.5)
    plateau.observe(sign * 0.6)   # 0.1 better > min_delta: improvement
    assert plateau.lr_at(3, 0.2, 10) == 0.2
    plateau.observe(sign * 0.64)  # 0.04 better <= min_delta: a stall
    assert plateau.lr_at(4, 0.2, 10) == pytest.approx(0.1)


def test_plateau_respects_min_lr():
    plateau = SCHEDULES.create({"type": "plateau", "factor": 0.1, "patience": 1,
                                "min_lr": 0.003})
    plateau.observe(1.0)
    seen = []
    for _ in range(5):
        plateau.observe(1.0)
        seen.append(plateau.lr_at(0, 1.0, 10))
    assert seen == pytest.approx([0.1, 0.01, 0.003, 0.003, 0.003])


def test_plateau_state_round_trip_inside_warmup():
    spec = {"type": "warmup", "epochs": 1, "after": {"type": "plateau", "patience": 3}}
    schedule = SCHEDULES.create(spec)
    for value in [1.0, 0.5, 0.6, 0.7]:
        schedule.observe(value)
    state = schedule.state_dict()
    assert set(state) == {"after/best", "after/bad_epochs", "after/reductions"}
    restored = SCHEDULES.create(spec)
    restored.load_state_dict(state)
    for s in (schedule, restored):
        s.observe(0.8)     # the third stall in a row
    assert restored.lr_at(5, 1.0, 10) == schedule.lr_at(5, 1.0, 10) == 0.5


def test_stateless_schedules_reject_state():
    assert SCHEDULES.create("constant").state_dict() == {}
    with pytest.raises(ValueError, match="best"):
        SCHEDULES.create("constant").load_state_dict({"best": np.array(1.0)})


# -- clipping --------------------------------------------------------------------------------
def test_global_norm():
    assert global_norm({"a": np.array([3.0]), "b": np.array([[0.0, 4.0]])}) == 5.0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_clip_grad_norm_rescales_to_max_norm_keeping_direction(dtype):
    grads = {"a": np.array([3.0, 0.0], dtype=dtype), "b": np.array([[4.0]], dtype=dtype)}
    a = grads["a"]
    assert clip_grad_norm(grads, max_norm=2.0) == pytest.approx(5.0)
    assert grads["a"] is a and a.dtype == dtype
    assert global_norm(grads) == pytest.approx(2.0, rel=1e-6)
    np.testing.assert_allclose(grads["a"], [1.2, 0.0], rtol=1e-6)
    np.testing.assert_allclose(grads["b"], [[1.6]], rtol=1e-6)


@pytest.mark.parametrize("max_norm", [5.0, 8.0])
def test_clip_grad_norm_at_or_below_threshold_changes_nothing(max_norm):
    grads = {"a": np.array([3.0, 0.0]), "b": np.array([4.0])}
    assert clip_grad_norm(grads, max_norm) == 5.0
    np.testing.assert_array_equal(grads["a"], [3.0, 0.0])
    np.testing.assert_array_equal(grads["b"], [4.0])


def test_clip_grad_value_clamps_in_place():
    grads = {"a": np.array([-3.0, 0.5, 2.0], dtype=np.float32)}
    a = grads["a"]
    clip_grad_value(grads, 1.0)
    assert grads["a"] is a and a.dtype == np.float32
    np.testing.assert_array_equal(a, [-1.0, 0.5, 1.0])


# -- option validation ---------------------------------------------------------------------
BAD_OPTIONS = [
    (OPTIMIZERS, {"type": "sgd", "lr": 0}, "lr"),
    (OPTIMIZERS, {"type": "sgd", "lr": -0.1}, "lr"),
    (OPTIMIZERS, {"type": "sgd", "lr": float("nan")}, "lr"),
    (OPTIMIZERS, {"type": "sgd", "lr": "fast"}, "lr"),
    (OPTIMIZERS, {"type": "momentum", "lr": 0.1, "momentum": 1.0}, "momentum"),
    (OPTIMIZERS, {"type": "nesterov", "lr": 0.1, "momentum": -0.1}, "momentum"),
    (OPTIMIZERS, {"type": "adagrad", "lr": 0.1, "eps": 0}, "eps"),
    (OPTIMIZERS, {"type": "rmsprop", "lr": 0.1, "decay_rate": 1.5}, "decay_rate"),
    (OPTIMIZERS, {"type": "adam", "beta1": 1.0}, "beta1"),
    (OPTIMIZERS, {"type": "adam", "beta2": -0.5}, "beta2"),
    (OPTIMIZERS, {"type": "adamw", "weight_decay": -0.01}, "weight_decay"),
    (OPTIMIZERS, {"type": "adam", "betas": 0.9}, "betas"),
    (SCHEDULES, {"type": "step", "every": 0}, "every"),
    (SCHEDULES, {"type": "step", "every": 2.5}, "every"),
    (SCHEDULES, {"type": "step", "every": 2, "gamma": 1.5}, "gamma"),
    (SCHEDULES, {"type": "exponential", "k": -1}, "k"),
    (SCHEDULES, {"type": "inverse_time", "k": -1}, "k"),
    (SCHEDULES, {"type": "cosine", "epochs": 0}, "epochs"),
    (SCHEDULES, {"type": "cosine", "min_lr": -1}, "min_lr"),
    (SCHEDULES, {"type": "warmup", "epochs": -3}, "epochs"),
    (SCHEDULES, {"type": "warmup", "epochs": 3, "after": "cosin"}, "cosine"),
    (SCHEDULES, {"type": "plateau", "factor": 1.0}, "factor"),
    (SCHEDULES, {"type": "plateau", "patience": 0}, "patience"),
    (SCHEDULES, {"type": "plateau", "mode": "up"}, "mode"),
    (SCHEDULES, {"type": "plateau", "min_delta": -1}, "min_delta"),
    (SCHEDULES, {"type": "plateau", "min_lr": -1}, "min_lr"),
]


@pytest.mark.parametrize("registry,spec,option", BAD_OPTIONS,
                         ids=[f"{s['type']}-{o}" for _, s, o in BAD_OPTIONS])
def test_bad_options_raise_value_error_naming_them(registry, spec, option):
    with pytest.raises(ValueError, match=option):
        registry.create(spec)


def test_bad_clipping_thresholds():
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm({"a": np.ones(2)}, 0.0)
    with pytest.raises(ValueError, match="value"):
        clip_grad_value({"a": np.ones(2)}, -1.0)


def test_error_message_names_value_and_range():
    with pytest.raises(ValueError, match=r"momentum must be a number in \[0, 1\), got 1.0"):
        OPTIMIZERS.create({"type": "momentum", "lr": 0.1, "momentum": 1.0})


# -- convergence -----------------------------------------------------------------------------
CONVERGENCE = {  # lr that suits f(w) = ½·Σ a·(w − c)² with curvatures a = 1 and 10
    "sgd": 0.1, "momentum": 0.02, "nesterov": 0.02, "adagrad": 0.5,
    "rmsprop": 0.01, "adam": 0.05, "adamw": 0.05,
}


@pytest.mark.parametrize("name", ALL_OPTIMIZERS)
def test_every_optimizer_minimizes_an_ill_conditioned_quadratic(name):
    a = np.array([1.0, 10.0])
    c = np.array([3.0, -2.0])
    opt = OPTIMIZERS.create({"type": name, "lr": CONVERGENCE[name]})
    params = {"w": np.zeros(2)}
    for _ in range(2000):
        opt.step(params, {"w": a * (params["w"] - c)})
    np.testing.assert_allclose(params["w"], c, atol=1e-3)


def test_plateau_follows_the_direction_of_the_metric_it_is_given():
    rising = SCHEDULES.create({"type": "plateau", "patience": 1})
    for accuracy in [0.5, 0.6, 0.7, 0.8]:   # an accuracy going up: never a stall
        rising.observe(accuracy, "max")
    assert rising.lr_at(4, 1.0, 10) == 1.0
    for accuracy in [0.7, 0.6]:             # going down: two stalls, two halvings
        rising.observe(accuracy, "max")
    assert rising.lr_at(6, 1.0, 10) == 0.25
    fixed = SCHEDULES.create({"type": "plateau", "patience": 1, "mode": "min"})
    for accuracy in [0.5, 0.6]:             # an explicit mode wins over the metric's
        fixed.observe(accuracy, "max")
    assert fixed.lr_at(2, 1.0, 10) == 0.5


def test_the_solver_lowers_a_plateau_rate_only_when_val_accuracy_stalls(tmp_path):
    import json

    from typer.testing import CliRunner

    from dl_cli.cli.app import app

    run_dir = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "train", "configs/quickstart.yaml", "train.epochs=12", "-q", "--run-dir", str(run_dir),
        "schedule={type: plateau, patience: 1}", "optimizer.lr=0.002"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in records if "val/acc" in r]
    best, checked = -math.inf, 0
    for before, after in zip(epochs, epochs[1:]):
        improved = before["val/acc"] > best
        best = max(best, before["val/acc"])
        if improved:
            assert after["lr"] == before["lr"], (before, after)
            checked += 1
    assert checked >= 2 and epochs[-1]["lr"] <= epochs[0]["lr"]
