"""The report section of the distributed study: synchronous and asynchronous training
on K workers, at equal numbers of gradients.

- one row per configuration: its mode and K, the staleness of its updates (async: mean
  and largest), the training objective and validation loss of its last epoch, and for
  a synchronous one how far each step's loss lies from that of the synchronous run on
  the fewest workers (relative: rounding alone is about 1e-15);
- ``distributed.png``: the training objective against the number of gradients applied,
  and the mean staleness against K.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from ..runs import Run
from .figures import legend, new_figure, save
from .measures import mean_curve
from .study import Group, Study, at_last_epoch, on_test
from .text import table


def lines_of(group: Group, key: str, updates: bool) -> list[list[dict]]:
    """Per trial that did not diverge: its lines holding ``key``, update lines of an
    async run (``updates``) or the others."""
    return [[line for line in Run(trial.folder).read_metrics()
             if key in line and ("staleness" in line) == updates]
            for trial in group.trials if not trial.diverged]


def staleness(group: Group) -> list[int]:
    return [line["staleness"] for lines in lines_of(group, "staleness", True) for line in lines]


def step_losses(group: Group) -> list[float]:
    """The step losses of the group's first trial (``train.log_every: 1``)."""
    trials = lines_of(group, "train/batch_loss", group.config.parallel.mode == "async")
    return [line["train/batch_loss"] for line in trials[0]] if trials else []


def distributed_section(study: Study, out: Path) -> list[str]:
    sync = sorted((g for g in study.groups if g.config.parallel.mode == "sync"),
                  key=lambda g: g.config.parallel.workers)
    reference = step_losses(sync[0]) if sync else []
    rows = []
    for group in study.groups:
        parallel = group.config.parallel
        stale = staleness(group)
        losses = step_losses(group) if parallel.mode == "sync" else []
        apart = (max(abs(a - b) / abs(b) for a, b in zip(losses, reference))
                 if losses and len(losses) == len(reference) else None)
        rows.append([group.label, parallel.mode, parallel.workers,
                     f"{statistics.fmean(stale):.2f} ({max(stale)})" if stale else "–",
                     group.cell(at_last_epoch("train/objective")),
                     group.cell(at_last_epoch("val/loss")), group.cell(on_test("test/acc")),
                     "–" if apart is None else f"{apart:.1e}"])
    header = ["configuration", "mode", "workers", "staleness: mean (largest)",
              "train/objective (last epoch)", "val/loss (last epoch)", "test/acc",
              f"step losses: largest relative gap to {sync[0].label if sync else 'sync'}"]
    return ["## Workers, staleness and the loss at equal numbers of gradients",
            figure(study, out), table(header, rows)]


def figure(study: Study, out: Path) -> str:
    fig, (loss_ax, stale_ax) = new_figure(2, "synchronous and asynchronous SGD on K workers")
    for i, group in enumerate(study.groups):
        parallel = group.config.parallel
        epochs, objective = mean_curve(group, "train/objective")
        steps = group.trials[0].records[0]["step"] if group.trials[0].records else 1
        loss_ax.plot([e * steps for e in epochs], objective, "-" if parallel.mode == "sync" else "--",
                     color=f"C{i % 10}", label=group.label)
    loss_ax.set(xlabel="gradients applied", ylabel="train/objective (epoch mean)", yscale="log")
    legend(loss_ax)
    asynchronous = [g for g in study.groups if g.config.parallel.mode == "async"]
    workers = [g.config.parallel.workers for g in asynchronous]
    means = [statistics.fmean(staleness(g)) if staleness(g) else 0.0 for g in asynchronous]
    stale_ax.plot(workers, means, marker="o", label="async: mean staleness")
    stale_ax.plot(workers, [k - 1 for k in workers], ":", color="gray", label="K − 1")
    stale_ax.set(xlabel="workers K", ylabel="updates between pull and push")
    legend(stale_ax)
    return save(fig, out, "distributed.png")
