"""PNG plots of runs and sweeps, drawn with matplotlib's Agg canvas (no display needed).

```python
plot_path("runs/quickstart/20250101-120000-ab12cd", "plots")   # curves.png
plot_path("runs/lr-vs-width/20250101-130000-ef34ab", "plots")  # metric_vs_params.png, top_curves.png,
                                                               # importance.png, contour.png
plot_path("runs/fcn-shapes/20250101-140000-0a1b2c", "plots")   # curves.png, label_maps.png
```

A run whose model draws images adds a figure of what its best checkpoint does on test
samples: an autoencoder (``data.target: input``) ``reconstructions.png``, inputs above
their reconstructions; a segmentation run ``label_maps.png``, images above their true
and predicted label maps.

Figures are ``matplotlib.figure.Figure`` objects saved directly: pyplot and its global
state are never touched, so plotting works the same in a terminal, a notebook or a worker.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .layout import RunLayout, SweepLayout
from .runs import Run
from .storage import RunError
from .tables import read_summary
from .sweep.folder import saved_spec, trial_table
from .sweep.importance import SearchModel, fit, importances, most_important_pair, partial_dependence
from .sweep.ledger import SweepError, TrialState
from .numbers import short
from .sweep.results import configurations
from .sweep.spec import SweepSpec

STATUS_COLORS = {"completed": "tab:green", "pruned": "tab:orange", "paused": "tab:blue",
                 "diverged": "tab:purple", "running": "tab:blue", "interrupted": "tab:gray"}


class PlotError(RuntimeError):
    """The folder holds nothing to plot."""


def epoch_records(run_dir: Path) -> list[dict]:
    """The per-epoch lines of metrics.jsonl (iteration lines have no learning rate)."""
    return [r for r in Run(run_dir).read_metrics() if "lr" in r]


def metric_names(records: list[dict]) -> list[str]:
    """The per-epoch scores other than losses: acc, or mse and r2."""
    names = {k.split("/", 1)[1] for r in records for k in r
             if k.startswith(("train/", "val/")) and not k.endswith(("loss", "objective"))}
    return sorted(names)


def plot_run(run_dir: Path, out_dir: Path) -> list[Path]:
    """``curves.png``: train and validation loss, and each score, against the epoch."""
    records = epoch_records(run_dir)
    if not records:
        raise PlotError(f"{run_dir}: metrics.jsonl holds no epoch yet")
    scores = metric_names(records)
    fig = Figure(figsize=(5 * (1 + len(scores)), 4), layout="constrained")
    axes = fig.subplots(1, 1 + len(scores), squeeze=False)[0]
    epochs = [r["epoch"] for r in records]
    if any("train/objective" in r for r in records):
        objective = [r.get("train/objective", math.nan) for r in records]
        axes[0].plot(epochs, objective, ":", color="gray", label="train/objective (batches, with penalty)")
    for ax, name in zip(axes, ["loss", *scores]):
        for split, style in (("train", "-"), ("val", "--")):
            values = [r.get(f"{split}/{name}", math.nan) for r in records]
            ax.plot(epochs, values, style, marker=".", label=f"{split}/{name}")
        epoch_axis(ax)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend()
    summary = read_summary(run_dir)
    if summary.get("best_epoch"):
        for ax in axes:
            ax.axvline(summary["best_epoch"], color="gray", lw=0.8, ls=":")
    fig.suptitle(f"{Path(run_dir).name}: {summary.get('status', '')}")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "curves.png"
    fig.savefig(path, dpi=100)
    return [path, *plot_outputs(run_dir, out_dir)]


# -- what a model draws: reconstructions and label maps -----------------------------------
def draws_outputs(cfg) -> bool:
    """Whether a run of this config has a figure of its outputs: an autoencoder's
    (``data.target: input``) or a segmentation model's (``metrics.config_task``)."""
    from .metrics import config_task

    task = config_task(cfg.components.get("model.loss"), cfg.components.get("data.dataset"),
                       cfg.data.target)
    return cfg.data.target == "input" or task == "segmentation"


def as_images(X: np.ndarray) -> np.ndarray | None:
    """Samples as ``(N, H, W)`` grey or ``(N, H, W, 3)`` colour images: images of one or
    three channels, or flat features of a square number (64 → 8×8); None otherwise."""
    if X.ndim == 4 and X.shape[1] in (1, 3):
        return X[:, 0] if X.shape[1] == 1 else X.transpose(0, 2, 3, 1)
    side = math.isqrt(X.shape[1]) if X.ndim == 2 else 0
    return X.reshape(len(X), side, side) if side and side * side == X.shape[1] else None


def shown(image: np.ndarray) -> np.ndarray:
    """An image scaled to [0, 1] for ``imshow`` (colour images need it)."""
    low, high = float(image.min()), float(image.max())
    return (image - low) / (high - low) if high > low else np.zeros_like(image)


def image_grid(rows: list[tuple[str, np.ndarray, dict]], title: str, path: Path) -> None:
    """One row of images per ``(label, images, imshow options)``."""
    count = len(rows[0][1])
    fig = Figure(figsize=(1.4 * count + 1, 1.5 * len(rows) + 0.5))
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.02, top=0.86, wspace=0.05, hspace=0.1)
    axes = fig.subplots(len(rows), count, squeeze=False)
    for row, (label, images, options) in zip(axes, rows):
        for ax, image in zip(row, images):
            ax.imshow(image if options else shown(image), **options)
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(label)
    fig.suptitle(title)
    fig.savefig(path, dpi=100)


