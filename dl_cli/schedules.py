"""Learning-rate schedules: the rate of each epoch from the configured one.

```python
sched = SCHEDULES.create({"type": "step", "every": 10, "gamma": 0.5})
for epoch in range(epochs):                      # epoch = epochs completed so far
    opt.lr = sched.lr_at(epoch, opt.base_lr, epochs)
    ...                                          # one epoch of optimizer steps
    sched.observe(val_acc, "max")                # only plateau reads it
```
"""

from __future__ import annotations

import math

import numpy as np

from .checks import Rule, check_number, nonnegative, positive_int, require
from .registry import SCHEDULES

PLATEAU_MODES = Rule("'auto', 'min' or 'max'", lambda v: v in ("auto", "min", "max"))


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
