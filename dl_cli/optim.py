"""Optimizers, learning-rate schedules and gradient clipping.

```python
opt = OPTIMIZERS.create({"type": "adam", "lr": 1e-3})
sched = SCHEDULES.create({"type": "step", "every": 10, "gamma": 0.5})
for epoch in range(epochs):                      # epoch = epochs completed so far
    opt.lr = sched.lr_at(epoch, opt.base_lr, epochs)
    for x, y in batches:
        loss, grads = model.loss(x, y)
        clip_grad_norm(grads, max_norm=5.0)
        opt.step(model.params, grads, model.decay)   # parameters updated in place
    sched.observe(val_acc, "max")                # only plateau reads it
```

An optimizer keeps its state per parameter name (``"m/0.W"``: Adam's first moment of
parameter ``0.W``), allocated on first use with the parameter's dtype, so float32 training
stays float32. ``state_dict()`` holds only arrays (it goes into ``.npz`` checkpoints) and
``load_state_dict`` restores it exactly: training continues bit for bit.
"""

from __future__ import annotations

import math

import numpy as np

from .checks import Rule, check_number, fraction, nonnegative, positive, positive_int, require
from .registry import OPTIMIZERS, SCHEDULES

PLATEAU_MODES = Rule("'auto', 'min' or 'max'", lambda v: v in ("auto", "min", "max"))


