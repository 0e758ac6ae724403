"""`dl report SWEEP_DIR`: what a study set out to show, and what its trials found.

A study is a sweep (``experiments/*.yaml``) whose spec states its ``claim`` and names,
under ``report: {study: NAME}``, the figures of its own to draw. ``write_report`` writes
``report.md`` beside PNG figures (matplotlib's Agg canvas, no display needed):

- the claim, and how the sweep ran (base config, variants, parameters, seeds);
- one row per configuration (a variant and its parameter values): the sweep's metric,
  the final training and validation scores and the test score, each the mean ± sample
  standard deviation over the seeds, and how many trials diverged;
- ``curves.png``: each variant's learning curves (its best configuration, mean over seeds);
- the study's own section:

| study | what it adds |
|---|---|
| init | the activation std of every layer at initialization (one batch of training data) |
| activations | the gradient norm of every weighted layer, first and last epoch |
| regularization | the train − validation gap; the share of near-zero weights, weight histograms |
| batchnorm | epochs to ``target`` validation accuracy at each learning rate; diverged rates |
| optimizers | accuracy against the learning rate; its spread (max − min) across rates |
| schedules | the learning rate of every epoch; final training loss |
| polynomial | training and held-out loss curves; learned weights next to the true ones |
| weight_decay | ‖w‖ and the training, held-out and test losses |
| depth_residual | validation accuracy against depth, plain and residual |
| clipping | diverged trials and validation MSE at each learning rate |
| cnn_vs_mlp | parameters, multiply-adds and accuracy; each layer's cost |

Weights are read from each trial's ``checkpoints/last.npz`` (the weights training ended
with), which every trial keeps when the spec says ``keep_checkpoints: all``. The numbers
behind each figure come from functions the tests call too (``activation_std_at_init``,
``near_zero_fraction``, ...), so a report shows what the tests assert.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import yaml
from matplotlib.figure import Figure

from .config import config_to_dict, load_config
from .data import load
from .registry import LOSSES
from .report import human, number
from .runs import Run, RunError
from .schema import Config
from .sweep.ledger import Ledger, TrialState
from .sweep.spec import SpecError, SweepSpec, parse_spec
from .training import build_model


class ReportError(RuntimeError):
    """The folder is not a sweep, or holds nothing to report yet."""


# -- the sweep as trials and configurations --------------------------------------------
@dataclass
class Trial:
    """One finished (or diverged) trial and its run folder."""

    state: TrialState
    folder: Path

    @cached_property
    def records(self) -> list[dict]:
        """The per-epoch metric lines (iteration lines have no learning rate)."""
        return [r for r in Run(self.folder).read_metrics() if "lr" in r]

    @cached_property
    def summary(self) -> dict:
        return Run(self.folder).read_summary()

    @cached_property
    def config(self) -> Config:
        return load_config(self.folder / "config.yaml")

    @property
    def diverged(self) -> bool:
        return self.state.status == "diverged"

    def final(self, key: str) -> float | None:
        """``key`` in the last epoch's line; None when the trial logged none."""
        return finite(self.records[-1].get(key)) if self.records else None

    def test(self, key: str) -> float | None:
        return finite((self.summary.get("test") or {}).get(key))

    def weights(self) -> dict[str, np.ndarray] | None:
        """The parameters training ended with (``last.npz``), else the best ones."""
        for kind in ("last", "best"):
            if (self.folder / "checkpoints" / f"{kind}.npz").exists():
                return Run(self.folder).load_checkpoint(kind)["params"]
        return None


@dataclass
class Group:
    """One configuration: a variant and its parameter values, trained once per seed."""

    label: str
    variant: str | None
    params: dict
    trials: list[Trial]

    def values(self, get) -> list[float]:
        """The finite values of ``get(trial)`` over the trials that did not diverge."""
        found = (finite(get(t)) for t in self.trials if not t.diverged)
        return [v for v in found if v is not None]

    def mean(self, get) -> float | None:
        values = self.values(get)
        return statistics.fmean(values) if values else None

    def cell(self, get, digits: int = 4) -> str:
        """The values of ``get(trial)`` as a table cell: mean ± std."""
        return mean_std(self.values(get), digits)

    @property
    def diverged(self) -> int:
        return sum(t.diverged for t in self.trials)


