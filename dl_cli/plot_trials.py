"""The figures of a sweep: each trial's metric against each parameter, the learning curves
of the best configurations, and the search plots (each parameter's importance, and the
partial dependence on the two most important as a contour), from ``sweep/importance.py``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .layout import RunLayout, SweepLayout
from .numbers import short
from .plot_parts import epoch_axis, epoch_records, hidden_by, outside_legend, place_values
from .sweep.importance import SearchModel, fit, importances, most_important_pair, partial_dependence
from .sweep.ledger import TrialState
from .sweep.results import configurations
from .sweep.spec import SweepSpec

# a trial's status: its colour, or its marker where colours tell the variants apart
STATUS_COLORS = {"completed": "tab:green", "pruned": "tab:orange", "paused": "tab:blue",
                 "diverged": "tab:purple", "running": "tab:blue", "interrupted": "tab:gray"}
STATUS_MARKERS = {"completed": "o", "pruned": "v", "paused": "s", "diverged": "X",
                  "running": "s", "interrupted": "D"}


def plot_metric_vs_params(spec: SweepSpec, table: dict[int, TrialState], path: Path) -> Figure:
    """One panel per varied parameter (and one for the variants): each trial's metric at
    its value (axes by ``place_values``). A variant sweep colours the points by variant
    and marks their status by shape; any other sweep colours them by status."""
    params = (["variant"] if spec.variants else []) + list(spec.params)
    fig = Figure(figsize=(4.5 * len(params) + 1.5, 4), layout="constrained")
    axes = fig.subplots(1, len(params), squeeze=False)[0]
    scored = [s for s in table.values() if s.metric is not None and math.isfinite(s.metric)]

    def value_of(state: TrialState, param: str):
        return state.variant if param == "variant" else state.params[param]

    if spec.variants:
        groups = [(f"{v}" + ("" if status == "completed" else f" ({status})"),
                   [s for s in scored if s.variant == v and s.status == status],
                   {"color": f"C{i % 10}", "marker": STATUS_MARKERS.get(status, "o")})
                  for i, v in enumerate(spec.variants)
                  for status in sorted({s.status for s in scored})]
    else:
        groups = [(status, [s for s in scored if s.status == status],
                   {"color": STATUS_COLORS.get(status, "tab:gray")})
                  for status in sorted({s.status for s in scored})]
    for ax, param in zip(axes, params):
        order = [v for v in spec.variants if any(s.variant == v for s in scored)] \
            if param == "variant" else None
        log = param != "variant" and spec.params[param].log
        xs = place_values(ax, [value_of(s, param) for s in scored], order, log)
        where = dict(zip((id(s) for s in scored), xs))
        for label, group, style in groups:
            if group:
                ax.scatter([where[id(s)] for s in group], [s.metric for s in group],
                           label=label, alpha=0.8, **style)
        ax.set_xlabel(param)
        ax.set_ylabel(spec.metric)
        ax.grid(alpha=0.3)
    outside_legend(axes[-1], fontsize="small")
    fig.suptitle(f"{spec.name}: {spec.metric} ({spec.goal}) against each parameter")
    fig.savefig(path, dpi=100)
    return fig


def plot_top_curves(spec: SweepSpec, table: dict[int, TrialState], folder: Path, top: int,
                    path: Path) -> Figure:
    """The validation metric and the training loss per epoch of the ``top`` best
    configurations (their first trial; fold 0 of a k-fold trial); a curve drawn over
    one it equals is dashed and says so."""
    fig = Figure(figsize=(13, 4), layout="constrained")
    metric_ax, loss_ax = fig.subplots(1, 2)
    best = configurations(table, spec)[:top]
    drawn: dict[str, tuple[list, list]] = {}
    for result in best:
        trial = result.trials[0]
        records = epoch_records(RunLayout(SweepLayout(folder).trial(trial.index)).curves_run())
        if not records:
            continue
        label = f"trial {trial.index}: " + ", ".join(
            ([trial.variant] if trial.variant is not None else [])
            + [f"{p.rsplit('.', 1)[-1]}={short(v)}" for p, v in trial.params.items()])
        epochs = [r["epoch"] for r in records]
        curve = (epochs, [r.get(spec.metric, math.nan) for r in records])
        same = hidden_by(curve, drawn)
        if same is not None:
            label += f" (same curves as {same.split(':')[0]})"
        metric_ax.plot(*curve, marker=".", label=label, ls="--" if same else "-")
        loss_ax.plot(epochs, [r.get("train/loss", math.nan) for r in records], marker=".",
                     label=label, ls="--" if same else "-")
        drawn[label] = curve
    for ax, name in ((metric_ax, spec.metric), (loss_ax, "train/loss")):
        epoch_axis(ax)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    loss_ax.set_yscale("log")
    outside_legend(loss_ax, fontsize="small")  # one legend for both panels
    fig.suptitle(f"{spec.name}: learning curves of the best {len(best)} configurations")
    fig.savefig(path, dpi=100)
    return fig


def plot_importance(spec: SweepSpec, model: SearchModel, shares, spread, path: Path) -> Figure:
    """Each parameter's permutation importance (``sweep/importance.py``), largest on top,
    with the spread over the shuffles."""
    order = sorted(range(len(shares)), key=lambda j: (shares[j], -j))
    fig = Figure(figsize=(7, 1.2 + 0.5 * len(order)), layout="constrained")
    ax = fig.subplots()
    names = [model.columns[j].name for j in order]
    ax.barh(names, [shares[j] for j in order], xerr=[spread[j] for j in order],
            color="tab:blue", alpha=0.8, capsize=3)
    for row, j in enumerate(order):
        ax.text(shares[j] + spread[j], row, f"  {shares[j]:.0%}", va="center")
    ax.set_xlim(0, max(1.0, max(shares[j] + spread[j] for j in order) * 1.15))
    ax.set_xlabel("share of the drop in a random forest's R² when the parameter is shuffled")
    ax.grid(alpha=0.3, axis="x")
    fig.suptitle(f"{spec.name}: parameter importance for {spec.metric}\n"
                 f"({len(model.y)} completed trials)")
    fig.savefig(path, dpi=100)
    return fig


def plot_contour(spec: SweepSpec, model: SearchModel, i: int, j: int, path: Path) -> Figure:
    """The forest's partial dependence on the two parameters ``i`` and ``j`` (filled
    contours, or cells when one is a category; brighter is better), with each completed
    trial at its values, colored by its own metric, and the best one starred."""
    a, b, depend = partial_dependence(model, i, j)
    columns = model.columns[i], model.columns[j]
    x, y = columns[0].decode(a), columns[1].decode(b)
    trials_x, trials_y = columns[0].decode(model.X[:, i]), columns[1].decode(model.X[:, j])
    colors = "viridis" if spec.goal == "max" else "viridis_r"
    low, high = min(depend.min(), model.y.min()), max(depend.max(), model.y.max())
    fig = Figure(figsize=(7, 5.5), layout="constrained")
    ax = fig.subplots()
    if "category" in (columns[0].kind, columns[1].kind):  # one cell per category, no blending
        filled = ax.pcolormesh(x, y, depend, shading="nearest", cmap=colors, vmin=low, vmax=high)
    else:
        filled = ax.contourf(x, y, depend, levels=15, cmap=colors, vmin=low, vmax=high)
    ax.scatter(trials_x, trials_y, c=model.y, cmap=colors, vmin=low, vmax=high, s=45,
               edgecolors="black", linewidths=1.0, clip_on=False, label="a trial, colored by its metric")
    best = int(np.argmax(model.y) if spec.goal == "max" else np.argmin(model.y))
    ax.scatter([trials_x[best]], [trials_y[best]], marker="*", s=300, color="white",
               edgecolors="black", clip_on=False, zorder=3, label=f"the best trial: {model.y[best]:.4g}")
    for set_scale, set_ticks, column in ((ax.set_xscale, ax.set_xticks, columns[0]),
                                         (ax.set_yscale, ax.set_yticks, columns[1])):
        if column.kind == "log":
            set_scale("log")
        elif column.kind == "category":
            set_ticks(range(len(column.labels)), column.labels)
    ax.set_xlabel(columns[0].name)
    ax.set_ylabel(columns[1].name)
    fig.legend(loc="outside lower center", ncols=2, fontsize="small")
    fig.colorbar(filled, ax=ax, label=f"{spec.metric} (the forest's mean prediction)")
    fig.suptitle(f"{spec.name}: {spec.metric} over {columns[0].name} and {columns[1].name}\n"
                 f"({len(model.y)} completed trials)")
    fig.savefig(path, dpi=100)
    return fig


def plot_search(spec: SweepSpec, table: dict[int, TrialState], out_dir: Path) -> list[Path]:
    """``importance.png`` and ``contour.png`` (its two most important parameters), when
    the sweep has at least two parameters and ``importance.MIN_TRIALS`` completed trials
    that do not all score the same."""
    model = fit(spec, table)
    if model is None:
        return []
    shares, spread = importances(model)
    paths = [out_dir / "importance.png"]
    plot_importance(spec, model, shares, spread, paths[0])
    pair = most_important_pair(model, shares)
    if pair is not None:
        paths.append(out_dir / "contour.png")
        plot_contour(spec, model, *pair, paths[1])
    return paths