# -- optimizers ------------------------------------------------------------------------
class Optimizer:
    """Base class: the learning rate, the step count ``t`` and per-parameter state.

    ``lr`` is the current rate (a schedule may change it each epoch); ``base_lr`` is the
    configured one. Subclasses list the names of their state arrays in ``slots`` and
    implement ``update`` for one parameter ``w`` with gradient ``dw``.
    """

    registered_name = "optimizer"
    slots: tuple[str, ...] = ()

    def __init__(self, lr: float):
        self.base_lr = positive("lr", lr)
        self.lr = self.base_lr
        self.t = 0
        self.state: dict[str, np.ndarray] = {}

    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        # a Python float: NumPy float64 scalars would promote float32 updates to float64
        self._lr = float(value)

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray],
             decay=frozenset()) -> None:
        """Update every parameter in place; ``decay`` names those under weight decay."""
        self.t += 1
        for name, w in params.items():
            self.update(name, w, grads[name], name in decay)

    def update(self, name: str, w: np.ndarray, dw: np.ndarray, decayed: bool) -> None:
        raise NotImplementedError

    def slot(self, kind: str, name: str, w: np.ndarray) -> np.ndarray:
        """State array ``kind`` of parameter ``name``: zeros shaped and typed like ``w``
        on first use."""
        key = f"{kind}/{name}"
        if key not in self.state:
            self.state[key] = np.zeros_like(w)
        return self.state[key]

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the state arrays keyed ``"<slot>/<param>"``, and the step count ``"t"``."""
        return {"t": np.array(self.t, dtype=np.int64),
                **{key: value.copy() for key, value in self.state.items()}}

    def load_state_dict(self, state: dict[str, np.ndarray], params: dict[str, np.ndarray]) -> None:
        """Continue from ``state`` to update ``params``: each entry must be one of this
        optimizer's slots for one of them, shaped and typed like it and finite, and after
        a step every slot of every parameter must be there."""
        if "t" not in state:
            raise ValueError(f"{self.registered_name} state has no step count 't'")
        for key, value in state.items():
            if key == "t":
                continue
            slot, _, name = key.partition("/")
            if slot not in self.slots:
                kept = ", ".join(self.slots) or "nothing but t"
                raise ValueError(f"{self.registered_name} state has an unknown entry '{key}'; "
                                 f"it keeps {kept}")
            if name not in params:
                raise ValueError(f"{self.registered_name} state '{key}' belongs to no parameter "
                                 f"of the model")
            w = params[name]
            if value.shape != w.shape or value.dtype != w.dtype:
                raise ValueError(f"{self.registered_name} state '{key}' is {value.dtype} "
                                 f"{value.shape}, the parameter {w.dtype} {w.shape}")
            if not np.isfinite(value).all():
                raise ValueError(f"{self.registered_name} state '{key}' holds non-finite values")
        if int(state["t"]) > 0:
            missing = [f"{slot}/{name}" for slot in self.slots for name in params
                       if f"{slot}/{name}" not in state]
            if missing:
                raise ValueError(f"{self.registered_name} state after {int(state['t'])} steps "
                                 f"lacks {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
        self.t = int(state["t"])
        self.state = {key: np.array(value) for key, value in state.items() if key != "t"}


@OPTIMIZERS.register("sgd")
class SGD(Optimizer):
    """Gradient descent: ``w ← w − lr·g``."""

    def update(self, name, w, dw, decayed):
        w -= self.lr * dw


@OPTIMIZERS.register("momentum")
class Momentum(Optimizer):
    """Momentum: a velocity accumulates past gradients, ``v ← μ·v − lr·g``, ``w ← w + v``.

    Along a steady gradient the step grows towards ``lr·g/(1 − μ)``; components that
    change sign from step to step cancel out.
    """

    slots = ("velocity",)

    def __init__(self, lr: float, momentum: float = 0.9):
        super().__init__(lr)
        self.momentum = fraction("momentum", momentum)

    def update(self, name, w, dw, decayed):
        v = self.slot("velocity", name, w)
        v *= self.momentum
        v -= self.lr * dw
        w += v


@OPTIMIZERS.register("nesterov")
class Nesterov(Momentum):
    """Nesterov momentum (NAG): ``v ← μ·v − lr·g``, ``w ← w + μ·v − lr·g``.

    The same velocity as momentum, but the step looks ahead along the new velocity: this
    is the update with the gradient taken at ``w + μ·v``, rewritten in terms of the
    gradient at the current ``w``.
    """

    def update(self, name, w, dw, decayed):
        v = self.slot("velocity", name, w)
        lr_dw = self.lr * dw
        v *= self.momentum
        v -= lr_dw
        w += self.momentum * v
        w -= lr_dw


@OPTIMIZERS.register("adagrad")
class Adagrad(Optimizer):
    """Adagrad: each coordinate's rate shrinks with the gradients it has seen,
    ``s ← s + g²``, ``w ← w − lr·g/(√s + ε)``."""

    slots = ("sum_sq",)

    def __init__(self, lr: float, eps: float = 1e-8):
        super().__init__(lr)
        self.eps = positive("eps", eps)

    def update(self, name, w, dw, decayed):
        s = self.slot("sum_sq", name, w)
        s += dw * dw
        w -= self.lr * dw / (np.sqrt(s) + self.eps)


@OPTIMIZERS.register("rmsprop")
class RMSprop(Optimizer):
    """RMSprop: Adagrad with a leaky average, ``s ← ρ·s + (1 − ρ)·g²``,
    ``w ← w − lr·g/(√s + ε)`` with ``ρ = decay_rate``."""

    slots = ("mean_sq",)

    def __init__(self, lr: float, decay_rate: float = 0.99, eps: float = 1e-8):
        super().__init__(lr)
        self.decay_rate = fraction("decay_rate", decay_rate)
        self.eps = positive("eps", eps)

    def update(self, name, w, dw, decayed):
        s = self.slot("mean_sq", name, w)
        s *= self.decay_rate
        s += (1 - self.decay_rate) * dw * dw
        w -= self.lr * dw / (np.sqrt(s) + self.eps)


@OPTIMIZERS.register("adam")
class Adam(Optimizer):
    """Adam: momentum on ``g`` and RMSprop on ``g²``, both bias-corrected.

    ``m ← β₁·m + (1 − β₁)·g``, ``v ← β₂·v + (1 − β₂)·g²``,
    ``m̂ = m/(1 − β₁ᵗ)``, ``v̂ = v/(1 − β₂ᵗ)``, ``w ← w − lr·m̂/(√v̂ + ε)``.
    The corrections undo the pull towards the zero initial moments in the first steps.
    """

    slots = ("m", "v")

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8):
        super().__init__(lr)
        self.beta1 = fraction("beta1", beta1)
        self.beta2 = fraction("beta2", beta2)
        self.eps = positive("eps", eps)

    def direction(self, name: str, w: np.ndarray, dw: np.ndarray) -> np.ndarray:
        """Update the moments of ``name`` and return ``m̂/(√v̂ + ε)`` in a new array.

        With ``c₁ = 1 − β₁ᵗ`` and ``c₂ = 1 − β₂ᵗ`` it equals ``(√c₂/c₁)·m/(√v + ε√c₂)``:
        the corrections fold into two scalars, so m̂ and v̂ are never materialized.
        """
        m = self.slot("m", name, w)
        v = self.slot("v", name, w)
        m *= self.beta1
        m += (1 - self.beta1) * dw
        v *= self.beta2
        squared = dw * dw
        squared *= 1 - self.beta2
        v += squared
        root_c2 = math.sqrt(1 - self.beta2 ** self.t)
        denominator = np.sqrt(v)
        denominator += self.eps * root_c2
        step = np.divide(m, denominator, out=denominator)
        step *= root_c2 / (1 - self.beta1 ** self.t)
        return step

    def update(self, name, w, dw, decayed):
        step = self.direction(name, w, dw)
        step *= self.lr
        w -= step


@OPTIMIZERS.register("adamw")
class AdamW(Adam):
    """Adam with decoupled weight decay on the parameters named in ``decay``:
    ``w ← w − lr·(m̂/(√v̂ + ε) + wd·w)`` with ``wd = weight_decay``.

    The decay shrinks the weights directly instead of entering ``g`` (as L2 would), so
    Adam's per-coordinate scaling does not weaken it where gradients are large.
    """

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, weight_decay: float = 0.01):
        super().__init__(lr, beta1, beta2, eps)
        self.weight_decay = nonnegative("weight_decay", weight_decay)

    def update(self, name, w, dw, decayed):
        step = self.direction(name, w, dw)
        if decayed:
            w *= 1 - self.lr * self.weight_decay
        step *= self.lr
        w -= step


# -- learning-rate schedules -----------------------------------------------------------
class Schedule:
    """Base class: ``lr_at(epoch, base_lr, total_epochs)`` gives the rate for the coming
    epoch, ``epoch`` being the number of epochs completed (0 before the first).
    Schedules without state ignore ``observe`` and have an empty ``state_dict``."""

    registered_name = "schedule"
    floor = 0.0  # the lowest rate it sets on its own (cosine's and plateau's min_lr)

    def lr_at(self, epoch: int, base_lr: float, total_epochs: int) -> float:
        raise NotImplementedError

    def horizon(self, total_epochs: int) -> dict:
        """The options that keep this schedule's rates when the run it was made for, of
        ``total_epochs``, is trained longer; none for a schedule that does not look at
        the run's length."""
        return {}

    def observe(self, value: float, goal: str = "min") -> None:
        """Take the monitored validation metric after an epoch; ``goal`` says whether
        lower (``min``, a loss) or higher (``max``, an accuracy) is better."""

    def state_dict(self) -> dict[str, np.ndarray]:
        return {}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        if state:
            raise ValueError(f"schedule '{self.registered_name}' keeps no state, "
                             f"got {', '.join(sorted(state))}")


