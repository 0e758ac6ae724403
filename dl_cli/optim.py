"""Optimizers and gradient clipping.

```python
opt = OPTIMIZERS.create({"type": "adam", "lr": 1e-3})
for x, y in batches:
    loss, grads = model.loss(x, y)
    clip_grad_norm(grads, max_norm=5.0)
    opt.step(model.params, grads, model.decay)   # parameters updated in place
```

The classes read top-down by increasing complexity: SGD, Momentum, Nesterov, Adagrad,
RMSprop, Adam, AdamW. An optimizer keeps its state per parameter name (``"m/0.W"``: Adam's
first moment of parameter ``0.W``), allocated on first use with the parameter's dtype, so
float32 training stays float32. The updates write their intermediate values into one
work array per parameter, kept between steps (``work``), never into new arrays.
``state_dict()`` holds only arrays (it goes into ``.npz`` checkpoints) and
``load_state_dict`` restores it exactly: training continues bit for bit. The learning
rate each epoch comes from ``schedules.py``.
"""

from __future__ import annotations

import math

import numpy as np

from .checks import fraction, nonnegative, positive
from .registry import OPTIMIZERS


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
        self.work_arrays: dict[str, np.ndarray] = {}

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

    def work(self, name: str, w: np.ndarray) -> np.ndarray:
        """A work array shaped and typed like ``w``, the same one at every step: where an
        update needs ``lr·g`` or ``g²``, it writes it here. Not state (its values do not
        outlive the update, and it is not saved). A new array of a few MB every step
        costs page faults, the system handing its memory back and forth: 770 a step for
        W1's 784×512 float64 weights, whose update then took a fifth of the step
        (``benchmarks/README.md``)."""
        if name not in self.work_arrays:
            self.work_arrays[name] = np.empty_like(w)
        return self.work_arrays[name]

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
        w -= np.multiply(self.lr, dw, out=self.work(name, w))


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
        v -= np.multiply(self.lr, dw, out=self.work(name, w))
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
        lr_dw = np.multiply(self.lr, dw, out=self.work(name, w))
        v *= self.momentum
        v -= lr_dw
        w -= lr_dw
        w += np.multiply(self.momentum, v, out=lr_dw)


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
        s += np.multiply(dw, dw, out=self.work(name, w))
        w -= scaled_step(self.lr, dw, s, self.eps, self.work(name, w))


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
        squared = np.multiply(dw, dw, out=self.work(name, w))
        squared *= 1 - self.decay_rate
        s += squared
        w -= scaled_step(self.lr, dw, s, self.eps, self.work(name, w))


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
        """Update the moments of ``name`` and return ``m̂/(√v̂ + ε)``, in the work array.

        With ``c₁ = 1 − β₁ᵗ`` and ``c₂ = 1 − β₂ᵗ`` it equals ``(√c₂/c₁)·m/(√v + ε√c₂)``:
        the corrections fold into two scalars, so m̂ and v̂ are never materialized.
        """
        m = self.slot("m", name, w)
        v = self.slot("v", name, w)
        work = self.work(name, w)
        m *= self.beta1
        m += np.multiply(1 - self.beta1, dw, out=work)
        v *= self.beta2
        squared = np.multiply(dw, dw, out=work)
        squared *= 1 - self.beta2
        v += squared
        root_c2 = math.sqrt(1 - self.beta2 ** self.t)
        denominator = np.sqrt(v, out=work)
        denominator += self.eps * root_c2
        step = np.divide(m, denominator, out=work)
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


def scaled_step(lr: float, dw: np.ndarray, s: np.ndarray, eps: float,
                work: np.ndarray) -> np.ndarray:
    """``lr·g/(√s + ε)``, Adagrad's and RMSprop's step, computed in ``work``."""
    step = np.sqrt(s, out=work)
    step += eps
    np.divide(dw, step, out=step)
    step *= lr
    return step


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
