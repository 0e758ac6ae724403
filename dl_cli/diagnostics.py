"""Per-layer statistics of a training epoch: what the notes teach to look at.

For every top-level layer, over the epoch's training batches:

- activation mean and std of its output (vanishing signal: the std shrinks with depth;
  exploding: it grows);
- ``dead``: for ReLU-family layers, the fraction of units never positive over the whole
  epoch (a dead unit passes no gradient, so it stays dead);
- ``saturated``: for sigmoid and tanh layers, the fraction of outputs where the
  derivative is nearly zero (sigmoid within 0.02 of 0 or 1, |tanh| above 0.98);
- ``grad_norm``: the mean L2 norm of the layer's parameter gradient per sampled iteration;
- ``update_ratio``: ‖Δw‖ / ‖w‖ of one optimizer step, measured on sampled iterations
  (about 1e-3 is healthy; far below, the rate is too low; far above, too high).

Cheap enough to leave on (``python -m benchmarks.diagnostics_overhead``): every
iteration only ORs the ReLU masks into the dead-unit count; activation statistics,
gradient norms and update ratios are taken on sampled iterations (the first of every
``sample_every``), where the weights are also copied to measure the update.
"""

from __future__ import annotations

import math

import numpy as np

from .nn.model import Model
from .storage import RunError

RECTIFIERS = ("relu", "leaky_relu", "prelu", "elu")
SATURATION = {"sigmoid": lambda out: (out < 0.02) | (out > 0.98),
              "tanh": lambda out: np.abs(out) > 0.98}


class LayerStats:
    """Running sums for one layer over one epoch."""

    SUMS = ("total", "total_sq", "count", "saturated", "grad_norm_sum", "ratio_sum",
            "sampled_steps")  # what a checkpoint of an epoch stopped midway keeps, in order

    def __init__(self):
        self.total = self.total_sq = 0.0
        self.count = 0
        self.ever_positive: np.ndarray | None = None
        self.saturated = 0
        self.grad_norm_sum = 0.0
        self.ratio_sum = 0.0
        self.sampled_steps = 0

    def state(self) -> dict[str, np.ndarray]:
        sums = {"sums": np.array([float(getattr(self, name)) for name in self.SUMS])}
        return sums if self.ever_positive is None else {**sums, "ever_positive": self.ever_positive}

    def load(self, state: dict[str, np.ndarray]) -> None:
        for name, value in zip(self.SUMS, state["sums"].tolist()):
            setattr(self, name, int(value) if name in ("count", "saturated", "sampled_steps") else value)
        self.ever_positive = state.get("ever_positive")