@dataclass
class Study:
    folder: Path
    spec: SweepSpec
    groups: list[Group]

    @property
    def kind(self) -> str | None:
        return self.spec.report.get("study")

    @property
    def score(self) -> str:
        """``loss`` for regression, ``acc`` for every other task."""
        cfg = self.groups[0].trials[0].config
        return "loss" if LOSSES.create(cfg.model.loss).task == "regression" else "acc"

    def best_of_each_variant(self) -> list[Group]:
        """Each variant's configuration with the best mean metric (every configuration
        when the spec has no variants)."""
        if not self.spec.variants:
            return self.groups
        sign = 1.0 if self.spec.goal == "max" else -1.0

        def rank(group: Group) -> float:
            value = group.mean(metric_of)
            return -math.inf if value is None else sign * value

        best: dict[str, Group] = {}
        for group in self.groups:
            if group.variant not in best or rank(group) > rank(best[group.variant]):
                best[group.variant] = group
        return list(best.values())


def metric_of(trial: Trial) -> float | None:
    """The sweep's metric: its best value over the trial's epochs."""
    return trial.state.metric


def finite(value) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def short(value) -> str:
    """A parameter value in a label: ``normal(std=0.01)`` for a spec, numbers to 4 digits."""
    if isinstance(value, dict) and "type" in value:
        options = ", ".join(f"{k}={short(v)}" for k, v in value.items() if k != "type")
        return f"{value['type']}({options})" if options else str(value["type"])
    if isinstance(value, (dict, list)):
        text = json.dumps(value, separators=(",", ":"))
        return text if len(text) <= 30 else text[:27] + "..."
    return number(value)


def label_of(variant: str | None, params: dict) -> str:
    parts = [variant] if variant is not None else []
    parts += [f"{path.rsplit('.', 1)[-1]}={short(value)}" for path, value in params.items()]
    return ", ".join(parts) or "base"


def load_study(folder: Path) -> Study:
    """The sweep in ``folder``: its spec and its trials grouped by configuration (those
    that never ran are left out)."""
    folder = Path(folder)
    if not (folder / "ledger.jsonl").exists() or not (folder / "spec.yaml").exists():
        raise ReportError(f"{folder} is not a sweep folder (no spec.yaml and ledger.jsonl)")
    try:
        spec = parse_spec(yaml.safe_load((folder / "spec.yaml").read_text()))
    except (SpecError, yaml.YAMLError) as error:
        raise ReportError(f"{folder / 'spec.yaml'}: {error}") from None
    groups: dict[int, Group] = {}
    for state in sorted(Ledger(folder / "ledger.jsonl").table().values(), key=lambda s: s.index):
        run_dir = folder / state.dirname
        if not (run_dir / "metrics.jsonl").exists() and (run_dir / "fold-0").is_dir():
            run_dir = run_dir / "fold-0"
        if state.status not in ("completed", "diverged", "pruned") or not (run_dir / "config.yaml").exists():
            continue
        group = groups.setdefault(state.config, Group(label_of(state.variant, state.params),
                                                      state.variant, state.params, []))
        group.trials.append(Trial(state, run_dir))
    if not groups:
        raise ReportError(f"{folder}: no trial has finished yet")
    return Study(folder, spec, list(groups.values()))


# -- numbers ----------------------------------------------------------------------------
def mean_std(values: list[float], digits: int = 4) -> str:
    """``0.9554 ± 0.011``: the mean and the sample standard deviation (the value alone
    when there is one, or all are equal)."""
    if not values:
        return "–"
    text = f"{statistics.fmean(values):.{digits}g}"
    return text if len(set(values)) == 1 else f"{text} ± {statistics.stdev(values):.2g}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def status_text(group: Group) -> str:
    counts: dict[str, int] = {}
    for trial in group.trials:
        counts[trial.state.status] = counts.get(trial.state.status, 0) + 1
    return ", ".join(f"{n} {status}" for status, n in counts.items())


def results_table(study: Study) -> str:
    score, metric = study.score, study.spec.metric
    header = ["configuration", "trials", f"{metric} (best epoch)", f"train/{score} (last epoch)",
              f"val/{score} (last epoch)", f"test/{score}", "epochs"]
    rows = [[group.label, status_text(group), group.cell(metric_of),
             group.cell(lambda t: t.final(f"train/{score}")),
             group.cell(lambda t: t.final(f"val/{score}")),
             group.cell(lambda t: t.test(f"test/{score}")),
             group.cell(lambda t: t.state.epochs, 6)] for group in study.groups]
    return table(header, rows)


