"""The sweep spec against its base config, checked before any trial starts (``prepare``):
the base config with the spec's fixed overrides, the k-fold and the metric the spec
takes from it, every variant's changes and parameter's values against the config
schema; then each trial's validated config (``resolve``).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..checks import ConfigError, Problems
from ..config.overrides import apply_overrides
from ..config.validation import monitor_problem, validate
from ..config.yaml12 import read_yaml
from ..metrics import config_task, resolve_monitor
from ..plugins import anchored
from ..schema import Config
from .domains import Domain
from .spec import SpecError, SweepSpec, load_spec


def prepare(path: str | Path, overrides: list[str] = ()) -> tuple[SweepSpec, dict]:
    """Everything checked before any trial starts: the spec, the base config with the
    spec's overrides, the metric against the model's task, every parameter path and value.
    Returns the spec and the base config as raw data."""
    spec = load_spec(path, overrides)
    base, base_cfg = base_config(spec)
    settle_kfold(spec, base_cfg)
    settle_metric(spec, base_cfg)
    check_paths(spec, base)
    return spec, base


def base_config(spec: SweepSpec) -> tuple[dict, Config]:
    """The base config with the spec's fixed overrides, and its k-fold
    (``validation.kfold``) when the spec scores by k-fold, as raw data and validated;
    errors name the file."""
    kfold = [f"validation.kfold={spec.kfold}"] if spec.kfold else []
    try:
        raw = apply_overrides(anchored(read_yaml(spec.base), spec.base.parent),
                              [*spec.overrides, *kfold])
        return raw, validate(raw, keep_components=True)
    except ConfigError as error:
        raise SpecError([f"base {spec.base}: {line}" for line in error.errors]) from None


def as_override(path: str, value) -> str:
    """``path=value`` with the value as JSON, which the config's YAML reader parses back."""
    return f"{path}={json.dumps(value)}"


def resolve(base: dict, params: dict, seed: int | None, name: str,
            changes: dict | None = None) -> Config:
    """The validated config of one trial: the variant's ``changes``, then ``params``."""
    settings = {**(changes or {}), **params}
    raw = apply_overrides(base, [as_override(p, v) for p, v in settings.items()])
    if seed is not None:
        raw["seed"] = seed
    raw["name"] = name
    return validate(raw)


def settle_kfold(spec: SweepSpec, cfg: Config) -> None:
    """Without ``validation`` in the spec, score by k-fold when the base config asks for
    it (``validation: {kfold: K}`` in a train config), recorded in ``spec.raw``."""
    kfold = cfg.validation.kfold
    if spec.kfold is None and kfold:
        spec.kfold = kfold
        spec.raw["validation"] = {"kfold": kfold}


def settle_metric(spec: SweepSpec, cfg: Config) -> None:
    """Without a ``metric`` in the spec, score by what the base config's checkpoint
    monitors (auto: val/acc, val/loss for regression), recorded in ``spec.raw``; refuse a
    metric the model's task never reports (val/acc of a regression), or a validation
    metric without validation data."""
    task = config_task(cfg.components.get("model.loss"), cfg.components.get("data.dataset"),
                       cfg.data.target)
    if spec.metric is None:
        spec.metric, spec.goal = resolve_monitor(cfg.checkpoint.monitor, cfg.checkpoint.mode, task)
        spec.raw["metric"] = {"name": spec.metric, "goal": spec.goal}
    problem = monitor_problem(spec.metric, task, cfg.data.split.val, spec.kfold,
                              cfg.train.eval_train_samples)
    if problem:
        raise SpecError([f"metric.name: {problem}"])


LISTED_POINTS = 50  # a domain with more points is checked at its ends


def values_to_check(domain: Domain) -> list:
    """The values of a domain that ``check_paths`` validates: every distinct listed value,
    every point of a short domain, else the ends (the schema bounds numbers by ranges)."""
    if domain.kind == "values":
        distinct = {json.dumps(v, sort_keys=True): v for v in domain.args}
        return list(distinct.values())
    size = domain.size()
    if size is None:
        return list(domain.args)
    if size <= LISTED_POINTS:
        return domain.points()
    return [domain.point(0), domain.point(size - 1)]


def check_paths(spec: SweepSpec, base: dict) -> None:
    """Check every variant's changes, every parameter path and the values of each domain
    (``values_to_check``) against the config schema (parameters on the first variant);
    one SpecError lists every mistake, with a did-you-mean for misspelled keys."""
    problems = Problems()

    def check(raw: dict, settings: dict, where: str) -> None:
        try:
            validate(apply_overrides(raw, [as_override(p, v) for p, v in settings.items()]))
        except ConfigError as error:
            for line in error.errors:
                key = line.split(":", 1)[0]
                if any(path.startswith(key) or key.startswith(path) for path in settings):
                    entry = f"{where}.{line}"
                elif len(settings) == 1:
                    entry = f"{where}.{next(iter(settings))}: {line}"
                else:
                    entry = f"{where}: {line}"
                if entry not in problems:
                    problems.append(entry)

    for name in spec.variants or {}:
        check(base, spec.changes(name), f"variants.{name}")
    problems.raise_if_any(SpecError)
    first = spec.changes(spec.variant_names[0])
    varied = apply_overrides(base, [as_override(p, v) for p, v in first.items()])
    for path, domain in spec.params.items():
        for value in values_to_check(domain):
            check(varied, {path: value}, "params")
    problems.raise_if_any(SpecError)