@SCHEDULES.register("constant")
class Constant(Schedule):
    """``lr = lr₀`` every epoch."""

    def lr_at(self, epoch, base_lr, total_epochs):
        return float(base_lr)


@SCHEDULES.register("step")
class Step(Schedule):
    """Step decay, "halve every x epochs": ``lr = lr₀·γ^⌊t/every⌋``."""

    def __init__(self, every: int, gamma: float = 0.5):
        self.every = positive_int("every", every)
        self.gamma = check_number("gamma", gamma, "in (0, 1]", lambda x: 0 < x <= 1)

    def lr_at(self, epoch, base_lr, total_epochs):
        return base_lr * self.gamma ** (epoch // self.every)


@SCHEDULES.register("exponential")
class Exponential(Schedule):
    """Exponential decay: ``lr = lr₀·e^(−k·t)``."""

    def __init__(self, k: float):
        self.k = nonnegative("k", k)

    def lr_at(self, epoch, base_lr, total_epochs):
        return base_lr * math.exp(-self.k * epoch)


@SCHEDULES.register("inverse_time")
class InverseTime(Schedule):
    """Inverse-time decay: ``lr = lr₀/(1 + k·t)``."""

    def __init__(self, k: float):
        self.k = nonnegative("k", k)

    def lr_at(self, epoch, base_lr, total_epochs):
        return base_lr / (1 + self.k * epoch)


@SCHEDULES.register("cosine")
class Cosine(Schedule):
    """Cosine annealing from lr₀ down to ``min_lr`` over ``T`` epochs, then ``min_lr``:
    ``lr = min_lr + (lr₀ − min_lr)·(1 + cos(π·min(t, T)/T))/2``.
    ``T = epochs``, or the whole run when ``epochs`` is none."""

    def __init__(self, epochs: int | None = None, min_lr: float = 0.0):
        self.epochs = None if epochs is None else positive_int("epochs", epochs)
        self.min_lr = nonnegative("min_lr", min_lr)

    @property
    def floor(self) -> float:
        return self.min_lr

    def horizon(self, total_epochs):
        return {} if self.epochs is not None else {"epochs": total_epochs}

    def lr_at(self, epoch, base_lr, total_epochs):
        span = self.epochs or total_epochs
        progress = min(epoch, span) / span if span > 0 else 1.0
        return self.min_lr + (base_lr - self.min_lr) * (1 + math.cos(math.pi * progress)) / 2


@SCHEDULES.register("warmup")
class Warmup(Schedule):
    """Linear warmup: ``lr = lr₀·(t + 1)/N`` for the first ``N = epochs`` epochs
    (lr₀/N, 2·lr₀/N, ..., lr₀), then the ``after`` schedule on the remaining epochs (it
    sees epoch ``t − N`` of ``total − N``), or lr₀ when ``after`` is none."""

    def __init__(self, epochs: int, after=None):
        self.epochs = positive_int("epochs", epochs)
        self.after = after
        self.after_schedule = None if after is None else SCHEDULES.create(after)

    @property
    def floor(self) -> float:
        return 0.0 if self.after_schedule is None else self.after_schedule.floor

    def horizon(self, total_epochs):
        if self.after_schedule is None:
            return {}
        after = self.after_schedule.horizon(total_epochs - self.epochs)
        if not after:
            return {}
        spec = {"type": self.after} if isinstance(self.after, str) else dict(self.after)
        return {"after": {**spec, **after}}

    def lr_at(self, epoch, base_lr, total_epochs):
        if epoch < self.epochs:
            return base_lr * (epoch + 1) / self.epochs
        if self.after_schedule is None:
            return float(base_lr)
        return self.after_schedule.lr_at(epoch - self.epochs, base_lr, total_epochs - self.epochs)

    def observe(self, value, goal="min"):
        if self.after_schedule is not None:
            self.after_schedule.observe(value, goal)

    def state_dict(self):
        if self.after_schedule is None:
            return {}
        return {f"after/{key}": value for key, value in self.after_schedule.state_dict().items()}

    def load_state_dict(self, state):
        if self.after_schedule is None:
            super().load_state_dict(state)
            return
        stray = sorted(key for key in state if not key.startswith("after/"))
        if stray:
            raise ValueError(f"warmup state has unknown entries: {', '.join(stray)}")
        self.after_schedule.load_state_dict(
            {key.removeprefix("after/"): value for key, value in state.items()})


@SCHEDULES.register("plateau")
class Plateau(Schedule):
    """Reduce on plateau: after ``patience`` epochs in a row in which the monitored metric
    did not improve on its best by more than ``min_delta`` (lower is better for mode
    ``min``, higher for ``max``; ``auto`` follows the metric: ``min`` for a loss, ``max``
    for an accuracy), multiply the rate by ``factor``; never below ``min_lr``.
    After r reductions ``lr = max(lr₀·factorʳ, min_lr)``."""

    def __init__(self, factor: float = 0.5, patience: int = 5, mode: str = "auto",
                 min_delta: float = 0.0, min_lr: float = 0.0):
        self.factor = check_number("factor", factor, "in (0, 1)", lambda x: 0 < x < 1)
        self.patience = positive_int("patience", patience)
        self.mode = require("mode", mode, PLATEAU_MODES)
        self.min_delta = nonnegative("min_delta", min_delta)
        self.min_lr = nonnegative("min_lr", min_lr)
        self.best = math.nan  # no value seen yet
        self.bad_epochs = 0
        self.reductions = 0

    @property
    def floor(self) -> float:
        return self.min_lr

    def lr_at(self, epoch, base_lr, total_epochs):
        return max(base_lr * self.factor ** self.reductions, self.min_lr)

    def improved(self, value: float, goal: str) -> bool:
        if math.isnan(self.best):
            return True
        if goal == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def observe(self, value, goal="min"):
        value = float(value)
        if math.isfinite(value) and self.improved(value, goal if self.mode == "auto" else self.mode):
            self.best, self.bad_epochs = value, 0
            return
        self.bad_epochs += 1
        if self.bad_epochs >= self.patience:
            self.reductions += 1
            self.bad_epochs = 0

    def state_dict(self):
        return {"best": np.array(self.best, dtype=np.float64),
                "bad_epochs": np.array(self.bad_epochs, dtype=np.int64),
                "reductions": np.array(self.reductions, dtype=np.int64)}

    def load_state_dict(self, state):
        expected = {"best", "bad_epochs", "reductions"}
        if set(state) != expected:
            raise ValueError(f"plateau state needs exactly {', '.join(sorted(expected))}, "
                             f"got {', '.join(sorted(state)) or 'nothing'}")
        best = float(state["best"])
        self.best = best if math.isfinite(best) else math.nan
        self.bad_epochs = int(state["bad_epochs"])
        self.reductions = int(state["reductions"])


# -- gradient clipping -----------------------------------------------------------------
def global_norm(grads: dict[str, np.ndarray]) -> float:
    """``√(Σ over every gradient array of Σ g²)``: the L2 norm of all gradients as one vector."""
    return math.sqrt(sum(float(np.vdot(g, g)) for g in grads.values()))


def clip_grad_norm(grads: dict[str, np.ndarray], max_norm: float) -> float:
    """Rescale every gradient in place by ``max_norm/‖g‖`` when the global norm ``‖g‖``
    exceeds ``max_norm`` (the direction is kept); return the norm before clipping."""
    max_norm = positive("max_norm", max_norm)
    norm = global_norm(grads)
    if norm > max_norm:
        scale = max_norm / norm
        for g in grads.values():
            g *= scale
    return norm


def clip_grad_value(grads: dict[str, np.ndarray], value: float) -> None:
    """Clamp every gradient entry to ``[−value, value]`` in place."""
    value = positive("value", value)
    for g in grads.values():
        np.clip(g, -value, value, out=g)