def mean_curve(group: Group, key: str) -> tuple[list[int], list[float]]:
    """``key`` per epoch, the mean over the trials that logged it and did not diverge."""
    by_epoch: dict[int, list[float]] = {}
    for trial in group.trials:
        if trial.diverged:
            continue
        for record in trial.records:
            value = finite(record.get(key))
            if value is not None:
                by_epoch.setdefault(record["epoch"], []).append(value)
    epochs = sorted(by_epoch)
    return epochs, [statistics.fmean(by_epoch[e]) for e in epochs]


_data_cache: dict[str, object] = {}


def data_of(cfg: Config):
    """The splits of ``cfg``, loaded once per data config, seed and dtype."""
    key = json.dumps([config_to_dict(cfg)["data"], cfg.seed, cfg.train.dtype], sort_keys=True)
    if key not in _data_cache:
        _data_cache[key] = load(cfg.data, seed=cfg.seed, dtype=cfg.train.dtype)
    return _data_cache[key]


def batch_of(cfg: Config, size: int) -> tuple[np.ndarray, np.ndarray]:
    splits = data_of(cfg)
    return splits.train.X[:size], splits.train.y[:size]


def activation_std_at_init(study: Study, size: int = 256) -> dict[str, list[tuple[str, float]]]:
    """Per configuration: the standard deviation of every parameter-free layer's output
    (the activations) when ``size`` training samples go through the freshly initialized
    model of its first seed, in eval mode."""
    found = {}
    for group in study.groups:
        cfg = group.trials[0].config
        x, _ = batch_of(cfg, size)
        model = build_model(cfg, x.shape[1:])
        x = x.astype(model.dtype)
        stds = []
        for layer in model.layers:
            x = layer.forward(x, train=False)
            if not layer.named("params"):
                stds.append((layer.registered_name, float(x.std())))
        found[group.label] = stds
    return found


def gradient_norms(study: Study, epoch: str = "first") -> tuple[dict[str, list[float]], str]:
    """Per configuration: each weighted layer's gradient norm, input to output, the mean
    over seeds, from the ``layers`` rows ``train.diagnostics`` adds to the ``first`` or
    ``last`` epoch's line. Without those rows, one batch's gradient at initialization.
    Returns the norms and where they come from."""
    found, source = {}, f"{epoch} epoch (train.diagnostics)"
    for group in study.groups:
        per_trial = []
        for trial in group.trials:
            if not trial.records:
                continue
            rows = trial.records[0 if epoch == "first" else -1].get("layers") or []
            norms = [row["grad_norm"] for row in rows if "grad_norm" in row]
            if norms:
                per_trial.append(norms)
        if not per_trial:
            found[group.label] = gradient_norms_at_init(group.trials[0].config)
            source = "one batch at initialization (no train.diagnostics rows in metrics.jsonl)"
        else:
            found[group.label] = [statistics.fmean(col) for col in zip(*per_trial)]
    return found, source


def gradient_norms_at_init(cfg: Config, size: int = 256) -> list[float]:
    x, y = batch_of(cfg, size)
    model = build_model(cfg, x.shape[1:])
    _, grads = model.loss(x, y)
    norms = []
    for i, layer in enumerate(model.layers):
        names = [f"{i}.{key}" for key in layer.named("params")]
        if names:
            norms.append(math.sqrt(sum(float(np.vdot(grads[n], grads[n])) for n in names)))
    return norms


def decayed_weights(trial: Trial) -> np.ndarray | None:
    """Every weight under L1/L2 (never biases, gamma or beta) at the end of training,
    flattened; None without a checkpoint."""
    params = trial.weights()
    if params is None:
        return None
    cfg = trial.config
    model = build_model(cfg, data_of(cfg).in_shape)
    return np.concatenate([params[name].ravel() for name in sorted(model.decay)])


