"""Planning a round of trials: each trial's validated config, a dry run's check that
every model builds on its data, and the narrowed domains of a refined round.

```python
configs = resolve_plans(spec, base, plan_round(spec, spec.params, 0))  # SpecError: every bad trial
problems = build_errors(configs)                                      # shape and memory mistakes
```
"""

from __future__ import annotations

import json

from ..checks import ConfigError
from ..config import config_to_dict
from ..schema import Config
from .ledger import TrialState
from .results import configurations, describe_trial
from .sampling import TrialPlan
from .base_config import resolve
from .spec import Domain, SpecError, SweepSpec


def trial_name(spec: SweepSpec, index: int) -> str:
    return f"{spec.name}-{index:04d}"


def resolve_plan(spec: SweepSpec, base: dict, plan: TrialPlan) -> Config:
    return resolve(base, plan.params, plan.seed, trial_name(spec, plan.index),
                   spec.changes(plan.variant))


def resolve_plans(spec: SweepSpec, base: dict, plans: list[TrialPlan]) -> dict[int, Config]:
    """Each trial's validated config; one SpecError names the trials whose values the
    schema or a registry refuses (at most ten, then how many more)."""
    configs, errors, bad = {}, [], 0
    for plan in plans:
        try:
            configs[plan.index] = resolve_plan(spec, base, plan)
        except ConfigError as error:
            bad += 1
            if bad <= 10:
                values = describe_trial(plan.params, plan.variant)
                errors += [f"trial {plan.index} ({values}): {line}" for line in error.errors]
    if bad > 10:
        errors.append(f"... and {bad - 10} more trials")
    if errors:
        raise SpecError(errors)
    return configs


def build_errors(configs: dict[int, Config]) -> list[str]:
    """Load each distinct data config once and build every trial's model on it: the
    shape mistakes that a schema check cannot see, and models too large for memory (a
    dry run's second check)."""
    from ..crossval import fold_splits
    from ..data import DataError, load
    from ..memory import out_of_memory, too_large
    from ..nn import ShapeError
    from ..components import build_model

    shapes: dict[str, tuple] = {}
    errors = []
    for index, cfg in configs.items():
        kfold = cfg.validation.kfold
        key = json.dumps([config_to_dict(cfg)["data"], cfg.train.dtype, kfold], sort_keys=True)
        try:
            if key not in shapes:
                shapes[key] = (fold_splits(cfg, kfold, 0) if kfold else
                               load(cfg.data, seed=cfg.seed, dtype=cfg.train.dtype)).in_shape
            build_model(cfg, shapes[key])
        except (DataError, ShapeError, OSError, ValueError, MemoryError) as error:
            errors.append(f"trial {index}: {out_of_memory(error) if too_large(error) else error}")
    return errors


def refined(spec: SweepSpec, domains: dict[str, Domain], table: dict[int, TrialState],
            round_index: int) -> dict[str, Domain] | None:
    """The next round's domains: each continuous one narrowed around the values of the
    previous round's ``top`` best configurations (None when none of them completed)."""
    previous = {i: s for i, s in table.items() if s.round == round_index - 1}
    ranked = [r for r in configurations(previous, spec) if r.status in ("completed", "pruned")
              and r.mean is not None][:spec.refine.top]
    if not ranked:
        return None
    return {path: domain.narrowed([r.params[path] for r in ranked]) if domain.continuous else domain
            for path, domain in domains.items()}
