"""The report sections of the studies on how a network is built.

| study | what it adds |
|---|---|
| init | the activation std of every layer at initialization (one batch of training data) |
| activations | the gradient norm of every weighted layer, first and last epoch |
| depth_residual | validation accuracy against depth, plain and residual |
| cnn_vs_mlp | parameters, multiply-adds and accuracy; each layer's cost |
| bottleneck | each variant's block of convolutions: receptive field, parameters, multiply-adds, accuracy |

Each section is ``(study, out) -> markdown blocks`` and saves its figures into ``out``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from ..tables import human
from .figures import error_bars, legend, new_figure, panels, save
from .measures import activation_std_at_init, data_of, depth_of, gradient_norms, model_costs, model_of
from .study import Study, at_last_epoch, label_of, metric_of, on_test
from .text import table


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


def family_of(variant: str) -> str:
    """``plain-22`` → ``plain``: the variant's name without its depth."""
    return re.sub(r"-\d+$", "", variant)


def depth_residual_section(study: Study, out: Path) -> list[str]:
    depths = {g.label: depth_of(g.config, data_of(g.config).in_shape) for g in study.groups}
    fig, (ax,) = new_figure(1, f"{study.spec.metric} against depth (mean ± std over seeds)")
    families = list(dict.fromkeys(family_of(g.variant or g.label) for g in study.groups))
    for family in families:
        groups = sorted((g for g in study.groups if family_of(g.variant or g.label) == family),
                        key=lambda g: depths[g.label])
        means, stds = error_bars([g.values(metric_of) for g in groups], math.nan)
        ax.errorbar([depths[g.label] for g in groups], means, yerr=stds,
                    marker="o", capsize=3, label=family)
    ax.set(xlabel="weighted layers on the main path", ylabel=study.spec.metric)
    legend(ax)
    image = save(fig, out, "depth.png")
    rows = [[g.label, str(depths[g.label]), g.cell(metric_of),
             g.cell(at_last_epoch("train/loss"))] for g in study.groups]
    return ["## Depth", image, table(["network", "weighted layers", study.spec.metric,
                                      "train/loss (last epoch)"], rows)]


def cnn_vs_mlp_section(study: Study, out: Path) -> list[str]:
    costs = model_costs(study)
    labels = [g.label for g in study.groups]
    fig, axes = new_figure(3, "cost and accuracy of each model (accuracy: mean ± std over seeds)",
                           height=3.8)
    accuracy, spread = error_bars([g.values(on_test("test/acc")) for g in study.groups], 0.0)
    columns = (("parameters", [costs[l][0] for l in labels], None),
               ("multiply-adds per sample", [costs[l][1] for l in labels], None),
               ("test/acc", accuracy, spread))
    for ax, (what, heights, errors) in zip(axes, columns):
        bars = ax.bar(labels, heights, yerr=errors, capsize=4, color=[f"C{i}" for i in range(len(labels))])
        ax.bar_label(bars, [f"{h:,.0f}" if h >= 1 else f"{h:.3f}" for h in heights], padding=2)
        ax.set(title=what, ylim=(0, max(heights) * 1.15))
    image = save(fig, out, "costs.png")
    rows = [[g.label, f"{costs[g.label][0]:,}", f"{costs[g.label][1]:,} ({human(costs[g.label][1])})",
             g.cell(metric_of), g.cell(on_test("test/acc"))] for g in study.groups]
    lines = ["## Parameters, multiply-adds, accuracy", image,
             table(["model", "parameters", "multiply-adds", study.spec.metric, "test/acc"], rows)]
    for group in study.groups:
        model = model_of(group.config)
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


def receptive_field(kernels: list[int]) -> int:
    """The input window one output sees through stacked stride-1 convolutions:
    ``1 + Σ (k − 1)``, so two 3×3 see 5×5, as one 5×5 does."""
    return 1 + sum(k - 1 for k in kernels)


def bottleneck_section(study: Study, out: Path) -> list[str]:
    """The block is every convolution after the first (the stem, shared by every
    variant); its parameters and multiply-adds are dl summary's rows of those layers."""
    rows, labels, block_params, block_macs = [], [], [], []
    for group in study.groups:
        model = model_of(group.config)
        block = [(layer, row) for layer, row in zip(model.layers, model.summary())
                 if layer.registered_name == "conv2d"][1:]
        params, macs = sum(r["params"] for _, r in block), sum(r["macs"] for _, r in block)
        field = receptive_field([layer.kernel_hw[0] for layer, _ in block])
        kernels = " → ".join(f"{l.kernel_hw[0]}×{l.kernel_hw[1]}×{l.filters}" for l, _ in block)
        labels.append(group.label)
        block_params.append(params)
        block_macs.append(macs)
        rows.append([group.label, kernels, f"{field}×{field}", f"{params:,}", f"{macs:,}",
                     f"{sum(r['params'] for r in model.summary()):,}",
                     group.cell(on_test("test/acc"))])
    fig, axes = new_figure(3, "the block of each variant: cost, and the accuracy it reaches "
                              "(mean ± std over seeds)", height=3.8)
    accuracy, spread = error_bars([g.values(on_test("test/acc")) for g in study.groups], 0.0)
    columns = (("block parameters", block_params, None),
               ("block multiply-adds per sample", block_macs, None),
               ("test/acc", accuracy, spread))
    for ax, (what, heights, errors) in zip(axes, columns):
        bars = ax.bar(labels, heights, yerr=errors, capsize=4,
                      color=[f"C{i}" for i in range(len(labels))])
        ax.bar_label(bars, [f"{h:,.0f}" if h >= 1 else f"{h:.3f}" for h in heights], padding=2)
        ax.set(title=what, ylim=(0, max(heights) * 1.15))
        ax.tick_params(axis="x", labelrotation=20)
    image = save(fig, out, "block_costs.png")
    header = ["variant", "block (kernel × kernel × filters)", "receptive field",
              "block parameters", "block multiply-adds", "model parameters", "test/acc"]
    return ["## The block: receptive field, cost, accuracy", image, table(header, rows)]
