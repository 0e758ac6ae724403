"""PNG plots of runs and sweeps, drawn with matplotlib's Agg canvas (no display needed).

```python
plot_path("runs/quickstart/20250101-120000-ab12cd", "plots")   # curves.png
plot_path("runs/lr-vs-width/20250101-130000-ef34ab", "plots")  # metric_vs_params.png, top_curves.png,
                                                               # importance.png, contour.png
plot_path("runs/fcn-shapes/20250101-140000-0a1b2c", "plots")   # curves.png, label_maps.png
```

A run's figure is its learning curves, ``curves.png``; a run whose model draws images
adds a figure of what its best checkpoint does on test samples (``plot_images.py``):
an autoencoder (``data.target: input``) ``reconstructions.png``, inputs above their
reconstructions; a segmentation run ``label_maps.png``, images above their true and
predicted label maps. A sweep's figures are drawn by ``plot_trials.py``; the parts every
figure shares (axes, legends, the epoch records) are in ``plot_parts.py``.

Figures are ``matplotlib.figure.Figure`` objects saved directly: pyplot and its global
state are never touched, so plotting works the same in a terminal, a notebook or a worker.
"""

from __future__ import annotations

import math
from pathlib import Path

from matplotlib.figure import Figure

from .layout import RunLayout, SweepLayout
from .plot_images import plot_outputs
from .plot_parts import epoch_axis, epoch_records
from .plot_trials import plot_metric_vs_params, plot_search, plot_top_curves
from .storage import RunError
from .sweep.folder import saved_spec, trial_table
from .sweep.ledger import SweepError
from .tables import read_summary


class PlotError(RuntimeError):
    """The folder holds nothing to plot."""


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


def plot_sweep(folder: Path, out_dir: Path, top: int = 5) -> list[Path]:
    """``metric_vs_params.png``, ``top_curves.png`` and the search plots of a sweep folder."""
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
