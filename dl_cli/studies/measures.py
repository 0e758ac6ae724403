"""The numbers a study's report shows, measured on its trials (and the tests assert).

Each returns a dict keyed by configuration label. Models are rebuilt from a trial's
resolved config; weights are read from its ``checkpoints/last.npz`` (the weights training
ended with), which every trial keeps when the spec says ``keep_checkpoints: all``.
"""

from __future__ import annotations

import json
import math
import statistics

import numpy as np

from ..config import config_to_dict
from ..data import load
from ..nn.model import Model
from ..schema import Config
from ..components import build_model
from .study import Group, Study, Trial, finite, metric_of

_data_cache: dict[str, object] = {}


def data_of(cfg: Config):
    """The splits of ``cfg``, loaded once per data config, seed and dtype."""
    key = json.dumps([config_to_dict(cfg)["data"], cfg.seed, cfg.train.dtype], sort_keys=True)
    if key not in _data_cache:
        _data_cache[key] = load(cfg.data, seed=cfg.seed, dtype=cfg.train.dtype)
    return _data_cache[key]


def batch_of(cfg: Config, size: int) -> tuple[np.ndarray, np.ndarray]:
    splits = data_of(cfg)
    return splits.train.X[:size], splits.train.y[:size]


def model_of(cfg: Config) -> Model:
    """The model of ``cfg``, freshly initialized, for the shape of its data."""
    return build_model(cfg, data_of(cfg).in_shape)


def mean_curve(group: Group, key: str) -> tuple[list[int], list[float]]:
    """``key`` per epoch, the mean over the trials that logged it and did not diverge."""
    by_epoch: dict[int, list[float]] = {}
    for trial in group.trials:
        if trial.diverged:
            continue
        for record in trial.records:
            value = finite(record.get(key))
            if value is not None:
                by_epoch.setdefault(record["epoch"], []).append(value)
    epochs = sorted(by_epoch)
    return epochs, [statistics.fmean(by_epoch[e]) for e in epochs]


# -- the signal through depth ----------------------------------------------------------
def activation_std_at_init(study: Study, size: int = 256) -> dict[str, list[tuple[str, float]]]:
    """Per configuration: the standard deviation of every parameter-free layer's output
    (the activations) when ``size`` training samples go through the freshly initialized
    model of its first seed, in eval mode."""
    found = {}
    for group in study.groups:
        x, _ = batch_of(group.config, size)
        model = build_model(group.config, x.shape[1:])
        x = x.astype(model.dtype)
        stds = []
        for layer in model.layers:
            x = layer.forward(x, train=False)
            if not layer.named("params"):
                stds.append((layer.registered_name, float(x.std())))
        found[group.label] = stds
    return found


def gradient_norms(study: Study, epoch: str = "first") -> tuple[dict[str, list[float]], str]:
    """Per configuration: each weighted layer's gradient norm, input to output, the mean
    over seeds, from the ``layers`` rows ``train.diagnostics`` adds to the ``first`` or
    ``last`` epoch's line. Without those rows, one batch's gradient at initialization.
    Returns the norms and where they come from."""
    found, source = {}, f"{epoch} epoch (train.diagnostics)"
    for group in study.groups:
        per_trial = []
        for trial in group.trials:
            if not trial.records:
                continue
            rows = trial.records[0 if epoch == "first" else -1].get("layers") or []
            norms = [row["grad_norm"] for row in rows if "grad_norm" in row]
            if norms:
                per_trial.append(norms)
        if not per_trial:
            found[group.label] = gradient_norms_at_init(group.config)
            source = "one batch at initialization (no train.diagnostics rows in metrics.jsonl)"
        else:
            found[group.label] = [statistics.fmean(col) for col in zip(*per_trial)]
    return found, source


def gradient_norms_at_init(cfg: Config, size: int = 256) -> list[float]:
    x, y = batch_of(cfg, size)
    model = build_model(cfg, x.shape[1:])
    _, grads = model.loss(x, y)
    norms = []
    for i, layer in enumerate(model.layers):
        names = [f"{i}.{key}" for key in layer.named("params")]
        if names:
            norms.append(math.sqrt(sum(float(np.vdot(grads[n], grads[n])) for n in names)))
    return norms


