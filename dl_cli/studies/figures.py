"""The figures of a study's report, drawn on matplotlib's Agg canvas (no display needed).

Every figure is a row of panels saved as PNG into the report folder; ``save`` returns the
markdown line that shows it. ``curves_figure`` draws the learning curves every report
has; ``by_param`` a value of each configuration against the swept parameter.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .measures import mean_curve
from .study import Group, Study
from .text import short

STYLES = ("-", "--", ":", "-.")


def save(fig: Figure, out: Path, name: str) -> str:
    fig.savefig(out / name, dpi=110)
    return f"![{name[:-4]}]({name})"


def new_figure(panels: int, title: str, height: float = 4.2) -> tuple[Figure, list]:
    fig = Figure(figsize=(5.6 * panels, height), layout="constrained")
    axes = list(fig.subplots(1, panels, squeeze=False)[0])
    fig.suptitle(title)
    for ax in axes:
        ax.grid(alpha=0.3)
    return fig, axes


def legend(ax) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")


def error_bars(samples: list[list[float]], empty: float) -> tuple[list[float], list[float]]:
    """The mean of each list of values (``empty`` for none) and its sample standard
    deviation (0 for fewer than two values)."""
    means = [statistics.fmean(v) if v else empty for v in samples]
    return means, [statistics.stdev(v) if len(v) > 1 else 0.0 for v in samples]


def panels(study: Study) -> list[tuple[str, list[Group]]]:
    """One panel per variant when the variants are crossed with parameters, else one."""
    if study.spec.variants and study.spec.params:
        return [(v, [g for g in study.groups if g.variant == v]) for v in study.variant_names]
    return [(study.spec.name, study.groups)]


def curve_styles(study: Study) -> tuple[list[tuple[Group, str, str]], str]:
    """Which configurations get learning curves, each with a color and a line style:
    every one when there are at most 12 and 4 variants (color: the parameter values,
    style: the variant), else each variant's best."""
    values = list(dict.fromkeys(json.dumps(g.params, sort_keys=True) for g in study.groups))
    variants = study.variant_names
    if len(study.groups) <= 12 and len(variants) <= len(STYLES) and len(values) > 1:
        return [(g, f"C{values.index(json.dumps(g.params, sort_keys=True)) % 10}",
                 STYLES[variants.index(g.variant)]) for g in study.groups], "every configuration"
    chosen = study.best_of_each_variant()
    what = "best configuration of each variant" if len(chosen) < len(study.groups) else "every configuration"
    return [(g, f"C{i % 10}", "-") for i, g in enumerate(chosen)], what


def curves_figure(study: Study, out: Path) -> str:
    """``curves.png``: the training loss and the sweep's metric against the epoch."""
    metric = study.spec.metric
    styled, what = curve_styles(study)
    fig, (loss_ax, metric_ax) = new_figure(2, f"{study.spec.name}: learning curves (mean over "
                                              f"the seeds that did not diverge; {what})")
    for group, color, style in styled:
        if group.diverged == len(group.trials):
            continue
        loss_ax.plot(*mean_curve(group, "train/loss"), style, color=color, label=group.label)
        metric_ax.plot(*mean_curve(group, metric), style, color=color, label=group.label)
    loss_ax.set(xlabel="epoch", ylabel="train/loss", yscale="log")
    metric_ax.set(xlabel="epoch", ylabel=metric)
    if metric.endswith(("loss", "mse")):
        metric_ax.set_yscale("log")
    legend(metric_ax)
    return save(fig, out, "curves.png")


def by_param(study: Study, values: dict, ylabel: str, title: str, out: Path, name: str,
             log_y: bool = False, diverged: bool = False) -> str:
    """Each variant's ``values[label]`` against the swept parameter (None: no point);
    with ``diverged``, a second panel counts each configuration's diverged trials."""
    param = study.swept_param()
    fig, axes = new_figure(2 if diverged else 1, title)
    variants = study.variant_names
    positive = min(g.params[param] for g in study.groups) > 0
    width = 0.8 / len(variants)
    for k, variant in enumerate(variants):
        groups = [g for g in study.groups if g.variant == variant]
        shown = [(g.params[param], values[g.label]) for g in groups if values[g.label] is not None]
        axes[0].plot([x for x, _ in shown], [y for _, y in shown], marker="o", label=variant)
        if diverged:
            axes[1].bar(np.arange(len(groups)) + (k - (len(variants) - 1) / 2) * width,
                        [g.diverged for g in groups], width, label=variant)
            axes[1].set_xticks(range(len(groups)), [short(g.params[param]) for g in groups])
    axes[0].set(xlabel=param, ylabel=ylabel, xscale="log" if positive else "linear")
    if log_y:
        axes[0].set_yscale("log")
    legend(axes[0])
    if diverged:
        most = max(len(g.trials) for g in study.groups)
        axes[1].set(xlabel=param, ylabel="diverged trials", ylim=(0, most + 0.2),
                    yticks=range(most + 1), title=f"diverged trials (of {most})")
        legend(axes[1])
    return save(fig, out, name)