def near_zero_fraction(study: Study, threshold: float) -> dict[str, list[float]]:
    """Per configuration, per trial: the share of decayed weights with |w| < threshold."""
    found = {}
    for group in study.groups:
        weights = [decayed_weights(t) for t in group.trials if not t.diverged]
        found[group.label] = [float(np.mean(np.abs(w) < threshold)) for w in weights if w is not None]
    return found


def weight_norms(study: Study) -> dict[str, list[float]]:
    """Per configuration, per trial: ‖w‖, the L2 norm of all decayed weights."""
    found = {}
    for group in study.groups:
        weights = [decayed_weights(t) for t in group.trials if not t.diverged]
        found[group.label] = [float(np.linalg.norm(w)) for w in weights if w is not None]
    return found


def epochs_to_target(study: Study, target: float, key: str | None = None) -> dict[str, list[int | None]]:
    """Per configuration, per trial: the first epoch whose ``key`` (the sweep's metric)
    reaches ``target`` (at or above it for a maximized metric); None if never."""
    key = key or study.spec.metric
    sign = 1.0 if study.spec.goal == "max" else -1.0
    found = {}
    for group in study.groups:
        found[group.label] = [next((r["epoch"] for r in t.records if finite(r.get(key)) is not None
                                    and sign * r[key] >= sign * target), None) for t in group.trials]
    return found


def swept_param(study: Study) -> str:
    """The first numeric parameter of the sweep: the x axis of the study figures."""
    for path, domain in study.spec.params.items():
        if all(isinstance(v, (int, float)) for v in domain.points() or domain.args[:2]):
            return path
    raise ValueError("this study's figures need a numeric parameter swept in params, "
                     "such as optimizer.lr: {values: [0.01, 0.1, 1.0]}")


def spread_across(study: Study) -> dict[str, float]:
    """Per variant: max − min of its configurations' mean metric (over the values of the
    swept parameter); a configuration whose trials all diverged in their first epoch, so
    reported nothing, counts as 0."""
    found: dict[str, list[float]] = {}
    for group in study.groups:
        value = group.mean(metric_of)
        found.setdefault(group.variant, []).append(0.0 if value is None else value)
    return {variant: max(v) - min(v) for variant, v in found.items()}


def learned_weights(study: Study) -> dict[str, np.ndarray]:
    """Per configuration: the mean over seeds of the first layer's weight vector."""
    found = {}
    for group in study.groups:
        vectors = []
        for trial in group.trials:
            params = trial.weights()
            if params is not None:
                vectors.append(params[sorted(k for k in params if k.endswith(".W"))[0]].ravel())
        if vectors:
            found[group.label] = np.mean(vectors, axis=0)
    return found


def depth_of(cfg: Config, in_shape: tuple) -> int:
    """Weighted layers on the main path (affine and conv layers, residual bodies
    included, projection shortcuts not)."""
    model = build_model(cfg, in_shape)
    return sum(1 for path, layer in model.chain.walk("")
               if "W" in layer.params and "shortcut" not in path.split("."))


def model_costs(study: Study) -> dict[str, tuple[int, int]]:
    """Per configuration: (parameters, multiply-adds per sample)."""
    found = {}
    for group in study.groups:
        cfg = group.trials[0].config
        rows = build_model(cfg, data_of(cfg).in_shape).summary()
        found[group.label] = (sum(r["params"] for r in rows), sum(r["macs"] for r in rows))
    return found


# -- figures ----------------------------------------------------------------------------
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


STYLES = ("-", "--", ":", "-.")


def curve_styles(study: Study) -> tuple[list[tuple[Group, str, str]], str]:
    """Which configurations get learning curves, each with a color and a line style:
    every one when there are at most 12 and 4 variants (color: the parameter values,
    style: the variant), else each variant's best."""
    values = list(dict.fromkeys(json.dumps(g.params, sort_keys=True) for g in study.groups))
    variants = list(dict.fromkeys(g.variant for g in study.groups))
    if len(study.groups) <= 12 and len(variants) <= len(STYLES) and len(values) > 1:
        return [(g, f"C{values.index(json.dumps(g.params, sort_keys=True)) % 10}",
                 STYLES[variants.index(g.variant)]) for g in study.groups], "every configuration"
    chosen = study.best_of_each_variant()
    what = "best configuration of each variant" if len(chosen) < len(study.groups) else "every configuration"
    return [(g, f"C{i % 10}", "-") for i, g in enumerate(chosen)], what


