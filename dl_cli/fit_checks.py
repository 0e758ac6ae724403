"""Does the model fit its data? What can only be checked once the data is loaded and the
model built, before anything is trained: refused (ShapeError, DataError) with the key
path to change, or said as a warning (``unused_scores``).

- the loss can compare the model's output with the targets (``check_fits``): one output
  per target value for regression (and for binary cross-entropy on targets in [0, 1],
  an autoencoder's); for classes, labels of the shape the loss takes (one per sample,
  step or pixel) and a score per class on the loss's class axis (one logit for
  binary_cross_entropy);
- a first layer that reads token ids (embedding) gets ids, within its vocabulary;
- a monitored split holds samples (``check_monitored_split``).
"""

from __future__ import annotations

import math

import numpy as np

from .data import DataError, Splits
from .metrics import resolve_monitor
from .nn import ShapeError
from .nn.model import Model
from .schema import Config


def integer_hint(y: np.ndarray) -> str:
    """Why whole-number targets (±1, say) were read as regression, and the fix."""
    values = np.unique(y)
    if not 1 < len(values) <= 100 or np.any(values != np.round(values)):
        return ""
    shown = ", ".join(f"{v:g}" for v in values[:6]) + (", …" if len(values) > 6 else "")
    mapping = ", ".join(f"{v:g} → {i}" for i, v in enumerate(values[:3]))
    return (f" (whole numbers {shown}, read as regression because class labels must be "
            f"0..K-1: for classes, map them, e.g. {mapping})")


LABELS = {0: "one label per sample, (N,)", 1: "a label at every step, (N, T)",
          2: "a label for every pixel, (N, H, W)"}


def class_axis(loss, axes: int) -> int:
    """The axis holding the classes in a sample's scores of ``axes`` axes: 0 of ``(C,)``
    or ``(C, H, W)``, the last of a sequence's ``(T, V)``."""
    return loss.class_axis - 1 if loss.class_axis > 0 else axes + loss.class_axis


def check_fits(model: Model, splits: Splits) -> None:
    """Refuse (ShapeError) a model whose output the loss cannot compare with the targets:
    a regression loss needs one output per target value, and so does binary
    cross-entropy on real-valued targets, which must lie in [0, 1]; a class loss needs
    labels and a score per class on its class axis, the other axes those of the labels
    (steps, pixels; one logit for binary_cross_entropy); a first layer reading token ids
    needs them (``check_tokens``)."""
    check_tokens(model, splits)
    loss, out = model.loss_fn, model.out_shape
    target = splits.train.y.shape[1:]
    name = f"model.loss '{loss.registered_name}'"
    y = splits.train.y
    if loss.task == "classification" and splits.task == "regression":
        raise ShapeError(f"{name} needs class labels, but the data has real-valued targets"
                         f"{integer_hint(y)}; use mse")
    if loss.task == "binary" and splits.task == "regression" and y.size and (
            y.min() < 0 or y.max() > 1):
        raise ShapeError(f"{name} compares probabilities, but the targets go from "
                         f"{y.min():.4g} to {y.max():.4g}{integer_hint(y)}; scale them to "
                         f"[0, 1] (for data.target: input, data.preprocess: [minmax]) or "
                         f"use mse")
    if loss.task == "regression" or splits.task == "regression":
        values = math.prod(target)
        if math.prod(out) != values:
            raise ShapeError(f"{name}: the model gives {math.prod(out)} values per sample, the "
                             f"targets have {values}; set the last layer's units to {values}")
        return
    classes = splits.num_classes
    if loss.task == "classification" and len(target) not in loss.label_axes:
        takes = " or ".join(LABELS[axes] for axes in loss.label_axes)
        has = "one label per sample" if not target else f"labels of shape {target} per sample"
        other = "temporal_softmax_cross_entropy" if len(target) == 1 else "softmax_cross_entropy"
        raise ShapeError(f"{name} takes {takes}, but the data has {has}; use {other}")
    if loss.task == "binary":
        if classes > 2:
            raise ShapeError(f"{name} takes labels 0 and 1, but the data has {classes} "
                             f"classes; use softmax_cross_entropy")
        wanted = (*target, 1)
        fits = out == wanted
    else:
        axis = class_axis(loss, len(target) + 1)
        wanted = (*target[:axis], classes, *target[axis:])
        fits = (len(out) == len(wanted) and out[:axis] + out[axis + 1:] == target
                and out[axis] >= classes)
    if not fits:
        option = "filters" if len(wanted) == 3 else "units"
        raise ShapeError(f"{name}: the model gives scores of shape {out} per sample, but "
                         f"{classes} classes need {wanted}; set the last layer's {option} to "
                         f"{classes if len(wanted) == 3 else wanted[-1]}")


def check_tokens(model: Model, splits: Splits) -> None:
    """Refuse (ShapeError naming the key) a first layer that reads token ids (embedding)
    given real-valued features, or ids beyond its vocabulary."""
    first = model.layers[0]
    if not first.takes_tokens:
        return
    key = f"model.layers.0 ({first.registered_name})"
    features = splits.train.X
    if not np.issubdtype(features.dtype, np.integer):
        raise ShapeError(f"{key} reads integer token ids, but the data gives {features.dtype} "
                         f"features: use a token data set (text) or another first layer")
    largest = max((int(part.X.max()) for part in (splits.train, splits.val, splits.test)
                   if part.X.size), default=-1)
    if largest >= first.vocab:
        raise ShapeError(f"model.layers.0.vocab: {first.vocab} ids are too few, the data's token "
                         f"ids go up to {largest}; set it to {largest + 1}")


def unused_scores(model: Model, splits: Splits) -> str | None:
    """A class model with more scores than the data has classes trains, but the extra
    scores are never a target: their softmax share is only ever pushed down. Often a
    typo in the last layer's units, so it is said (a text model sized for a larger
    vocabulary than its text uses is the legitimate case)."""
    if model.loss_fn.task != "classification" or splits.num_classes is None:
        return None
    out = model.out_shape
    scores, classes = out[class_axis(model.loss_fn, len(out))], splits.num_classes
    if scores <= classes:
        return None
    return (f"the model gives {scores} scores per sample but the data has {classes} classes: "
            f"scores {classes}..{scores - 1} are never a target; set the last layer's units "
            f"to {classes}")


def check_monitored_split(cfg: Config, model: Model, splits: Splits) -> None:
    """A monitored split must hold samples: a fraction of a small data set can round to
    none, and a run monitoring it would keep no best checkpoint and score no test."""
    task = model.loss_fn.task
    monitors = [cfg.checkpoint.monitor]
    if cfg.train.early_stopping is not None:
        monitors.append(cfg.train.early_stopping.monitor)
    for monitor in monitors:
        name = resolve_monitor(monitor, "auto", task)[0]
        if name.startswith("val/") and len(splits.val.X) == 0:
            total = len(splits.train.X) + len(splits.test.X)
            raise DataError(f"data.split.val: {cfg.data.split.val:g} of {total} "
                            f"sample{'s' * (total != 1)} rounds to none, and the run monitors {name}; use more samples "
                            f"or a larger fraction")