class Diagnostics:
    """Collects per-layer statistics while a Solver trains; one summary per epoch.

    ```python
    diagnostics = Diagnostics(model)      # hooks the model's layer outputs
    ...                                   # training steps call before_step / after_step
    record["layers"] = diagnostics.summary()   # then starts a fresh epoch
    ```
    """

    def __init__(self, model: Model, sample_every: int = 10):
        self.model = model
        self.sample_every = sample_every
        self.names = [layer.registered_name for layer in model.layers]
        self.params_of = [[f"{i}.{key}" for key in layer.named("params")]
                          for i, layer in enumerate(model.layers)]
        model.chain.observer = self.observe
        self.steps = 0
        self.sampling = True  # whether the current iteration is a sampled one
        self.snapshot: dict[str, np.ndarray] | None = None
        self.stats = [LayerStats() for _ in model.layers]

    def observe(self, index: int, out: np.ndarray, train: bool) -> None:
        """Called by the model's chain with each layer's output."""
        if not train or out.dtype.kind != "f":
            return
        stats, name = self.stats[index], self.names[index]
        if name in RECTIFIERS:
            positive = (out > 0).any(axis=0)
            if stats.ever_positive is not None and stats.ever_positive.shape != positive.shape:
                raise RunError(f"checkpoint 'diagnostics/{index}/ever_positive' has shape "
                               f"{stats.ever_positive.shape}, layer {index} gives {positive.shape}")
            stats.ever_positive = positive if stats.ever_positive is None else stats.ever_positive | positive
        if not self.sampling:
            return
        stats.total += float(out.sum())
        stats.total_sq += float(np.vdot(out, out))
        stats.count += out.size
        if name in SATURATION:
            stats.saturated += int(np.count_nonzero(SATURATION[name](out)))

    def before_step(self) -> None:
        """Decide whether this iteration is sampled; if so, snapshot the weights."""
        self.steps += 1
        self.sampling = self.sample_every == 1 or self.steps % self.sample_every == 1
        if self.sampling:
            self.snapshot = {k: v.copy() for k, v in self.model.params.items()}

    def after_step(self, grads: dict[str, np.ndarray]) -> None:
        if not self.sampling:
            return
        for stats, names in zip(self.stats, self.params_of):
            if names:
                stats.grad_norm_sum += math.sqrt(sum(float(np.vdot(grads[n], grads[n])) for n in names))
                update = sum(float(np.sum((self.model.params[n] - self.snapshot[n]) ** 2)) for n in names)
                weight = sum(float(np.vdot(self.snapshot[n], self.snapshot[n])) for n in names)
                stats.ratio_sum += math.sqrt(update) / max(math.sqrt(weight), 1e-12)
                stats.sampled_steps += 1
        self.snapshot = None

    def summary(self) -> list[dict]:
        """One dict per layer for the epoch; resets the sums."""
        rows = []
        for i, (name, stats) in enumerate(zip(self.names, self.stats)):
            row: dict = {"index": i, "layer": name}
            if stats.count:
                mean = stats.total / stats.count
                row["act_mean"] = mean
                row["act_std"] = math.sqrt(max(stats.total_sq / stats.count - mean * mean, 0.0))
            if stats.ever_positive is not None:
                row["dead"] = float(1.0 - stats.ever_positive.mean())
            if name in SATURATION and stats.count:
                row["saturated"] = stats.saturated / stats.count
            if stats.sampled_steps:
                row["grad_norm"] = stats.grad_norm_sum / stats.sampled_steps
                row["update_ratio"] = stats.ratio_sum / stats.sampled_steps
            rows.append(row)
        self.stats = [LayerStats() for _ in self.model.layers]
        return rows

    def state_dict(self) -> dict[str, np.ndarray]:
        """The sums of the epoch so far (``<layer>/sums``, ``<layer>/ever_positive``) and
        the step count that decides which iterations are sampled (``steps``): a checkpoint
        of an epoch stopped midway keeps them, so the resumed epoch reports what an
        uninterrupted one would."""
        state = {"steps": np.array(self.steps)}
        for i, stats in enumerate(self.stats):
            state.update({f"{i}/{key}": value for key, value in stats.state().items()})
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Continue the sums of ``state_dict``; RunError naming the entry that does not fit."""
        for i, stats in enumerate(self.stats):
            sums, positive = state.get(f"{i}/sums"), state.get(f"{i}/ever_positive")
            if sums is None or sums.shape != (len(LayerStats.SUMS),) or sums.dtype.kind != "f" \
                    or not np.all(np.isfinite(sums)):
                raise RunError(f"checkpoint 'diagnostics/{i}/sums' is missing or is not "
                               f"{len(LayerStats.SUMS)} finite sums")
            if positive is not None and positive.dtype != bool:
                raise RunError(f"checkpoint 'diagnostics/{i}/ever_positive' holds "
                               f"{positive.dtype} values, expected booleans")
            stats.load({"sums": sums, "ever_positive": positive})
        steps = state.get("steps")
        if steps is None or steps.shape != () or steps.dtype.kind not in "iu" or steps < 0:
            raise RunError("checkpoint 'diagnostics/steps' is missing or is not a count")
        self.steps = int(steps)

    def detach(self) -> None:
        self.model.chain.observer = None