def curves_figure(study: Study, out: Path) -> str:
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


def panels(study: Study) -> list[tuple[str, list[Group]]]:
    """One panel per variant when the variants are crossed with parameters, else one."""
    if study.spec.variants and study.spec.params:
        variants = list(dict.fromkeys(g.variant for g in study.groups))
        return [(v, [g for g in study.groups if g.variant == v]) for v in variants]
    return [(study.spec.name, study.groups)]


def by_param(study: Study, values: dict, ylabel: str, title: str, out: Path, name: str,
             log_y: bool = False, diverged: bool = False) -> str:
    """Each variant's ``values[label]`` against the swept parameter (None: no point);
    with ``diverged``, a second panel counts each configuration's diverged trials."""
    param = swept_param(study)
    fig, axes = new_figure(2 if diverged else 1, title)
    variants = list(dict.fromkeys(g.variant for g in study.groups))
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


# -- the studies -------------------------------------------------------------------------
def init_section(study: Study, out: Path) -> list[str]:
    stds = activation_std_at_init(study)
    fig, axes = new_figure(len(panels(study)), "activation std per layer at initialization "
                                                "(one batch of 256 training samples)")
    for ax, (title, groups) in zip(axes, panels(study)):
        for group in groups:
            values = [s for _, s in stds[group.label]]
            shown = [s if s > 0 else math.nan for s in values]
            suffix = " (0 everywhere)" if not any(values) else ""
            ax.plot(range(1, len(values) + 1), shown, marker="o",
                    label=label_of(None, group.params) + suffix)
        ax.set(title=title, xlabel="activation layer (input → output)", ylabel="std of its output",
               yscale="log")
        legend(ax)
    image = save(fig, out, "activation_std.png")
    rows = []
    for group in study.groups:
        values = [s for _, s in stds[group.label]]
        rows.append([group.label, f"{values[0]:.3g}", f"{values[len(values) // 2]:.3g}",
                     f"{values[-1]:.3g}", group.cell(metric_of)])
    header = ["configuration", "std, first layer", "std, middle layer", "std, last layer",
              study.spec.metric]
    return ["## Activations at initialization", image, table(header, rows)]


def activations_section(study: Study, out: Path) -> list[str]:
    first, source = gradient_norms(study, "first")
    last, _ = gradient_norms(study, "last")
    fig, axes = new_figure(2, "gradient norm per weighted layer, mean over seeds")
    for ax, (norms, when) in zip(axes, ((first, "first epoch"), (last, "last epoch"))):
        for group in study.groups:
            ax.plot(range(1, len(norms[group.label]) + 1), norms[group.label], marker="o",
                    label=group.label)
        ax.set(title=when, xlabel="weighted layer (input → output)", ylabel="‖∂L/∂W‖",
               yscale="log")
    legend(axes[0])
    image = save(fig, out, "gradient_norms.png")
    rows = [[g.label, f"{first[g.label][0]:.2e}", f"{first[g.label][-1]:.2e}",
             f"{first[g.label][0] / max(first[g.label][-1], 1e-30):.2g}",
             g.cell(metric_of)] for g in study.groups]
    header = ["configuration", "first layer", "last layer", "first / last", study.spec.metric]
    return ["## Gradient norms across depth", f"Source: {source}.", image, table(header, rows)]


def regularization_section(study: Study, out: Path) -> list[str]:
    threshold = study.spec.report.get("near_zero", 1e-3)
    zeros = near_zero_fraction(study, threshold)
    fig, (gap_ax, hist_ax) = new_figure(2, "train vs validation accuracy, and the weights "
                                           "training ended with")
    labels = [g.label for g in study.groups]
    train = [g.mean(lambda t: t.final("train/acc")) or 0.0 for g in study.groups]
    val = [g.mean(lambda t: t.final("val/acc")) or 0.0 for g in study.groups]
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
    rows = [[g.label, g.cell(lambda t: t.final("train/acc")),
             g.cell(lambda t: t.final("val/acc")),
             g.cell(gap_of),
             g.cell(lambda t: t.test("test/acc")),
             mean_std(zeros[g.label], 3) if zeros[g.label] else "no checkpoint"] for g in study.groups]
    header = ["configuration", "train/acc", "val/acc", "gap", "test/acc",
              f"share of weights within ±{threshold:g}"]
    return ["## Overfitting and the weights", "Accuracies of the last epoch; the share of "
            "near-zero weights over every weight matrix at the end of training.", image,
            table(header, rows)]