def plot_outputs(run_dir: Path, out_dir: Path, count: int = 8) -> list[Path]:
    """``reconstructions.png`` for an autoencoder run, ``label_maps.png`` for a
    segmentation run: the first ``count`` test samples (else validation) through the
    best checkpoint (``trained.load_run``). None for other runs, whose data are not
    loaded, for a run without checkpoints yet, and for one whose config names plugins
    (a figure runs none of their code)."""
    from . import plugins
    from .config import load_saved_config
    from .config.yaml12 import read_yaml
    from .trained import load_run

    layout = RunLayout(run_dir)
    if not layout.checkpoints.is_dir() or plugins.waiting(read_yaml(layout.config)):
        return []
    if not draws_outputs(load_saved_config(layout.config)):
        return []
    run = load_run(run_dir, checkpoint="best" if layout.checkpoint("best").exists() else "last")
    try:
        split = run.data("test")
    except RunError:  # a config without a test split
        split = run.data("val")
    splits = run.splits
    X, y = split.X[:count], split.y[:count]
    inputs = as_images(X)
    if inputs is None or not len(X):
        return []
    model, name = run.model, Path(run_dir).name
    grey = {"cmap": "gray", "vmin": float(X.min()), "vmax": float(X.max())}  # the inputs' range
    if run.config.data.target == "input":
        outputs = as_images(model.loss_fn.values(model.scores(X)).reshape(X.shape))
        path = out_dir / "reconstructions.png"
        image_grid([("input", inputs, grey if inputs.ndim == 3 else {}),
                    ("reconstruction", outputs, grey if outputs.ndim == 3 else {})],
                   f"{name}: test inputs and their reconstructions", path)
        return [path]
    classes = splits.num_classes
    labels = {"cmap": "tab10", "vmin": 0, "vmax": 9, "interpolation": "nearest"}
    names = splits.info.get("class_names") or [str(c) for c in range(classes)]
    legend = ", ".join(f"{c} {n}" for c, n in enumerate(names[:classes]))
    path = out_dir / "label_maps.png"
    image_grid([("image", inputs, grey if inputs.ndim == 3 else {}), ("true", y, labels),
                ("predicted", model.predict(X), labels)],
               f"{name}: test images, true and predicted labels (tab10 colours: {legend})",
               path)
    return [path]


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


FEW = 4  # numeric parameters with at most this many values are shown as categories


def place_values(ax, values: list, order: list | None = None, log: bool = False):
    """Set ``ax``'s x axis for ``values`` and return where each value goes:

    - symlog for a zero among positive values spanning decades (l2 0, 1e-5, 1e-4): the
      zero keeps its place, the others their decades;
    - log for a log domain (``log``) or positive values spanning three decades or more;
    - categories, evenly spaced with short labels (``numbers.short``), for words, specs
      and any other numbers of at most ``FEW`` distinct values (batch size 32, 64), in
      ``order`` or by value;
    - linear otherwise.
    """
    numeric = all(is_number(v) for v in values)
    positive = [v for v in values if numeric and v > 0]
    if positive and min(values) == 0 and max(positive) / min(positive) >= 10:
        ax.set_xscale("symlog", linthresh=min(positive))
        return list(values)
    if positive and positive == values and (log or max(values) / min(values) >= 1000):
        ax.set_xscale("log")
        return list(values)
    distinct = list(dict.fromkeys(short(v) for v in values))
    if numeric and len(distinct) > FEW:
        return list(values)
    labels = order or sorted(distinct, key=(lambda t: float(t)) if numeric else None)
    ax.set_xticks(range(len(labels)), labels, rotation=0 if numeric else 30,
                  ha="center" if numeric else "right")
    ax.set_xlim(-0.5, len(labels) - 0.5)
    return [labels.index(short(v)) for v in values]


def epoch_axis(ax) -> None:
    """An x axis of epochs: whole numbers only."""
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def hidden_by(curve: tuple[list, list], drawn: dict[str, tuple[list, list]]) -> str | None:
    """The label of a curve already drawn that ``curve`` (epochs, values) coincides with,
    so that the one drawn over it can say so; None when it shows."""
    for label, other in drawn.items():
        if list(other[0]) == list(curve[0]) and np.allclose(other[1], curve[1], rtol=1e-3,
                                                            atol=1e-9, equal_nan=True):
            return label
    return None


def outside_legend(ax, **options) -> None:
    """The axes' legend to the right of the data, never over it."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0, **options)


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


def plot_sweep(folder: Path, out_dir: Path, top: int = 5) -> list[Path]:
    spec = saved_spec(folder)
    if spec.metric is None:
        raise PlotError(f"{folder}/spec.yaml names no metric")
    table = trial_table(folder, spec)
    if not any(s.metric is not None for s in table.values()):
        raise PlotError(f"{folder}: no trial has reported {spec.metric} yet")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "metric_vs_params.png", out_dir / "top_curves.png"]
    plot_metric_vs_params(spec, table, paths[0])
    plot_top_curves(spec, table, folder, top, paths[1])
    return paths + plot_search(spec, table, out_dir)


def plot_path(path: Path, out_dir: Path, top: int = 5) -> list[Path]:
    """Plot a sweep folder (it has ledger.jsonl) or a run folder (metrics.jsonl)."""
    path, out_dir = Path(path), Path(out_dir)
    try:
        if SweepLayout(path).is_sweep:
            return plot_sweep(path, out_dir, top)
        if RunLayout(path).metrics.exists():
            return plot_run(path, out_dir)
    except (RunError, SweepError) as error:  # a damaged file of the folder, named
        raise PlotError(str(error)) from None
    except (OSError, ValueError, KeyError) as error:
        raise PlotError(f"{path}: cannot plot ({type(error).__name__}: {error})") from None
    raise PlotError(f"{path}: neither a run folder (metrics.jsonl) nor a sweep folder (ledger.jsonl)")
