"""The sweep spec: which base config, which keys to vary over which domains, how to score.

```yaml
base: configs/digits_mlp.yaml      # a train config; relative paths: from here, else the spec's folder
name: lr-vs-width                  # default: the spec file's name
method: random                     # grid | random | tpe (Optuna's model-based search)
trials: 24                         # random and tpe; a grid's size is the product of its points
batch: 4                           # tpe only: configurations asked per round (default 4)
seed: 0                            # trial parameters depend on (seed, configuration index) only
metric: {name: val/acc, goal: max} # default: the base's checkpoint monitor; goal: the metric's
                                   #   direction (max for acc, R², min otherwise), or left out
params:                            # dotted keys of the train config, list items by index
  optimizer.lr: {loguniform: [1.0e-4, 1.0e-1]}
  model.layers.0.units: {values: [64, 128, 256]}
variants:                          # named sets of changes, each crossed with params and seeds
  relu: {model.layers.2: relu}
  tanh: {model.layers.2: tanh, model.init: xavier_normal}
seeds: [0, 1, 2]                   # repeat every configuration; rank by the mean
refine: {rounds: 1, top: 5}        # random only: refined rounds after the first
prune: {rule: sha, min_epochs: 3, eta: 3}   # or rule: median (pruning.py)
validation: {kfold: 5}             # score each trial as the mean over 5 folds
keep_checkpoints: best             # best: a configuration's go once it cannot be the best | all
overrides: [train.epochs=10]       # fixed changes to the base config, as for dl train
threads: 1                         # BLAS threads per trial, whatever the number of workers
claim: ReLU learns faster than tanh.  # what the sweep sets out to show (dl report prints it)
report: {study: activations}       # dl report's study figures; also target, near_zero
```

A key set to ``null`` is a key left out where leaving it out means "none": ``trials``
(a grid), ``seeds``, ``metric``, ``params`` (with variants), ``variants``, ``refine``,
``prune``, ``validation``, ``claim``, ``report`` and a domain's ``grid``. Every other key,
and every key inside those mappings, refuses ``null``: leave a key out for its default.

A sweep plans at most 100,000 trials (configurations × variants × seeds × rounds),
counted before any is listed.

``variants`` compare named designs: each variant's changes (dotted keys, as in
``overrides``, any YAML value) are applied to the base config, then each configuration of
``params`` on top, so every variant meets the same parameter values (the same random draws
too). A spec with variants may leave ``params`` out: one configuration per variant. With
``method: random``, ``trials`` configurations are drawn and each is trained under every
variant. The variant's name is recorded in the ledger, results.csv and the leaderboards.

``threads`` is part of the spec because a trial's numbers depend on it: BLAS sums in a
different order on 1 and on 2 threads. Fixing it per trial is what makes a sweep give
the same metrics on one worker, on many, and on a cluster. It goes up to the largest C
int, which BLAS takes; ``dl sweep`` refuses more threads than BLAS runs on this machine
and warns when the workers' threads exceed its cores (local workers).

``method: tpe`` asks Optuna's TPE sampler for ``batch`` configurations per round, tells
it each round's scores, and asks again (``tpe.py``): ``trials`` configurations in
``⌈trials / batch⌉`` rounds, the same whatever the number of workers.

Domains are described in ``domains.py``.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..checks import INVALID, ConfigError, Problems, describe
from ..config.overrides import apply_overrides
from ..config.sections import SectionReader
from ..config.yaml12 import parse_yaml, read_yaml
from ..layout import safe_name
from ..schema import RENAMED_RULES, Prune, Refine, SweepKeys
from .domains import Domain
from .spec_keys import parse_metric, parse_params, parse_report, parse_variants

MOST_TRIALS = 100_000


class SpecError(ConfigError):
    """Every mistake found in a sweep spec, one line each, starting with its key path."""


@dataclass
class SweepSpec:
    base: Path
    name: str
    method: str
    trials: int | None
    seed: int
    metric: str | None          # None until ``settle_metric`` reads the base config
    goal: str | None
    params: dict[str, Domain]
    variants: dict[str, dict] | None = None   # variant name → {dotted key: value}
    seeds: list[int] | None = None
    refine: Refine | None = None
    prune: Prune | None = None
    kfold: int | None = None
    keep_checkpoints: str = "best"
    overrides: list[str] = field(default_factory=list)
    threads: int = 1
    claim: str | None = None
    report: dict = field(default_factory=dict)
    batch: int = 4                            # tpe: configurations asked per round
    raw: dict = field(default_factory=dict)   # the effective spec: saved as spec.yaml, hashed
    warnings: list[str] = field(default_factory=list)  # read, but worth saying (a renamed key)

    @property
    def rounds(self) -> int:
        if self.method == "tpe":
            return -(-self.trials // self.batch)
        return 1 + (self.refine.rounds if self.refine else 0)

    @property
    def trial_count(self) -> int:
        """Every trial the sweep plans, all rounds, counted without listing them."""
        if self.method == "tpe":  # the last round may be smaller
            return self.trials * len(self.variant_names) * len(self.repeats)
        return self.configurations_per_round() * len(self.repeats) * self.rounds

    @property
    def repeats(self) -> list[int | None]:
        """The seed of each repeat of a configuration (None: the base config's seed)."""
        return list(self.seeds) if self.seeds else [None]

    @property
    def variant_names(self) -> list[str | None]:
        """The variants in the spec's order ([None] for a spec without variants)."""
        return list(self.variants) if self.variants else [None]

    def changes(self, variant: str | None) -> dict:
        """The dotted keys a variant sets (nothing for None)."""
        return dict(self.variants[variant]) if variant is not None else {}

    def configurations_per_variant(self, domains: dict[str, Domain] | None = None) -> int:
        """Per round (tpe: in all, over its rounds)."""
        if self.method in ("random", "tpe"):
            return self.trials
        domains = self.params if domains is None else domains
        return math.prod(d.size() for d in domains.values())

    def configurations_per_round(self, domains: dict[str, Domain] | None = None) -> int:
        return self.configurations_per_variant(domains) * len(self.variant_names)

    def spec_hash(self) -> str:
        """What a resume must find unchanged: the spec without the base's location (the
        base config is compared by content)."""
        text = json.dumps({k: v for k, v in self.raw.items() if k != "base"}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


# -- reading a spec -------------------------------------------------------------------
def split_overrides(overrides: list[str]) -> tuple[list[str], list[str]]:
    """``sweep.trials=8`` sets a key of the spec; every other override changes the base
    config, as for dl train."""
    spec, base = [], []
    for item in overrides:
        (spec if item.strip().startswith("sweep.") else base).append(item.strip())
    return [item[len("sweep."):] for item in spec], base


def apply_spec_overrides(raw: dict, overrides: list[str]) -> dict:
    """``key=value`` overrides of the spec. Under ``params`` the rest of the key is one
    parameter path, dots and all: ``params.optimizer.lr={loguniform: [1e-4, 1e-1]}``
    sets the domain of ``optimizer.lr``."""
    plain, domains = [], {}
    for item in overrides:
        key, equals, text = item.partition("=")
        if key.strip().startswith("params.") and equals:
            path = key.strip()[len("params."):]
            domains[path] = parse_yaml(text, f"override {item!r}", root_path=f"params.{path}")
        else:
            plain.append(item)
    raw = apply_overrides(raw, plain)
    if domains:
        params = raw.get("params")
        raw["params"] = {**(params if isinstance(params, dict) else {}), **domains}
    return raw


def find_base(base: str, spec_path: Path) -> Path:
    given = Path(base).expanduser()
    candidates = [given] if given.is_absolute() else [Path.cwd() / given, spec_path.parent / given]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    raise SpecError([f"base: no such train config {base!r} (looked in "
                     f"{' and '.join(str(c.parent) for c in candidates)})"])


def load_spec(path: str | Path, overrides: list[str] = ()) -> SweepSpec:
    """Read, override and check a sweep spec on its own (``base_config.prepare`` also
    checks it against the base config)."""
    path = Path(path)
    spec_overrides, base_overrides = split_overrides(list(overrides))
    raw = apply_spec_overrides(read_yaml(path), spec_overrides)
    if base_overrides:
        given = raw.get("overrides") or []  # anything but a list is refused by parse_spec
        raw["overrides"] = given + base_overrides if isinstance(given, list) else given
    if not isinstance(raw.get("base"), str):
        raise SpecError([f"base: the train config to sweep over is required "
                         f"(base: configs/x.yaml), got {describe(raw.get('base'))}"])
    raw["base"] = str(find_base(raw["base"], path))
    raw.setdefault("name", safe_name(path.stem))
    return parse_spec(raw)


def parse_spec(raw: dict) -> SweepSpec:
    """A SweepSpec from the effective raw spec (``base`` already an existing file)."""
    reader = SectionReader()
    problems = reader.problems
    keys = reader.section(SweepKeys, raw, "")
    metric, goal = parse_metric(raw.get("metric"), problems)
    variants = parse_variants(raw.get("variants"), problems)
    params = parse_params(raw.get("params"), problems, required=not variants)
    report = parse_report(raw.get("report"), problems)
    check_plan(keys, raw, params, variants, problems)
    problems.raise_if_any(SpecError)
    prune, warnings = renamed_rule(keys.prune)
    spec = SweepSpec(
        base=Path(raw["base"]), name=keys.name, method=keys.method, trials=keys.trials,
        seed=keys.seed, metric=metric, goal=goal, params=params, variants=variants,
        seeds=keys.seeds, refine=keys.refine, prune=prune,
        kfold=keys.validation.kfold if keys.validation else None,
        keep_checkpoints=keys.keep_checkpoints, overrides=list(keys.overrides or []),
        threads=keys.threads, claim=keys.claim.strip() if keys.claim else None,
        report=report, batch=keys.batch, raw=copy.deepcopy(raw), warnings=warnings)
    if spec.trial_count > MOST_TRIALS:
        raise SpecError([too_many_trials(spec)])
    return spec


def renamed_rule(prune: Prune | None) -> tuple[Prune | None, list[str]]:
    """The prune section with a former rule name (asha) read as its new one, and the
    warning that names the new key."""
    if prune is None or prune.rule not in RENAMED_RULES:
        return prune, []
    new = RENAMED_RULES[prune.rule]
    return dataclasses.replace(prune, rule=new), [
        f"prune.rule: {prune.rule} is now called {new} (synchronous successive halving); "
        f"write rule: {new}"]


def optuna_installed() -> bool:
    try:
        import optuna  # noqa: F401  (method: tpe asks it for trials)
    except ImportError:
        return False
    return True


def check_plan(keys: SweepKeys, raw: dict, params: dict[str, Domain], variants: dict | None,
               problems: Problems) -> None:
    """The keys that plan the trials, together: a method and what it needs."""
    method = keys.method
    refine = keys.refine if keys.refine is not INVALID else None
    drawn = method in ("random", "tpe")  # trials drawn from params, not a grid
    if drawn and keys.trials is None and raw.get("trials") is None:
        problems.add("trials", f"a {method} sweep needs the number of trials (trials: 20)")
    if drawn and not params and variants:
        problems.add("method", f"a {method} sweep draws from params, and there are none; "
                               f"use method: grid to train each variant once")
    if raw.get("batch") is not None and method != "tpe":
        problems.add("batch", "only for method tpe (configurations asked per round)")
    if method == "tpe" and not optuna_installed():
        problems.add("method", "tpe searches with Optuna, which is not installed: "
                               "pip install 'dl-cli[optuna]'")
    for variant, changes in (variants or {}).items():
        for path in changes:
            if path in params:
                problems.add(f"variants.{variant}.{path}", "also swept in params; set it in one place")
    if method == "grid" and raw.get("trials") is not None and (params or variants):
        sizes = [f"{len(variants)} variants"] if variants else []
        size = " × ".join(sizes + [str(d.size() or 0) for d in params.values()])
        problems.add("trials", f"only for methods random and tpe; a grid's size is the product "
                               f"of its points ({size})")
    if method == "grid":
        for path, domain in params.items():
            if domain.size() is None:
                problems.add(f"params.{path}", f"a grid needs finite points: add grid: N to "
                                               f"{domain.kind}, or use values or range")
    if refine and method != "random":
        problems.add("refine", "coarse-to-fine refinement follows a random round (method: random)")
    if refine and params and not any(d.continuous for d in params.values()):
        problems.add("refine", "narrows continuous domains (uniform, loguniform, int_uniform, "
                               "int_loguniform); params has none")


def too_many_trials(spec: SweepSpec) -> str:
    """The error of a sweep that plans more than MOST_TRIALS trials, under the key of its
    largest factor."""
    factors = ({"trials": spec.trials} if spec.method in ("random", "tpe") else
               {f"params.{path}": domain.size() for path, domain in spec.params.items()})
    factors.update({"variants": len(spec.variant_names), "seeds": len(spec.repeats)})
    if spec.method != "tpe":  # a tpe sweep's rounds share out its trials
        factors["refine.rounds"] = spec.rounds
    key = max(factors, key=factors.get)
    product = " × ".join(f"{n:,} ({'1 + ' * (k == 'refine.rounds')}{k})"
                         for k, n in factors.items() if n > 1)
    return (f"{key}: the sweep would plan {spec.trial_count:,} trials = {product}; "
            f"at most {MOST_TRIALS:,}")
