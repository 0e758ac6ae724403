"""Scores of a model on a split: loss, and accuracy or MSE and R².

The metric names are the ones configs monitor: ``val/acc``, ``val/loss``, ``val/mse``,
``val/r2`` (and the same with ``train/`` and ``test/``).
"""

from __future__ import annotations

import numpy as np

from .nn.model import Model

MAXIMIZED = ("acc", "r2")  # every other metric is minimized


def mode_of(metric: str) -> str:
    """``max`` for accuracies and R², ``min`` for losses and errors."""
    return "max" if metric.rsplit("/", 1)[-1] in MAXIMIZED else "min"


def direction(metric: str) -> str:
    """How a metric is improved, in words: "maximized" or "minimized"."""
    return "maximized" if mode_of(metric) == "max" else "minimized"


def resolve_monitor(monitor: str, mode: str, task: str) -> tuple[str, str]:
    """``auto`` monitors val/acc for classifiers and val/loss for regression; mode ``auto``
    follows the metric (``mode_of``)."""
    if monitor == "auto":
        monitor = "val/loss" if task == "regression" else "val/acc"
    return monitor, mode_of(monitor) if mode == "auto" else mode


def reported_metrics(task: str) -> tuple[str, ...]:
    """What ``evaluate`` scores a model of ``task`` by on every split: the loss, and MSE
    and R² for regression, accuracy otherwise."""
    return ("loss", "mse", "r2") if task == "regression" else ("loss", "acc")


def evaluate(model: Model, X: np.ndarray, y: np.ndarray, prefix: str) -> dict[str, float]:
    """Eval-mode scores of ``model`` on ``(X, y)`` (see ``scored``); nothing for no data."""
    if len(X) == 0:
        return {}
    return scored(model.loss_fn, model.scores(X), y, prefix)


def scored(loss_fn, scores: np.ndarray, y: np.ndarray, prefix: str) -> dict[str, float]:
    """The metrics of ``scores`` against targets ``y``: the data loss (no penalty), plus
    accuracy for classifiers, or MSE (``mean (ŷ − y)²``) and
    R² (``1 − Σ(ŷ − y)² / Σ(y − ȳ)²``) for regression."""
    loss, _ = loss_fn(scores, y)
    out = {f"{prefix}/loss": float(loss)}
    predicted = loss_fn.predict(scores)
    if loss_fn.task == "regression":
        target = y.reshape(predicted.shape).astype(np.float64)
        residual = float(np.sum((predicted - target) ** 2))
        total = float(np.sum((target - target.mean(axis=0)) ** 2))
        out[f"{prefix}/mse"] = residual / target.size
        out[f"{prefix}/r2"] = 1.0 - residual / total if total > 0 else float("nan")
    else:
        keep = y != getattr(loss_fn, "ignore_index", None)
        out[f"{prefix}/acc"] = float(np.mean(predicted[keep] == y[keep]))
    return out
