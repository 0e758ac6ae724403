"""The report sections of the studies on fitting and regularization.

| study | what it adds |
|---|---|
| regularization | the train − validation gap; the share of near-zero weights, weight histograms |
| polynomial | training and held-out loss curves; learned weights next to the true ones |
| weight_decay | ‖w‖ and the training, held-out and test losses |

Each section is ``(study, out) -> markdown blocks`` and saves its figures into ``out``.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import numpy as np

from ..data.datasets import Polynomial
from .figures import legend, new_figure, save
from .measures import decayed_weights, learned_weights, mean_curve, near_zero_fraction, weight_norms
from .study import Group, Study, Trial, at_last_epoch, on_test
from .text import mean_std, table


def gap_of(trial: Trial) -> float | None:
    train, val = trial.final("train/acc"), trial.final("val/acc")
    return None if train is None or val is None else train - val


def regularization_section(study: Study, out: Path) -> list[str]:
    threshold = study.spec.report.get("near_zero", 1e-3)
    zeros = near_zero_fraction(study, threshold)
    fig, (gap_ax, hist_ax) = new_figure(2, "train vs validation accuracy, and the weights "
                                           "training ended with")
    labels = [g.label for g in study.groups]
    train = [g.mean(at_last_epoch("train/acc")) or 0.0 for g in study.groups]
    val = [g.mean(at_last_epoch("val/acc")) or 0.0 for g in study.groups]
    spots = np.arange(len(labels))
    gap_ax.bar(spots - 0.2, train, 0.4, label="train/acc (last epoch)")
    gap_ax.bar(spots + 0.2, val, 0.4, label="val/acc (last epoch)")
    gap_ax.set_xticks(spots, labels, rotation=20, ha="right")
    gap_ax.set(ylabel="accuracy", ylim=(min(val + train) - 0.05, 1.01))
    legend(gap_ax)
    bins = np.linspace(-8, 1, 46)
    for group in study.groups:
        weights = decayed_weights(group.trials[0])
        if weights is not None:
            hist_ax.hist(np.log10(np.abs(weights) + 1e-12), bins=bins, histtype="step", lw=1.5,
                         label=group.label)
    hist_ax.axvline(math.log10(threshold), color="gray", ls=":")
    hist_ax.set(xlabel="log10 |w| (first seed)", ylabel="weights", yscale="log",
                title=f"dotted: the near-zero threshold {threshold:g}")
    legend(hist_ax)
    image = save(fig, out, "regularization.png")
    rows = [[g.label, g.cell(at_last_epoch("train/acc")), g.cell(at_last_epoch("val/acc")),
             g.cell(gap_of), g.cell(on_test("test/acc")),
             mean_std(zeros[g.label], 3) if zeros[g.label] else "no checkpoint"] for g in study.groups]
    header = ["configuration", "train/acc", "val/acc", "gap", "test/acc",
              f"share of weights within ±{threshold:g}"]
    return ["## Overfitting and the weights", "Accuracies of the last epoch; the share of "
            "near-zero weights over every weight matrix at the end of training.", image,
            table(header, rows)]


def loss_curves(ax, study: Study) -> None:
    """Each configuration's training (solid) and held-out (dashed) loss in one color."""
    for group in study.groups:
        line = ax.plot(*mean_curve(group, "train/loss"), label=group.label)[0]
        ax.plot(*mean_curve(group, "val/loss"), "--", color=line.get_color())


def losses(group: Group) -> list[str]:
    """The training and held-out loss of the last epoch, and the test loss: three cells."""
    return [group.cell(at_last_epoch("train/loss")), group.cell(at_last_epoch("val/loss")),
            group.cell(on_test("test/loss"))]


def polynomial_section(study: Study, out: Path) -> list[str]:
    truth = Polynomial.true_weights
    weights = learned_weights(study)
    fig, (loss_ax, w_ax) = new_figure(2, "training (solid) and held-out (dashed) loss; "
                                         "learned weights")
    loss_curves(loss_ax, study)
    loss_ax.set(xlabel="epoch", ylabel="loss (½ squared error)", xscale="log", yscale="log")
    legend(loss_ax)
    shown = 6
    width = 0.8 / (len(weights) + 1)
    spots = np.arange(shown)
    w_ax.bar(spots, np.pad(truth, (0, shown - len(truth))), width, color="black", label="true")
    for k, (label, w) in enumerate(weights.items(), 1):
        w_ax.bar(spots + k * width, np.pad(w[:shown], (0, max(0, shown - len(w)))), width, label=label)
    w_ax.set_xticks(spots + width * len(weights) / 2, [f"w{i} (x^{i}/{i}!)" for i in range(shown)],
                    fontsize="small")
    w_ax.set(ylabel="weight (mean over seeds)")
    legend(w_ax)
    image = save(fig, out, "polynomial.png")
    rows = [["true", *(f"{v:g}" for v in truth), "", "", "", ""]]
    for group in study.groups:
        w = weights.get(group.label)
        cells = [f"{w[i]:.3f}" if w is not None and i < len(w) else "–" for i in range(4)]
        rows.append([group.label, *cells, *losses(group), str(len(w)) if w is not None else "–"])
    header = ["model", "w0", "w1", "w2", "w3", "train/loss", "val/loss (held out)", "test/loss",
              "weights"]
    return ["## Under- and overfitting", image, table(header, rows)]


def weight_decay_section(study: Study, out: Path) -> list[str]:
    norms = weight_norms(study)
    fig, (loss_ax, norm_ax) = new_figure(2, "training (solid) and held-out (dashed) loss; ‖w‖")
    loss_curves(loss_ax, study)
    loss_ax.set(xlabel="epoch", ylabel="loss (½ squared error)", yscale="log")
    legend(loss_ax)
    labels = [g.label for g in study.groups]
    norm_ax.bar(labels, [statistics.fmean(norms[l]) if norms[l] else 0.0 for l in labels])
    norm_ax.set(ylabel="‖w‖ at the end of training (mean over seeds)")
    image = save(fig, out, "weight_decay.png")
    rows = [[g.label, mean_std(norms[g.label]) if norms[g.label] else "no checkpoint", *losses(g)]
            for g in study.groups]
    return ["## Weight decay", image, table(["configuration", "‖w‖", "train/loss",
                                             "val/loss (held out)", "test/loss"], rows)]
