"""What a sweep found: configurations ranked, the leaderboard, results.csv and best.yaml.

A configuration is ranked by the mean of its trials' metric (over ``seeds``), with the
sample standard deviation shown. Configurations trained to the end come first, then those
pruned (later rungs before earlier ones), then unfinished, diverged and failed ones.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table

from ..layout import SweepLayout
from ..tables import number
from .ledger import FINAL, TrialState
from .spec import SweepSpec

STATUS_ORDER = {"completed": 0, "pruned": 1, "paused": 2, "running": 2, "interrupted": 2,
                "pending": 2, "diverged": 3, "failed": 4}
STATUS_STYLE = {"completed": "green", "pruned": "yellow", "running": "cyan", "paused": "cyan",
                "diverged": "magenta", "failed": "red", "interrupted": "yellow", "pending": "dim"}


@dataclass
class ConfigResult:
    config: int
    params: dict
    trials: list[TrialState]
    status: str
    mean: float | None
    std: float | None

    @property
    def epochs(self) -> int:
        return max(t.epochs for t in self.trials)

    @property
    def variant(self) -> str | None:
        return self.trials[0].variant


def config_status(trials: list[TrialState]) -> str:
    """Completed only when every repeat completed; else the most telling state."""
    return max((t.status for t in trials), key=lambda s: (STATUS_ORDER.get(s, 2), s))


def configurations(table: dict[int, TrialState], spec: SweepSpec) -> list[ConfigResult]:
    """Every configuration, best first."""
    groups: dict[int, list[TrialState]] = {}
    for state in sorted(table.values(), key=lambda s: s.index):
        groups.setdefault(state.config, []).append(state)
    results = []
    for config, trials in groups.items():
        values = [t.metric for t in trials if t.metric is not None and math.isfinite(t.metric)]
        mean = statistics.fmean(values) if values else None
        std = statistics.stdev(values) if len(values) > 1 else None
        results.append(ConfigResult(config, trials[0].params, trials, config_status(trials), mean, std))
    sign = -1.0 if spec.goal == "max" else 1.0
    return sorted(results, key=lambda r: (STATUS_ORDER.get(r.status, 2),
                                          -r.epochs if r.status == "pruned" else 0,
                                          r.mean is None, sign * (r.mean or 0.0), r.config))


def best_configuration(table: dict[int, TrialState], spec: SweepSpec) -> ConfigResult | None:
    ranked = configurations(table, spec)
    if ranked and ranked[0].status == "completed" and ranked[0].mean is not None:
        return ranked[0]
    return None


def outranked(table: dict[int, TrialState], spec: SweepSpec) -> list[TrialState]:
    """The trials of every configuration that can no longer become the best: all its
    trials ended and none failed (a retry may change a failed one's score), and it was
    pruned or diverged, or a configuration that ended the same way ranks above it. Ended
    scores never change, so neither does that order."""
    leader, found = None, []  # the best configuration whose trials all ended without failure
    for result in configurations(table, spec):
        if not all(t.status in FINAL and t.status != "failed" for t in result.trials):
            continue
        if leader is None and result.status == "completed" and result.mean is not None:
            leader = result
            continue
        found.extend(result.trials)
    return found


def show(value) -> str:
    """A parameter value in a cell: numbers to 4 significant digits, structures as JSON."""
    if isinstance(value, (dict, list)):
        text = json.dumps(value, separators=(",", ":"))
        return text if len(text) <= 40 else text[:37] + "..."
    return number(value)


def describe_trial(params: dict, variant: str | None) -> str:
    """``variant tanh, optimizer.lr=0.01``: what sets a trial apart, for messages."""
    values = [f"{p}={show(v)}" for p, v in params.items()]
    return ", ".join(([f"variant {variant}"] if variant is not None else []) + values)


def variant_columns(spec: SweepSpec) -> list[str]:
    return ["variant"] if spec.variants else []


def metric_text(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "-"
    return f"{mean:.4f}" + (f" ± {std:.4f}" if std is not None else "")


def styled(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, 'white')}]{status}[/]"


def scored_text(result: ConfigResult) -> str:
    """The metric cell of a configuration: ``mean ± std``, and over how many of its seeds
    when not all of them have a result yet (a sweep stopped midway)."""
    text = metric_text(result.mean, result.std)
    scored = sum(t.metric is not None and math.isfinite(t.metric) for t in result.trials)
    if result.mean is not None and scored < len(result.trials):
        text += f" ({scored} of {len(result.trials)} seeds)"
    return text


def leaderboard(table: dict[int, TrialState], spec: SweepSpec, top: int = 10) -> Table:
    """The configurations that have a result, best first; the title counts only those,
    then names what the others (pending, failed, ...) are."""
    ranked = configurations(table, spec)
    scored = [r for r in ranked if r.mean is not None]
    unscored = tally([r.status for r in ranked if r.mean is None])
    repeats = len(spec.repeats)
    what = f"mean ± std over {repeats} seeds" if repeats > 1 else "one trial each"
    if spec.kfold:
        what += f", each the mean over {spec.kfold} folds"
    by = f"by {spec.metric} ({spec.goal})"
    title = (f"{spec.name}: best {min(top, len(scored))} of {len(scored)} scored configurations {by}"
             if scored else f"{spec.name}: no configuration scored {by} yet")
    grid = Table(title=title + (f"; not scored: {unscored}" if unscored else ""), caption=what)
    grid.add_column("rank", justify="right")
    grid.add_column("config", justify="right")
    for path in [*variant_columns(spec), *spec.params]:
        grid.add_column(path, justify="right")
    grid.add_column(spec.metric, justify="right", no_wrap=True)
    grid.add_column("status")
    grid.add_column("epochs", justify="right")
    for rank, result in enumerate(scored[:top], 1):
        variant = [result.variant] if spec.variants else []
        grid.add_row(str(rank), str(result.config), *variant,
                     *(show(result.params[p]) for p in spec.params),
                     scored_text(result), styled(result.status), str(result.epochs))
    return grid


def tally(statuses: list[str]) -> str:
    """``2 completed, 1 failed``: how many of each status, in ranking order."""
    found: dict[str, int] = {}
    for status in statuses:
        found[status] = found.get(status, 0) + 1
    order = sorted(found, key=lambda s: (STATUS_ORDER.get(s, 2), s))
    return ", ".join(f"{found[s]} {s}" for s in order)


def counts(table: dict[int, TrialState]) -> str:
    return tally([state.status for state in table.values()])


def trials_table(table: dict[int, TrialState], spec: SweepSpec, limit: int = 25) -> Table:
    """The live view: running trials first, then the best finished, then the rest."""
    states = sorted(table.values(), key=lambda s: s.index)
    sign = -1.0 if spec.goal == "max" else 1.0

    def priority(s: TrialState):
        return (s.status != "running", STATUS_ORDER.get(s.status, 2),
                s.metric is None, sign * (s.metric or 0.0), s.index)

    shown = sorted(states, key=priority)[:limit]
    grid = Table(title=f"{spec.name}: {counts(table)}", caption=(
        f"{len(states) - len(shown)} more trials not shown" if len(states) > len(shown) else None))
    for column in ("trial", "status", *(["seed"] if spec.seeds else []), *variant_columns(spec),
                   *spec.params, spec.metric, "epochs", "time"):
        grid.add_column(column, justify="left" if column == "status" else "right")
    now = time.time()
    for s in sorted(shown, key=lambda s: s.index):
        seconds = s.time_s + (now - s.started if s.status == "running" and s.started else 0.0)
        grid.add_row(str(s.index), styled(s.status), *([str(s.seed)] if spec.seeds else []),
                     *([s.variant] if spec.variants else []), *(show(s.params[p]) for p in spec.params),
                     metric_text(s.metric, None), str(s.epochs or "-"), f"{seconds:.1f}s")
    return grid


def results_csv(table: dict[int, TrialState], spec: SweepSpec) -> str:
    """One row per trial: variant, varied params, seed, metric, status, epochs, time."""
    out = io.StringIO()
    writer = csv.writer(out)
    header = ["trial", "round", "config", "seed", *variant_columns(spec), *spec.params, spec.metric]
    if spec.kfold:
        header.append(f"{spec.metric}_fold_std")
    header += ["status", "epochs", "time_s", "dir", "error"]
    writer.writerow(header)
    for s in sorted(table.values(), key=lambda s: s.index):
        params = [json.dumps(v) if isinstance(v, (dict, list)) else v for v in
                  (s.params[p] for p in spec.params)]
        variant = [s.variant] if spec.variants else []
        row = [s.index, s.round, s.config, s.seed, *variant, *params, s.metric]
        if spec.kfold:
            folds = [m for m in (s.fold_metrics or []) if m is not None]
            row.append(statistics.stdev(folds) if len(folds) > 1 else None)
        row += [s.status, s.epochs, round(s.time_s, 3), SweepLayout.trial_name(s.index), s.error or ""]
        writer.writerow(["" if v is None else v for v in row])
    return out.getvalue()


def best_yaml(config_text: str, best: ConfigResult, spec: SweepSpec, sweep_dir: Path) -> str:
    """The best configuration's resolved config, with a header saying where it came from."""
    lines = [f"# Best of sweep {spec.name} ({sweep_dir}): configuration {best.config},",
             f"# {spec.metric} {metric_text(best.mean, best.std)} ({spec.goal}).",
             f"# {describe_trial(best.params, best.variant)}",
             (f"# Score it again by {spec.kfold}-fold cross-validation: dl train best.yaml; "
              f"for one final model, drop validation.kfold (and set data.split.val)"
              if spec.kfold else "# Train it again (same data split): dl train best.yaml")]
    return "\n".join(lines) + "\n" + config_text


def plan_table(plans: list, spec: SweepSpec) -> Table:
    """The trials a dry run would start."""
    grid = Table(title=f"{spec.name}: {len(plans)} trial{'s' * (len(plans) != 1)}")
    for column in ("trial", "config", *(["seed"] if spec.seeds else []), *variant_columns(spec),
                   *spec.params):
        grid.add_column(column, justify="right")
    for plan in plans:
        grid.add_row(str(plan.index), str(plan.config), *([str(plan.seed)] if spec.seeds else []),
                     *([plan.variant] if spec.variants else []),
                     *(show(plan.params[p]) for p in spec.params))
    return grid


def plan_lines(spec: SweepSpec, trials: int, max_epochs: int) -> list[str]:
    """How a sweep will run, in a few sentences."""
    from .pruning import rungs

    configs = spec.configurations_per_round()
    if spec.method == "grid":
        sizes = [str(len(spec.variant_names))] if spec.variants else []
        sizes += [str(d.size()) for d in spec.params.values()]
        lines = [f"grid of {' × '.join(sizes)} = {configs} configurations"]
    elif spec.method == "tpe":
        lines = [f"TPE search (Optuna): {spec.trials} configurations in {spec.rounds} rounds of "
                 f"{spec.batch}, each round asked once the previous one is scored, seed {spec.seed}"]
    else:
        lines = [f"random search: {spec.trials} configurations drawn from seed {spec.seed}"]
    if spec.variants and spec.params:
        lines.append(f"{len(spec.variants)} variants ({', '.join(spec.variants)}), each crossed "
                     f"with the same {spec.configurations_per_variant()} configuration(s) of params")
    elif spec.variants:
        lines.append(f"{len(spec.variants)} variants ({', '.join(spec.variants)}), one "
                     f"configuration each")
    if spec.seeds:
        lines.append(f"each trained with seeds {spec.seeds}: {trials} trials, ranked by the mean")
    if spec.kfold:
        lines.append(f"each trial scored as the mean {spec.metric} over {spec.kfold} folds")
    if spec.prune:
        schedule = rungs(spec.prune.min_epochs, spec.prune.eta, max_epochs)
        verdict = (f"the best 1/{spec.prune.eta} of each rung go on" if spec.prune.rule == "sha"
                   else "those not below the rung's median go on")
        lines.append(f"{'successive halving' if spec.prune.rule == 'sha' else 'median rule'} at "
                     f"epochs {schedule}: {verdict}")
    if spec.refine:
        lines.append(f"then {spec.refine.rounds} refined round(s) of {configs} configurations, "
                     f"ranges narrowed around the best {spec.refine.top} (drawn once the "
                     f"previous round is done)")
    lines.append(f"metric: {spec.metric} ({spec.goal}); checkpoints kept: {spec.keep_checkpoints}")
    return lines
