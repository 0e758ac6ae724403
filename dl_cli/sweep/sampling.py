"""Trial parameters as a function of (sweep seed, configuration index) alone.

Only the driver samples. Configuration ``c`` of a random sweep draws its parameters, in
the spec's order, from ``np.random.default_rng([seed, c])``; configuration ``c`` of a grid
is entry ``c`` of the product of the points, first parameter slowest. Neither depends on
how many workers run, in which order trials finish, or whether the sweep was resumed.

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
    """One trial: which configuration, which repeat seed, which parameters, which folder."""

    index: int
    round: int
    config: int
    seed: int | None
    params: dict


def sample_configuration(domains: dict[str, Domain], seed: int, index: int) -> dict:
    rng = np.random.default_rng([seed, index])
    return {path: domain.sample(rng) for path, domain in domains.items()}


def grid_configuration(domains: dict[str, Domain], index: int) -> dict:
    """Entry ``index`` of the grid, without building the whole product."""
    params = {}
    for path, domain in reversed(domains.items()):
        points = domain.points()
        index, position = divmod(index, len(points))
        params[path] = points[position]
    return dict(reversed(params.items()))


def grid_configurations(domains: dict[str, Domain]) -> list[dict]:
    """Every configuration of a grid, in index order (used by tests and dry runs)."""
    paths = list(domains)
    return [dict(zip(paths, values))
            for values in itertools.product(*(domains[p].points() for p in paths))]


def plan_round(spec: SweepSpec, domains: dict[str, Domain], round_index: int) -> list[TrialPlan]:
    """The trials of one round; configuration indices continue across rounds."""
    per_round = spec.configurations_per_round(domains)
    first = round_index * per_round
    repeats = spec.repeats
    plans = []
    for config in range(first, first + per_round):
        params = (grid_configuration(domains, config - first) if spec.method == "grid"
                  else sample_configuration(domains, spec.seed, config))
        for j, seed in enumerate(repeats):
            plans.append(TrialPlan(config * len(repeats) + j, round_index, config, seed, params))
    return plans
