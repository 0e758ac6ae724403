"""The figures of a study's report, drawn on matplotlib's Agg canvas (no display needed).

Every figure is a row of panels saved as PNG into the report folder; ``save`` returns the
markdown line that shows it. ``curves_figure`` draws the learning curves every report
has; ``by_param`` a value of each configuration against the swept parameter, as the
mean ± std over the seeds with every seed's point. Legends stand to the right of the
data; a noisy curve is drawn faint under its moving average; a curve that another one
hides says so in its label.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..plot_parts import epoch_axis, hidden_by, outside_legend, place_values
from .measures import mean_curve
from .study import Group, Study
from ..numbers import short

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
    """The panel's legend, outside its data (``plot_parts.outside_legend``)."""
    outside_legend(ax, fontsize="small")


SMOOTH_FROM = 10  # epochs from which a noisy curve also gets its moving average


def moving_average(values: list[float]) -> tuple[list[float], int]:
    """The centered moving average of ``values`` over ``k`` points (odd, about a tenth of
    them, at least 3; shorter windows at the ends), and ``k``."""
    k = max(3, len(values) // 10 | 1)
    half = k // 2
    return [statistics.fmean(values[max(0, i - half):i + half + 1]) for i in range(len(values))], k


def noisy(values: list[float]) -> bool:
    """Whether a curve goes up and down a lot: over a third of its steps reverse the one
    before, and it is long enough (``SMOOTH_FROM``) for an average to show the trend."""
    steps = np.sign(np.diff(values))
    return len(values) >= SMOOTH_FROM and np.mean(steps[1:] * steps[:-1] < 0) > 1 / 3


def draw_curve(ax, epochs: list[int], values: list[float], label: str, **style) -> None:
    """A learning curve: a noisy one faint, under its moving average (which carries the
    label, with the window)."""
    if not noisy(values):
        ax.plot(epochs, values, label=label, **style)
        return
    smooth, k = moving_average(values)
    ax.plot(epochs, values, alpha=0.25, lw=0.8, **style)
    ax.plot(epochs, smooth, label=f"{label} (average of {k} epochs)", **style)


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
    """``curves.png``: ``learning_curves``."""
    return save(learning_curves(study), out, "curves.png")


def learning_curves(study: Study) -> Figure:
    """The training loss and the sweep's metric against the epoch."""
    metric = study.spec.metric
    styled, what = curve_styles(study)
    fig, (loss_ax, metric_ax) = new_figure(2, f"{study.spec.name}: learning curves (mean over "
                                              f"the seeds that did not diverge; {what})")
    drawn: dict[str, tuple[list, list]] = {}
    for group, color, style in styled:
        if group.diverged == len(group.trials):  # no curve, but a line in the legend
            metric_ax.plot([], [], style, color=color, label=f"{group.label} (every trial "
                                                             f"diverged: no curve)")
            continue
        curve = mean_curve(group, metric)
        same = hidden_by(curve, drawn)
        label = group.label if same is None else f"{group.label} (same curves as {same})"
        loss_ax.plot(*mean_curve(group, "train/loss"), style, color=color)
        draw_curve(metric_ax, *curve, label, linestyle=style, color=color)
        drawn[group.label] = curve
    loss_ax.set(ylabel="train/loss", yscale="log")
    metric_ax.set(ylabel=metric)
    epoch_axis(loss_ax)
    epoch_axis(metric_ax)
    if metric.endswith(("loss", "mse")):
        metric_ax.set_yscale("log")
    legend(metric_ax)  # the colors and styles of both panels
    return fig


def by_param(study: Study, samples: dict[str, list[float]], ylabel: str, title: str,
             out: Path, name: str, log_y: bool = False, diverged: bool = False) -> str:
    """``by_param_figure`` saved as ``name``."""
    return save(by_param_figure(study, samples, ylabel, title, log_y, diverged), out, name)


def by_param_figure(study: Study, samples: dict[str, list[float]], ylabel: str, title: str,
                    log_y: bool = False, diverged: bool = False) -> Figure:
    """Each variant's values against the swept parameter: per configuration (a label of
    ``samples``) the mean with error bars of the sample std where several seeds give a
    value, and each seed's value as a faint point (no value: no point); with
    ``diverged``, a second panel counts each configuration's diverged trials."""
    param = study.swept_param()
    fig, axes = new_figure(2 if diverged else 1, title)
    variants = study.variant_names
    groups_of = {v: [g for g in study.groups if g.variant == v] for v in variants}
    width = 0.8 / len(variants)
    xs = place_values(axes[0], [g.params[param] for g in study.groups])
    where = {id(g): x for g, x in zip(study.groups, xs)}
    for k, variant in enumerate(variants):
        groups = groups_of[variant]
        shown = [g for g in groups if samples[g.label]]
        means, stds = error_bars([samples[g.label] for g in shown], float("nan"))
        line = axes[0].errorbar([where[id(g)] for g in shown], means,
                                yerr=stds if any(len(samples[g.label]) > 1 for g in shown) else None,
                                marker="o", capsize=3, label=variant)
        for g in shown:
            axes[0].scatter([where[id(g)]] * len(samples[g.label]), samples[g.label], s=10,
                            alpha=0.35, color=line[0].get_color())
        if diverged:
            axes[1].bar(np.arange(len(groups)) + (k - (len(variants) - 1) / 2) * width,
                        [g.diverged for g in groups], width, label=variant)
            axes[1].set_xticks(range(len(groups)), [short(g.params[param]) for g in groups])
    seeds = max(len(v) for v in samples.values()) if samples else 0
    axes[0].set(xlabel=param, ylabel=ylabel)
    if seeds > 1:
        axes[0].set_title("mean ± std over the seeds; dots: each seed", fontsize="small")
    if log_y:
        axes[0].set_yscale("log")
    legend(axes[0])
    if diverged:
        most = max(len(g.trials) for g in study.groups)
        axes[1].set(xlabel=param, ylabel="diverged trials", ylim=(0, most + 0.2),
                    yticks=range(most + 1), title=f"diverged trials (of {most})")
        legend(axes[1])
    return fig