def depth_of(cfg: Config, in_shape: tuple) -> int:
    """Weighted layers on the main path (affine and conv layers, residual bodies
    included, projection shortcuts not)."""
    model = build_model(cfg, in_shape)
    return sum(1 for path, layer in model.chain.walk("")
               if "W" in layer.params and "shortcut" not in path.split("."))


def model_costs(study: Study) -> dict[str, tuple[int, int]]:
    """Per configuration: (parameters, multiply-adds per sample)."""
    found = {}
    for group in study.groups:
        rows = model_of(group.config).summary()
        found[group.label] = (sum(r["params"] for r in rows), sum(r["macs"] for r in rows))
    return found


# -- the weights training ended with -----------------------------------------------------
def decayed_weights(trial: Trial) -> np.ndarray | None:
    """Every weight under L1/L2 (never biases, gamma or beta) at the end of training,
    flattened; None without a checkpoint."""
    params = trial.weights()
    if params is None:
        return None
    return np.concatenate([params[name].ravel() for name in sorted(model_of(trial.config).decay)])


def of_decayed_weights(study: Study, measure) -> dict[str, list[float]]:
    """Per configuration, per trial that did not diverge and kept a checkpoint:
    ``measure`` of its decayed weights."""
    found = {}
    for group in study.groups:
        weights = [decayed_weights(t) for t in group.trials if not t.diverged]
        found[group.label] = [measure(w) for w in weights if w is not None]
    return found


def near_zero_fraction(study: Study, threshold: float) -> dict[str, list[float]]:
    """Per configuration, per trial: the share of decayed weights with |w| < threshold."""
    return of_decayed_weights(study, lambda w: float(np.mean(np.abs(w) < threshold)))


def weight_norms(study: Study) -> dict[str, list[float]]:
    """Per configuration, per trial: ‖w‖, the L2 norm of all decayed weights."""
    return of_decayed_weights(study, lambda w: float(np.linalg.norm(w)))


def first_weight(params: dict[str, np.ndarray]) -> str:
    """The name of the first layer's weight: ``2.W`` before ``10.W`` (layer order, not
    string order)."""
    return min((name for name in params if name.endswith(".W")),
               key=lambda name: [int(part) for part in name.split(".") if part.isdigit()])


def learned_weights(study: Study) -> dict[str, np.ndarray]:
    """Per configuration: the mean over seeds of the first layer's weight vector."""
    found = {}
    for group in study.groups:
        vectors = []
        for trial in group.trials:
            params = trial.weights()
            if params is not None:
                vectors.append(params[first_weight(params)].ravel())
        if vectors:
            found[group.label] = np.mean(vectors, axis=0)
    return found


# -- the metric over epochs and learning rates -------------------------------------------
def epochs_to_target(study: Study, target: float, key: str | None = None) -> dict[str, list[int | None]]:
    """Per configuration, per trial: the first epoch whose ``key`` (the sweep's metric)
    reaches ``target`` (at or above it for a maximized metric); None if never."""
    key = key or study.spec.metric
    sign = 1.0 if study.spec.goal == "max" else -1.0
    found = {}
    for group in study.groups:
        found[group.label] = [next((r["epoch"] for r in t.records if finite(r.get(key)) is not None
                                    and sign * r[key] >= sign * target), None) for t in group.trials]
    return found


def spread_across(study: Study) -> dict[str, float]:
    """Per variant: max − min of its configurations' mean metric (over the values of the
    swept parameter); a configuration whose trials all diverged in their first epoch, so
    reported nothing, counts as 0."""
    found: dict[str, list[float]] = {}
    for group in study.groups:
        value = group.mean(metric_of)
        found.setdefault(group.variant, []).append(0.0 if value is None else value)
    return {variant: max(v) - min(v) for variant, v in found.items()}
