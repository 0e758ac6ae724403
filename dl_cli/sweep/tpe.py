"""Model-based search (``method: tpe``): Optuna's TPE sampler, asked and told in rounds.

A tree-structured Parzen estimator splits the configurations scored so far into the best
fraction γ and the rest, fits a density to each, ``l(x)`` and ``g(x)``, and proposes the
candidate of largest ``l(x) / g(x)``; its first configurations (Optuna's
``n_startup_trials``, 10) are drawn at random. The densities are multivariate (one
over all the parameters together, so that it learns how they act together, the learning
rate with the batch size for one).

How it fits the sweep's machinery (the ledger, resume, pruning and backends stay as they
are): the ``trials`` configurations of each variant are planned in rounds of ``batch``.
Round ``r`` is planned once every trial of rounds ``< r`` has ended, by a fresh Optuna
study that is *told* those trials, in configuration order, from the ledger alone, then
*asked* for the round's configurations, its sampler seeded with (sweep seed, r, variant).
Within a round the asked configurations spread out by Optuna's "constant liar" (a
configuration asked but not scored counts as a poor one). Nothing depends on how many
workers train the round, on when its trials end, or on whether the sweep was resumed: a
resume tells a fresh study the same ledger and asks the same configurations, and a round
the ledger already declared is taken from it as it is.

Each configuration is one Optuna trial: its score is the mean over ``seeds`` (as
``results.configurations`` ranks it); a pruned configuration is told as PRUNED with its
rung scores as intermediate values; a diverged or failed one as FAIL, which TPE leaves out.

The sweep's domains map to Optuna distributions (``distribution``): ``uniform`` and
``loguniform`` to a FloatDistribution (log for the latter), ``int_uniform`` and
``int_loguniform`` to an IntDistribution; a domain of listed points (``range``, or any
of them with ``grid: N``) to an IntDistribution over the position of its point, which
keeps their order; ``values`` to a CategoricalDistribution over the positions of its
values (which may be any YAML, layer lists included).
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np

from .domains import Domain
from .ledger import FINAL, TrialState
from .results import configurations
from .sampling import TrialPlan
from .spec import SweepSpec


def distribution(domain: Domain):
    """The Optuna distribution of a sweep domain (see the module docstring)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if domain.kind == "values":
        return CategoricalDistribution(list(range(len(domain.args))))
    if domain.kind == "range" or domain.grid is not None:
        return IntDistribution(0, domain.size() - 1)
    lo, hi = domain.args
    if domain.kind in ("uniform", "loguniform"):
        return FloatDistribution(float(lo), float(hi), log=domain.log)
    return IntDistribution(int(lo), int(hi), log=domain.log)


def positional(domain: Domain) -> bool:
    """Whether Optuna sees the position of a point rather than the value itself."""
    return domain.kind in ("values", "range") or domain.grid is not None


def to_value(domain: Domain, sampled):
    """The config value of what Optuna sampled."""
    if positional(domain):
        return domain.point(int(sampled))
    return float(sampled) if domain.kind in ("uniform", "loguniform") else int(sampled)


def from_value(domain: Domain, value):
    """What Optuna sampled to give ``value`` (a value from the ledger): its position for
    a domain of points (the first equal one, as JSON compares), else the value."""
    if not positional(domain):
        return value
    wanted = json.dumps(value, sort_keys=True)
    return next(i for i, point in enumerate(domain.points())
                if json.dumps(point, sort_keys=True) == wanted)


def round_sizes(spec: SweepSpec, round_index: int) -> tuple[int, int]:
    """(the round's first configuration index, its configurations per variant)."""
    per_variant = min(spec.batch, spec.trials - round_index * spec.batch)
    return round_index * spec.batch * len(spec.variant_names), per_variant


def sampler_seed(spec: SweepSpec, round_index: int, variant_index: int) -> int:
    return int(np.random.SeedSequence([spec.seed, round_index, variant_index]).generate_state(1)[0])


def told(spec: SweepSpec, domains: dict[str, Domain], history: dict[int, TrialState]) -> list:
    """The ended configurations of ``history`` as Optuna trials, in configuration order."""
    from optuna.trial import TrialState as State, create_trial

    dists = {path: distribution(d) for path, d in domains.items()}
    trials = []
    for result in sorted(configurations(history, spec), key=lambda r: r.config):
        params = {path: from_value(domains[path], result.params[path]) for path in domains}
        if result.status == "completed" and result.mean is not None:
            trials.append(create_trial(params=params, distributions=dists, value=result.mean))
        elif result.status == "pruned":
            steps = sorted(set.intersection(*(set(t.rungs) for t in result.trials)))
            scores = {step: [t.rungs[step] for t in result.trials] for step in steps}
            intermediate = {step: sum(v) / len(v) for step, v in scores.items()
                            if all(x is not None and math.isfinite(x) for x in v)}
            trials.append(create_trial(state=State.PRUNED, params=params, distributions=dists,
                                       intermediate_values=intermediate))
        else:  # diverged or failed: TPE leaves it out
            trials.append(create_trial(state=State.FAIL, params=params, distributions=dists))
    return trials


def ask(spec: SweepSpec, domains: dict[str, Domain], history: dict[int, TrialState],
        round_index: int, variant_index: int, count: int) -> list[dict]:
    """``count`` configurations from a study told ``history`` (one variant's earlier rounds)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():  # options some Optuna versions call experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(seed=sampler_seed(spec, round_index, variant_index),
                                             multivariate=True, constant_liar=True)
    study = optuna.create_study(sampler=sampler,
                                direction="maximize" if spec.goal == "max" else "minimize")
    for trial in told(spec, domains, history):
        study.add_trial(trial)
    dists = {path: distribution(d) for path, d in domains.items()}
    asked = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        for _ in range(count):
            trial = study.ask(dists)
            asked.append({path: to_value(domains[path], trial.params[path]) for path in domains})
    return asked


def plan_tpe_round(spec: SweepSpec, domains: dict[str, Domain], round_index: int,
                   table: dict[int, TrialState] | None = None) -> list[TrialPlan]:
    """The trials of round ``round_index``: as the ledger (``table``) declared them, else
    asked of TPE told the earlier rounds' trials of ``table``; configuration ``c = first +
    v·n + k`` is the k-th asked for variant v (n per variant), trial ``c·S + j`` its seed j."""
    table = table or {}
    declared = sorted((s for s in table.values() if s.round == round_index), key=lambda s: s.index)
    if declared:
        return [TrialPlan(s.index, s.round, s.config, s.seed, s.params, s.variant) for s in declared]
    first, per_variant = round_sizes(spec, round_index)
    repeats = spec.repeats
    plans = []
    for v, variant in enumerate(spec.variant_names):
        history = {i: s for i, s in table.items()
                   if s.round < round_index and s.variant == variant and s.status in FINAL}
        for k, params in enumerate(ask(spec, domains, history, round_index, v, per_variant)):
            config = first + v * per_variant + k
            plans += [TrialPlan(config * len(repeats) + j, round_index, config, seed, params, variant)
                      for j, seed in enumerate(repeats)]
    return plans
