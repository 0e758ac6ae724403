"""Trial parameters as a function of (sweep seed, configuration index) alone.

Only the driver samples. Configuration ``c`` of a random sweep draws its parameters, in
the spec's order, from ``np.random.default_rng([seed, c])``; configuration ``c`` of a grid
is entry ``c`` of the product of the points, first parameter slowest. Neither depends on
how many workers run, in which order trials finish, or whether the sweep was resumed.

With ``variants`` every draw or grid entry is trained under each variant, variants
slowest: with P configurations of ``params`` per variant, configuration ``c = v·P + k``
of a round is entry ``k`` under variant ``v``, and all variants share entry ``k``'s
values (a random draw ``k`` of round r comes from ``[seed, r·P + k]``, which is ``c``
itself without variants).

A tpe sweep's configurations depend on the scores of its earlier rounds too, read from
the ledger (``tpe.py``), never on scheduling.

With ``seeds: [s0, s1, ...]`` every configuration is trained once per seed: trial
``t = c·S + j`` is configuration ``c`` with seed ``s_j`` (S seeds).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from .spec import Domain, SweepSpec


@dataclass(frozen=True)
class TrialPlan:
    """One trial: which configuration, which repeat seed, which parameters, which variant."""

    index: int
    round: int
    config: int
    seed: int | None
    params: dict
    variant: str | None = None


def sample_configuration(domains: dict[str, Domain], seed: int, index: int) -> dict:
    rng = np.random.default_rng([seed, index])
    return {path: domain.sample(rng) for path, domain in domains.items()}


def grid_configuration(domains: dict[str, Domain], index: int) -> dict:
    """Entry ``index`` of the grid, without building the whole product."""
    params = {}
    for path, domain in reversed(domains.items()):
        index, position = divmod(index, domain.size())
        params[path] = domain.point(position)
    return dict(reversed(params.items()))


def grid_configurations(domains: dict[str, Domain]) -> list[dict]:
    """Every configuration of a grid, in index order (used by tests and dry runs)."""
    paths = list(domains)
    return [dict(zip(paths, values))
            for values in itertools.product(*(domains[p].points() for p in paths))]


def plan_round(spec: SweepSpec, domains: dict[str, Domain], round_index: int,
               table: dict | None = None) -> list[TrialPlan]:
    """The trials of one round; configuration indices continue across rounds. A tpe
    round is asked of Optuna told the earlier rounds' trials of ``table`` (the ledger's
    states; ``tpe.plan_tpe_round``)."""
    if spec.method == "tpe":
        from .tpe import plan_tpe_round

        return plan_tpe_round(spec, domains, round_index, table)
    per_variant = spec.configurations_per_variant(domains)
    variants = spec.variant_names
    first = round_index * per_variant * len(variants)
    repeats = spec.repeats
    plans = []
    for v, variant in enumerate(variants):
        for k in range(per_variant):
            config = first + v * per_variant + k
            params = (grid_configuration(domains, k) if spec.method == "grid"
                      else sample_configuration(domains, spec.seed, round_index * per_variant + k))
            for j, seed in enumerate(repeats):
                plans.append(TrialPlan(config * len(repeats) + j, round_index, config, seed,
                                       params, variant))
    return plans
