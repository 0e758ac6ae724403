"""The report sections of the studies that train at several learning rates.

| study | what it adds |
|---|---|
| batchnorm | epochs to ``target`` validation accuracy at each learning rate; diverged rates |
| optimizers | accuracy against the learning rate; its spread (max − min) across rates |
| schedules | the learning rate of every epoch; final training loss |
| clipping | diverged trials and validation MSE at each learning rate |

Each section is ``(study, out) -> markdown blocks`` and saves its figures into ``out``.
"""

from __future__ import annotations

from pathlib import Path

from ..numbers import short
from .figures import by_param, legend, new_figure, save
from .measures import epochs_to_target, mean_curve, spread_across
from .study import Group, Study, at_last_epoch, metric_of, on_test
from .text import mean_std, table


def per_param_table(study: Study, cell) -> str:
    """Rows: the swept parameter's values; columns: the variants; cells: ``cell(group)``."""
    param = study.swept_param()
    variants = study.variant_names
    values = list(dict.fromkeys(g.params[param] for g in study.groups))
    lookup = {(g.variant, g.params[param]): g for g in study.groups}
    rows = [[short(v), *(cell(lookup[(variant, v)]) if (variant, v) in lookup else "–"
                         for variant in variants)] for v in values]
    return table([param, *variants], rows)


def batchnorm_section(study: Study, out: Path) -> list[str]:
    target = study.spec.report.get("target", 0.9)
    reached = epochs_to_target(study, target)
    kept = {label: [e for e in epochs if e is not None] for label, epochs in reached.items()}
    image = by_param(study, kept, f"epochs to {study.spec.metric} ≥ {target:g}",
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


def optimizers_section(study: Study, out: Path) -> list[str]:
    values = {g.label: g.values(metric_of) for g in study.groups}
    image = by_param(study, values, f"{study.spec.metric}",
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
    rows = [[g.label, g.cell(at_last_epoch("train/loss")), g.cell(at_last_epoch("val/acc")),
             g.cell(on_test("test/acc"))] for g in study.groups]
    return ["## Schedules", image, table(["schedule", "train/loss (last epoch)",
                                          "val/acc (last epoch)", "test/acc"], rows)]


def clipping_section(study: Study, out: Path) -> list[str]:
    values = {g.label: g.values(metric_of) for g in study.groups}  # of the trials that did not diverge
    image = by_param(study, values, f"best {study.spec.metric} (trials that did not diverge)",
                     f"{study.spec.metric} against the learning rate", out,
                     "by_learning_rate.png", log_y=True, diverged=True)

    def cell(group: Group) -> str:
        kept = [t.state.metric for t in group.trials if not t.diverged]
        text = mean_std(kept, 3) if kept else "–"
        return f"{text} ({group.diverged}/{len(group.trials)} diverged)"

    return ["## Divergence", f"Best {study.spec.metric} of the trials that did not diverge, "
            f"and how many diverged:", image, per_param_table(study, cell)]
