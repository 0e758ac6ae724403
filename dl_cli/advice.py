"""Read a finished run and say, in the notes' terms, what went wrong and what to try.

Each finding cites the figures it rests on. The rules:

- high variance: train accuracy above validation accuracy by more than 0.1 (regression:
  validation loss over twice the training loss) → more data, L2, dropout, augmentation,
  early stopping;
- high bias: both accuracies poor and close (train below 0.9, gap under 0.05; regression:
  train R² below 0.8) → a bigger network, longer training; said only when no finding
  below explains the poor fit (a learning rate too low, vanishing gradients, dead units):
  a network that barely trains is not shown to be too small;
- vanishing / exploding gradients: the first weighted layer's gradient norm over 1000×
  below (above) the last one's, in the last epoch that measured them (needs
  ``train.diagnostics``), or a non-finite loss → ReLU, He init, batchnorm, residual
  connections, clipping;
- dead units: a ReLU layer with more than half its units never positive in an epoch
  (the gradients before it then vanish too, and are not reported apart);
- learning rate too high: the run diverged; or a classifier's training loss reached, at
  any epoch, over 100× the log C of guessing uniformly among C classes (scores blown up,
  whatever the fit looks like afterwards); or the training objective rose by more than
  5% of where it started in at least 40% of the epochs and ended above 90% of where it
  started (smaller rises are the noise of minibatches, dropout and batchnorm);
- learning rate too low: the objective never moved 5% from its first epoch while the fit
  stays poor (train accuracy below 0.9, or training R² below 0.8), or updates below 1e-5
  of the weights; not said when vanishing gradients or dead units explain a loss that
  does not move.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from .runs import Run

VARIANCE_GAP = 0.1
BIAS_ACCURACY, BIAS_GAP, BIAS_R2 = 0.9, 0.05, 0.8
GRADIENT_SPREAD = 1e3
DEAD_FRACTION = 0.5
RISING_SHARE, FLAT_CHANGE, TINY_UPDATE = 0.4, 0.05, 1e-5
BLOWN_UP = 100  # a loss this many times that of guessing uniformly


@dataclass
class Finding:
    title: str
    evidence: str
    advice: str


def read_run(run_dir: Path) -> tuple[list[dict], dict]:
    """The run's metric records (without a last line cut short) and its summary."""
    run = Run(run_dir)
    return run.read_metrics(), run.read_summary()


def diagnose(records: list[dict], summary: dict) -> list[Finding]:
    diverged = _divergence(records, summary)
    if diverged:  # its last figures show the blow-up, not how well the model fits
        return diverged
    epochs = [r for r in records if "train/loss" in r]
    if not epochs:
        return []
    blown_up = _blown_up(epochs, summary)
    if blown_up:  # as for a divergence: the accuracies say nothing about capacity
        return blown_up
    dead = _dead_units(epochs[-1])
    causes = _gradients(epochs, dead_units=bool(dead)) + dead
    rate = _learning_rate(epochs, explained=bool(causes))
    return _fit(epochs[-1], explained=bool(causes or rate)) + causes + rate


def _fit(last: dict, explained: bool) -> list[Finding]:
    """High variance or high bias at the last epoch; high bias only when nothing else
    (``explained``) accounts for a poor fit."""
    if "train/acc" in last and "val/acc" in last:
        train, val = last["train/acc"], last["val/acc"]
        if train - val > VARIANCE_GAP:
            return [Finding("high variance (overfitting)",
                            f"train accuracy {train:.3f} vs validation {val:.3f} at epoch {last['epoch']}",
                            "more data, L2 or L1 regularization, dropout, data augmentation, early stopping")]
        if train < BIAS_ACCURACY and abs(train - val) < BIAS_GAP and not explained:
            return [Finding("high bias (underfitting)",
                            f"train accuracy {train:.3f} and validation {val:.3f} are both low and close",
                            "a bigger network (more units or layers), longer training, less regularization")]
    elif "train/loss" in last and "val/loss" in last:
        train, val = last["train/loss"], last["val/loss"]
        if val > 2 * train and val - train > 1e-6:
            return [Finding("high variance (overfitting)",
                            f"validation loss {val:.4g} is {val / max(train, 1e-12):.1f}× the training loss {train:.4g}",
                            "more data, L2 regularization (weight decay), early stopping")]
        if last.get("train/r2", 1.0) < BIAS_R2 and not explained:
            return [Finding("high bias (underfitting)",
                            f"training R² is only {last['train/r2']:.3f}",
                            "a richer model (more features, units or layers), longer training")]
    return []


def _divergence(records: list[dict], summary: dict) -> list[Finding]:
    diverged = summary.get("status") == "diverged" or any(r.get("status") == "diverged" for r in records)
    if not diverged:
        return []
    message = next((r.get("error", "") for r in records if r.get("status") == "diverged"), "")
    return [Finding("exploding gradients or divergence",
                    f"training stopped on a non-finite value: {message}".rstrip(": "),
                    "a lower learning rate, gradient clipping (train.clip_grad_norm), batchnorm, "
                    "careful initialization (He for ReLU)")]


