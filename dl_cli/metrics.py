"""Scores of a model on a split: loss, and accuracy or MSE and R².

The metric names are the ones configs monitor: ``val/acc``, ``val/loss``, ``val/mse``,
``val/r2`` (and the same with ``train/`` and ``test/``). Per-pixel labels (segmentation)
add ``miou``, the mean intersection over union of the classes; their ``acc`` is the
pixel accuracy.
"""

from __future__ import annotations

import numpy as np

from .nn.model import Model

MAXIMIZED = ("acc", "r2", "miou")  # every other metric is minimized


def mode_of(metric: str) -> str:
    """``max`` for accuracies and R², ``min`` for losses and errors."""
    return "max" if metric.rsplit("/", 1)[-1] in MAXIMIZED else "min"


def direction(metric: str) -> str:
    """How a metric is improved, in words: "maximized" or "minimized"."""
    return "maximized" if mode_of(metric) == "max" else "minimized"


def run_task(loss_task: str, real_targets: bool = False, per_pixel: bool = False) -> str:
    """How a run is scored: the loss's task (classification, binary, regression), except
    that real-valued targets (a reconstruction, ``data.target: input``) are scored as
    regression whatever the loss, and class labels of every pixel as ``segmentation``."""
    if real_targets:
        return "regression"
    if per_pixel and loss_task == "classification":
        return "segmentation"
    return loss_task


def config_task(loss, dataset, target: str) -> str:
    """``run_task`` as a config sets it, from the loss and the data set it builds and its
    ``data.target``: the loss's task, that of real-valued targets for ``input``, and of
    labels of every pixel for a data set that has them (``Dataset.per_pixel``)."""
    per_pixel = dataset is not None and dataset.per_pixel
    return run_task(loss.task, target == "input", per_pixel)


def resolve_monitor(monitor: str, mode: str, task: str) -> tuple[str, str]:
    """``auto`` monitors val/acc for classifiers and val/loss for regression; mode ``auto``
    follows the metric (``mode_of``)."""
    if monitor == "auto":
        monitor = "val/loss" if task == "regression" else "val/acc"
    return monitor, mode_of(monitor) if mode == "auto" else mode


def reported_metrics(task: str) -> tuple[str, ...]:
    """What ``evaluate`` scores a model of ``task`` (``run_task``) by on every split: the
    loss, and MSE and R² for regression, accuracy otherwise, and mean IoU for
    segmentation."""
    if task == "regression":
        return ("loss", "mse", "r2")
    return ("loss", "acc", "miou") if task == "segmentation" else ("loss", "acc")


def mean_iou(predicted: np.ndarray, y: np.ndarray, classes: int) -> float:
    """``mean_c |P_c ∩ T_c| / |P_c ∪ T_c|`` over the pixels predicted (P_c) and labelled
    (T_c) class c, for the classes in either; the intersections and unions are counted
    over the whole split (one confusion matrix), not averaged over images."""
    confusion = np.bincount(classes * y.ravel() + predicted.ravel(),
                            minlength=classes * classes).reshape(classes, classes)
    hits = np.diag(confusion)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - hits
    present = union > 0
    return float(np.mean(hits[present] / union[present])) if present.any() else float("nan")


def evaluate(model: Model, X: np.ndarray, y: np.ndarray, prefix: str) -> dict[str, float]:
    """Eval-mode scores of ``model`` on ``(X, y)`` (see ``scored``); nothing for no data."""
    if len(X) == 0:
        return {}
    return scored(model.loss_fn, model.scores(X), y, prefix)


def scored(loss_fn, scores: np.ndarray, y: np.ndarray, prefix: str) -> dict[str, float]:
    """The metrics of ``scores`` against targets ``y``: the data loss (no penalty), plus
    accuracy for class labels (of every pixel with labels ``(N, H, W)``, which add
    ``mean_iou``), or, for real-valued targets, MSE (``mean (ŷ − y)²``) and R²
    (``1 − Σ(ŷ − y)² / Σ(y − ȳ)²``) of the loss's ``values``. Labels equal to the loss's
    ``ignore_index`` count for neither."""
    loss, _ = loss_fn(scores, y)
    out = {f"{prefix}/loss": float(loss)}
    if y.dtype.kind == "f":
        target = y.astype(np.float64)
        predicted = loss_fn.values(scores).reshape(target.shape)
        residual = float(np.sum((predicted - target) ** 2))
        total = float(np.sum((target - target.mean(axis=0)) ** 2))
        out[f"{prefix}/mse"] = residual / target.size
        out[f"{prefix}/r2"] = 1.0 - residual / total if total > 0 else float("nan")
    else:
        predicted = loss_fn.predict(scores)
        keep = y != getattr(loss_fn, "ignore_index", None)
        out[f"{prefix}/acc"] = float(np.mean(predicted[keep] == y[keep]))
        if y.ndim == 3:
            out[f"{prefix}/miou"] = mean_iou(predicted[keep], y[keep], scores.shape[1])
    return out