def gap_of(trial: Trial) -> float | None:
    train, val = trial.final("train/acc"), trial.final("val/acc")
    return None if train is None or val is None else train - val


def batchnorm_section(study: Study, out: Path) -> list[str]:
    target = study.spec.report.get("target", 0.9)
    reached = epochs_to_target(study, target)
    means = {label: statistics.fmean(e) if e else None
             for label, e in ((label, [x for x in e if x is not None]) for label, e in reached.items())}
    image = by_param(study, means, f"epochs to {study.spec.metric} ≥ {target:g}",
                     f"epochs to reach {study.spec.metric} ≥ {target:g} (mean over the seeds "
                     f"that reach it; no point: none does)", out, "epochs_to_target.png",
                     diverged=True)
    return ["## Epochs to the target, and divergence", image, per_param_table(
        study, lambda g: reach_text(g, reached[g.label]))]


def reach_text(group: Group, epochs: list[int | None]) -> str:
    reached = [e for e in epochs if e is not None]
    text = f"{mean_std(reached, 3)} epochs" if reached else "never"
    if len(reached) < len(epochs):
        text += f" ({len(reached)}/{len(epochs)} reached"
        text += f", {group.diverged} diverged)" if group.diverged else ")"
    return text


def per_param_table(study: Study, cell) -> str:
    """Rows: the swept parameter's values; columns: the variants."""
    param = swept_param(study)
    variants = list(dict.fromkeys(g.variant for g in study.groups))
    values = list(dict.fromkeys(g.params[param] for g in study.groups))
    lookup = {(g.variant, g.params[param]): g for g in study.groups}
    rows = [[short(v), *(cell(lookup[(variant, v)]) if (variant, v) in lookup else "–"
                         for variant in variants)] for v in values]
    return table([param, *variants], rows)


def optimizers_section(study: Study, out: Path) -> list[str]:
    means = {g.label: g.mean(metric_of) for g in study.groups}
    image = by_param(study, means, f"{study.spec.metric} (mean over seeds)",
                     f"{study.spec.metric} against the learning rate", out, "by_learning_rate.png")
    spread = spread_across(study)
    rows = [[variant, f"{value:.3f}"] for variant, value in sorted(spread.items(), key=lambda kv: kv[1])]
    return ["## Sensitivity to the learning rate", image,
            per_param_table(study, lambda g: f"{g.cell(metric_of, 3)}"
                            + (f" ({g.diverged} diverged)" if g.diverged else "")),
            f"Spread of the mean {study.spec.metric} across the learning rates (max − min), "
            f"smallest first:", table(["optimizer", "spread"], rows)]


def schedules_section(study: Study, out: Path) -> list[str]:
    fig, (ax,) = new_figure(1, "the learning rate of each epoch")
    for group in study.best_of_each_variant():
        ax.plot(*mean_curve(group, "lr"), label=group.label)
    ax.set(xlabel="epoch", ylabel="learning rate")
    legend(ax)
    image = save(fig, out, "learning_rates.png")
    rows = [[g.label, g.cell(lambda t: t.final("train/loss")),
             g.cell(lambda t: t.final("val/acc")),
             g.cell(lambda t: t.test("test/acc"))] for g in study.groups]
    return ["## Schedules", image, table(["schedule", "train/loss (last epoch)",
                                          "val/acc (last epoch)", "test/acc"], rows)]


def polynomial_section(study: Study, out: Path) -> list[str]:
    from .data.datasets import Polynomial

    truth = Polynomial.true_weights
    weights = learned_weights(study)
    fig, (loss_ax, w_ax) = new_figure(2, "training (solid) and held-out (dashed) loss; "
                                         "learned weights")
    for group in study.groups:
        line = loss_ax.plot(*mean_curve(group, "train/loss"), label=group.label)[0]
        loss_ax.plot(*mean_curve(group, "val/loss"), "--", color=line.get_color())
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
        rows.append([group.label, *cells,
                     group.cell(lambda t: t.final("train/loss")),
                     group.cell(lambda t: t.final("val/loss")),
                     group.cell(lambda t: t.test("test/loss")),
                     str(len(w)) if w is not None else "–"])
    header = ["model", "w0", "w1", "w2", "w3", "train/loss", "val/loss (held out)", "test/loss",
              "weights"]
    return ["## Under- and overfitting", image, table(header, rows)]


