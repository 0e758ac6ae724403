"""The config as training will use it, for ``dl train --print-config``.

``dump_config`` writes a config as it was given (what a run folder keeps); this fills in
what training decides on its own:

- every component (a layer, the loss, the initializer, the optimizer, the schedule, the
  data set, each preprocessing and augmentation step) as ``{type: name, **options}``
  (a bare name when it takes none) with each option at its default when the config
  leaves it out
  (Adam's ``beta1``, ``beta2``, ``eps``; cosine's ``epochs``, ``min_lr``); options
  inside options (a residual block's layers, a warmup's ``after``) stay as given;
- ``auto`` monitors and modes resolved by the model's task (``val/acc``, ``max``).

The result is a config: ``dl train`` reads it back to the same training.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import yaml

from ..metrics import resolve_monitor
from ..registry import LOSSES, Registry
from ..schema import Config
from . import config_to_dict
from .sections import field_types
from .yaml12 import ConfigDumper


def with_defaults(spec, registry: Registry):
    """``{type: name, **every option}``: the given ones, the others at their defaults; an
    entry that takes no options stays a bare name (``relu``)."""
    name, given = registry.split_spec(spec)
    defaults = {key: plain(default) for key, default in registry.options(name).items()
                if default is not inspect.Parameter.empty}
    options = {**defaults, **given}
    return {"type": name, **options} if options else name


def plain(value: Any) -> Any:
    """A default as YAML data: tuples as lists."""
    return [plain(v) for v in value] if isinstance(value, (tuple, list)) else value


def filled(section, raw: dict) -> dict:
    """``raw`` (a section as data) with every component key of ``section`` filled in."""
    for f in dataclasses.fields(section):
        value, registry = raw.get(f.name), f.metadata.get("specs")
        if registry is not None and value is not None:
            raw[f.name] = ([with_defaults(v, registry) for v in value] if isinstance(value, list)
                           else with_defaults(value, registry))
        elif isinstance(value, dict):
            hint = field_types(section)[f.name]
            inner = getattr(hint, "__args__", (hint,))
            inner = next((t for t in (hint, *inner) if dataclasses.is_dataclass(t)), None)
            if inner is not None:
                filled(inner, value)
    return raw


def resolved_config(cfg: Config) -> dict:
    """``cfg`` as data, with its components' defaults and its ``auto`` monitors filled in."""
    raw = filled(Config, config_to_dict(cfg))
    task = LOSSES.create(cfg.model.loss).task
    for section in (raw["checkpoint"], raw["train"]["early_stopping"]):
        if section is not None:
            section["monitor"], section["mode"] = resolve_monitor(section["monitor"],
                                                                  section["mode"], task)
    return raw


def dump_resolved(cfg: Config) -> str:
    """YAML text of ``resolved_config``, in schema order."""
    return yaml.dump(resolved_config(cfg), Dumper=ConfigDumper, sort_keys=False,
                     default_flow_style=None, allow_unicode=True)