def _gradients(epochs: list[dict], dead_units: bool) -> list[Finding]:
    """Compare the first and last weighted layers' gradient norms, in the last epoch
    that sampled them (an epoch of few iterations may sample none). With ``dead_units``
    no gradient is said to vanish: dead units pass none back, which is their finding."""
    measured = [r for r in epochs if any("grad_norm" in row for row in r.get("layers") or [])]
    if not measured:
        return []
    epoch = measured[-1]
    norms = [(row["index"], row["layer"], row["grad_norm"]) for row in epoch["layers"]
             if "grad_norm" in row]
    if len(norms) < 2:
        return []
    (i0, name0, first), (i1, name1, final) = norms[0], norms[-1]
    evidence = (f"gradient norm {first:.2e} at layer {i0} ({name0}) vs {final:.2e} at layer "
                f"{i1} ({name1}), epoch {epoch['epoch']}")
    if first * GRADIENT_SPREAD < final and not dead_units:
        return [Finding("vanishing gradients", evidence,
                        "ReLU-family activations, He initialization, batchnorm, residual connections")]
    if first > final * GRADIENT_SPREAD:
        return [Finding("exploding gradients", evidence,
                        "gradient clipping (train.clip_grad_norm), a lower learning rate, "
                        "batchnorm, careful initialization")]
    return []


def _dead_units(last: dict) -> list[Finding]:
    found = []
    for row in last.get("layers") or []:
        if row.get("dead", 0.0) > DEAD_FRACTION:
            found.append(Finding("dead ReLU units",
                                 f"{row['dead']:.0%} of the units after layer {row['index']} never "
                                 f"fired in epoch {last['epoch']}",
                                 "a lower learning rate, leaky ReLU or ELU, He initialization, batchnorm"))
    return found


def _blown_up(epochs: list[dict], summary: dict) -> list[Finding]:
    """A classifier whose training loss, at any epoch, went far past that of guessing."""
    classes = (summary.get("data") or {}).get("num_classes")
    losses = [(r["train/loss"], r["epoch"]) for r in epochs
              if isinstance(r.get("train/loss"), (int, float))]
    if not (isinstance(classes, int) and classes > 1 and losses):
        return []
    chance = math.log(classes)
    worst, epoch = max(losses)
    if not worst > BLOWN_UP * chance:
        return []
    return [Finding("learning rate too high",
                    f"the training loss reached {worst:.4g} at epoch {epoch}, {worst / chance:,.0f}× "
                    f"the {chance:.3g} of guessing uniformly among {classes} classes: the scores "
                    f"have blown up",
                    "divide the learning rate by 10 or more, or clip gradients "
                    "(train.clip_grad_norm)")]


def poor_fit(last: dict) -> bool:
    """Train accuracy below 0.9, or training R² below 0.8; poor when neither is known."""
    if "train/acc" in last:
        return last["train/acc"] < BIAS_ACCURACY
    return last.get("train/r2", -math.inf) < BIAS_R2


def _learning_rate(epochs: list[dict], explained: bool) -> list[Finding]:
    """Too high: a loss that keeps rising by more than noise; too low: one that barely
    moves while the fit stays poor, unless something else (``explained``) holds it."""
    key = "train/objective" if "train/objective" in epochs[0] else "train/loss"
    losses = [r[key] for r in epochs if math.isfinite(r.get(key, math.nan))]
    if len(losses) < 3:
        return []
    start = max(abs(losses[0]), 1e-12)
    rises = sum(b - a > FLAT_CHANGE * start for a, b in zip(losses, losses[1:]))
    if rises >= RISING_SHARE * (len(losses) - 1) and losses[-1] >= 0.9 * losses[0]:
        return [Finding("learning rate too high",
                        f"the training loss rose in {rises} of {len(losses) - 1} epochs "
                        f"({losses[0]:.4g} → {losses[-1]:.4g})",
                        "divide the learning rate by 3 to 10, or use a schedule or Adam")]
    if explained:
        return []
    moved = max(abs(loss - losses[0]) for loss in losses) / start
    poor = poor_fit(epochs[-1])
    ratios = [row["update_ratio"] for row in epochs[-1].get("layers") or [] if "update_ratio" in row]
    if (moved < FLAT_CHANGE and poor) or (ratios and max(ratios) < TINY_UPDATE):
        evidence = (f"the training loss moved {moved:.2%} at most from its first epoch in "
                    f"{len(losses)} epochs ({losses[0]:.4g} → {losses[-1]:.4g})")
        if ratios:
            evidence += f"; largest update/weight ratio {max(ratios):.1e}"
        return [Finding("learning rate too low", evidence,
                        "multiply the learning rate by 3 to 10, or use Adam")]
    return []