def weight_decay_section(study: Study, out: Path) -> list[str]:
    norms = weight_norms(study)
    fig, (loss_ax, norm_ax) = new_figure(2, "training (solid) and held-out (dashed) loss; ‖w‖")
    for group in study.groups:
        line = loss_ax.plot(*mean_curve(group, "train/loss"), label=group.label)[0]
        loss_ax.plot(*mean_curve(group, "val/loss"), "--", color=line.get_color())
    loss_ax.set(xlabel="epoch", ylabel="loss (½ squared error)", yscale="log")
    legend(loss_ax)
    labels = [g.label for g in study.groups]
    norm_ax.bar(labels, [statistics.fmean(norms[l]) if norms[l] else 0.0 for l in labels])
    norm_ax.set(ylabel="‖w‖ at the end of training (mean over seeds)")
    image = save(fig, out, "weight_decay.png")
    rows = [[g.label, mean_std(norms[g.label]) if norms[g.label] else "no checkpoint",
             g.cell(lambda t: t.final("train/loss")),
             g.cell(lambda t: t.final("val/loss")),
             g.cell(lambda t: t.test("test/loss"))] for g in study.groups]
    return ["## Weight decay", image, table(["configuration", "‖w‖", "train/loss",
                                             "val/loss (held out)", "test/loss"], rows)]


def family_of(variant: str) -> str:
    """``plain-22`` → ``plain``: the variant's name without its depth."""
    return re.sub(r"-\d+$", "", variant)


def depth_residual_section(study: Study, out: Path) -> list[str]:
    depths = {g.label: depth_of(g.trials[0].config, data_of(g.trials[0].config).in_shape)
              for g in study.groups}
    fig, (ax,) = new_figure(1, f"{study.spec.metric} against depth (mean ± std over seeds)")
    families = list(dict.fromkeys(family_of(g.variant or g.label) for g in study.groups))
    for family in families:
        groups = sorted((g for g in study.groups if family_of(g.variant or g.label) == family),
                        key=lambda g: depths[g.label])
        values = [g.values(metric_of) for g in groups]
        ax.errorbar([depths[g.label] for g in groups],
                    [statistics.fmean(v) if v else math.nan for v in values],
                    yerr=[statistics.stdev(v) if len(v) > 1 else 0.0 for v in values],
                    marker="o", capsize=3, label=family)
    ax.set(xlabel="weighted layers on the main path", ylabel=study.spec.metric)
    legend(ax)
    image = save(fig, out, "depth.png")
    rows = [[g.label, str(depths[g.label]), g.cell(metric_of),
             g.cell(lambda t: t.final("train/loss"))] for g in study.groups]
    return ["## Depth", image, table(["network", "weighted layers", study.spec.metric,
                                      "train/loss (last epoch)"], rows)]


def clipping_section(study: Study, out: Path) -> list[str]:
    means = {g.label: None if g.diverged == len(g.trials) else g.mean(metric_of)
             for g in study.groups}
    image = by_param(study, means, f"best {study.spec.metric} (trials that did not diverge)",
                     f"{study.spec.metric} against the learning rate", out,
                     "by_learning_rate.png", log_y=True, diverged=True)

    def cell(group: Group) -> str:
        kept = [t.state.metric for t in group.trials if not t.diverged]
        text = mean_std(kept, 3) if kept else "–"
        return f"{text} ({group.diverged}/{len(group.trials)} diverged)"

    return ["## Divergence", f"Best {study.spec.metric} of the trials that did not diverge, "
            f"and how many diverged:", image, per_param_table(study, cell)]


