"""A finished sweep read back as a study: its spec, and its trials grouped by configuration.

```python
study = load_study("runs/init/20250101-120000-ab12cd")
for group in study.groups:                       # one configuration: a variant and its values
    print(group.label, group.cell(metric_of), group.cell(at_last_epoch("train/loss")))
```

A ``Group`` turns a getter (a function of a trial, such as ``metric_of``) into the values
of its seeds, their mean or a table cell; trials that diverged are left out of all three.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from ..config import load_saved_config
from ..layout import RunLayout, SweepLayout
from ..numbers import short
from ..plot_parts import epoch_records
from ..runs import Run
from ..schema import Config
from ..sweep.folder import saved_spec, trial_table
from ..sweep.ledger import SweepError, TrialState
from ..sweep.spec import SweepSpec
from .text import mean_std


class ReportError(RuntimeError):
    """The folder is not a sweep, or holds nothing to report yet."""


def finite(value) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


@dataclass
class Trial:
    """One finished (or diverged) trial and its run folder."""

    state: TrialState
    folder: Path

    @cached_property
    def records(self) -> list[dict]:
        return epoch_records(self.folder)

    @cached_property
    def summary(self) -> dict:
        return Run(self.folder).read_summary()

    @cached_property
    def config(self) -> Config:
        return load_saved_config(RunLayout(self.folder).config)

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
        run = Run(self.folder)
        for kind in ("last", "best"):
            if run.layout.checkpoint(kind).exists():
                return run.load_checkpoint(kind)["params"]
        return None


def metric_of(trial: Trial) -> float | None:
    """The sweep's metric: its best value over the trial's epochs."""
    return trial.state.metric


def at_last_epoch(key: str):
    """The getter of ``key`` in a trial's last epoch: ``group.cell(at_last_epoch("val/acc"))``."""
    return lambda trial: trial.final(key)


def on_test(key: str):
    """The getter of ``key`` in a trial's test scores: ``group.cell(on_test("test/acc"))``."""
    return lambda trial: trial.test(key)


@dataclass
class Group:
    """One configuration: a variant and its parameter values, trained once per seed."""

    label: str
    variant: str | None
    params: dict
    trials: list[Trial]

    @property
    def config(self) -> Config:
        """The config of its first trial (the seeds' configs differ only in ``seed``)."""
        return self.trials[0].config

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
        """The measure the sweep ranks by (``acc``, ``loss``, ``mse``, ...), which the
        report shows on every split, so that its columns compare like with like."""
        return self.spec.metric.split("/", 1)[1]

    @property
    def variant_names(self) -> list[str | None]:
        """The variants in the order of their first configuration (None: no variants)."""
        return list(dict.fromkeys(g.variant for g in self.groups))

    def swept_param(self) -> str:
        """The first numeric parameter of the sweep: the x axis of the study figures."""
        for path, domain in self.spec.params.items():
            bounds = domain.args if domain.kind == "values" else domain.args[:2]
            if all(isinstance(v, (int, float)) for v in bounds):
                return path
        raise ValueError("this study's figures need a numeric parameter swept in params, "
                         "such as optimizer.lr: {values: [0.01, 0.1, 1.0]}")

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


def label_of(variant: str | None, params: dict) -> str:
    parts = [variant] if variant is not None else []
    parts += [f"{path.rsplit('.', 1)[-1]}={short(value)}" for path, value in params.items()]
    return ", ".join(parts) or "base"


def load_study(folder: Path) -> Study:
    """The sweep in ``folder``: its spec and its trials grouped by configuration (those
    that never ran are left out)."""
    folder = Path(folder)
    layout = SweepLayout(folder)
    if not layout.ledger.exists() or not layout.spec.exists():
        raise ReportError(f"{folder} is not a sweep folder (no spec.yaml and ledger.jsonl)")
    try:
        spec = saved_spec(folder)
        states = sorted(trial_table(folder, spec).values(), key=lambda s: s.index)
    except SweepError as error:
        raise ReportError(str(error)) from None
    groups: dict[int, Group] = {}
    for state in states:
        run_dir = RunLayout(layout.trial(state.index)).curves_run()
        if state.status not in ("completed", "diverged", "pruned") or not RunLayout(run_dir).is_run:
            continue
        group = groups.setdefault(state.config, Group(label_of(state.variant, state.params),
                                                      state.variant, state.params, []))
        group.trials.append(Trial(state, run_dir))
    if not groups:
        raise ReportError(f"{folder}: no trial has finished yet")
    return Study(folder, spec, list(groups.values()))