def cnn_vs_mlp_section(study: Study, out: Path) -> list[str]:
    costs = model_costs(study)
    labels = [g.label for g in study.groups]
    fig, axes = new_figure(3, "cost and accuracy of each model (accuracy: mean ± std over seeds)",
                           height=3.8)
    accuracy = [g.values(lambda t: t.test("test/acc")) for g in study.groups]
    columns = (("parameters", [costs[l][0] for l in labels], None),
               ("multiply-adds per sample", [costs[l][1] for l in labels], None),
               ("test/acc", [statistics.fmean(a) if a else 0.0 for a in accuracy],
                [statistics.stdev(a) if len(a) > 1 else 0.0 for a in accuracy]))
    for ax, (what, heights, errors) in zip(axes, columns):
        bars = ax.bar(labels, heights, yerr=errors, capsize=4, color=[f"C{i}" for i in range(len(labels))])
        ax.bar_label(bars, [f"{h:,.0f}" if h >= 1 else f"{h:.3f}" for h in heights], padding=2)
        ax.set(title=what, ylim=(0, max(heights) * 1.15))
    image = save(fig, out, "costs.png")
    rows = [[g.label, f"{costs[g.label][0]:,}", f"{costs[g.label][1]:,} ({human(costs[g.label][1])})",
             g.cell(metric_of),
             g.cell(lambda t: t.test("test/acc"))] for g in study.groups]
    lines = ["## Parameters, multiply-adds, accuracy", image,
             table(["model", "parameters", "multiply-adds", study.spec.metric, "test/acc"], rows)]
    for group in study.groups:
        cfg = group.trials[0].config
        model = build_model(cfg, data_of(cfg).in_shape)
        layer_rows = []
        for row, (in_shape, out_shape) in zip(model.summary(), model.chain.shapes):
            if row["params"]:
                dense = (math.prod(in_shape) + 1) * math.prod(out_shape)
                layer_rows.append([f"{row['index']} {row['layer']}", str(row["output"]),
                                   f"{row['params']:,}", f"{row['macs']:,}", f"{dense:,}"])
        lines += [f"Layers of {group.label}:", table(
            ["layer", "output", "parameters", "multiply-adds", "an affine layer from the same "
             "input to the same output"], layer_rows)]
    return lines


SECTIONS = {"init": init_section, "activations": activations_section,
            "regularization": regularization_section, "batchnorm": batchnorm_section,
            "optimizers": optimizers_section, "schedules": schedules_section,
            "polynomial": polynomial_section, "weight_decay": weight_decay_section,
            "depth_residual": depth_residual_section, "clipping": clipping_section,
            "cnn_vs_mlp": cnn_vs_mlp_section}


# -- the report ---------------------------------------------------------------------------
def how_it_ran(study: Study) -> str:
    spec = study.spec
    parts = [f"Sweep `{spec.name}` in `{study.folder}`, base config `{spec.base}`"]
    if spec.variants:
        parts.append(f"variants: {', '.join(spec.variants)}")
    for path, domain in spec.params.items():
        parts.append(f"{path} ∈ {{{', '.join(short(v) for v in domain.points() or domain.args)}}}")
    if spec.seeds:
        parts.append(f"seeds {spec.seeds}")
    if spec.overrides:
        parts.append(f"overrides {' '.join(spec.overrides)}")
    return "; ".join(parts) + "."


def write_report(folder: Path, out_dir: Path | None = None) -> Path:
    """Write ``report.md`` and its PNG figures into ``out_dir`` (default ``folder/report``)
    and return the path of ``report.md``."""
    study = load_study(folder)
    if study.kind is not None and study.kind not in SECTIONS:
        raise ReportError(f"{folder / 'spec.yaml'}: report.study: unknown study {study.kind!r}; "
                          f"known: {', '.join(SECTIONS)}")
    out = Path(out_dir) if out_dir is not None else Path(folder) / "report"
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# {study.spec.name}", ""]
    if study.spec.claim:
        lines += ["**Claim.** " + study.spec.claim, ""]
    lines += [how_it_ran(study), "", "## Results", "",
              "Each cell: the mean ± sample standard deviation over the seeds of the trials "
              "that did not diverge (the trials column counts those that did).", "",
              results_table(study), "",
              curves_figure(study, out), ""]
    if study.kind is not None:
        try:
            section = SECTIONS[study.kind](study, out)
        except (RunError, OSError, KeyError, IndexError, ValueError) as error:
            section = [f"## {study.kind}", f"This section could not be drawn: "
                                           f"{type(error).__name__}: {error}"]
        for block in section:
            lines += [block, ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
