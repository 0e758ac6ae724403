"""Load a train config: YAML file + ``key=value`` overrides → a validated ``schema.Config``.

```python
cfg = load_config("configs/digits_mlp.yaml", ["optimizer.lr=1e-3", "model.layers.0.units=256"])
text = dump_config(cfg)          # the fully resolved config; load_config reads it back unchanged
```

Four steps, each a module of this package and usable alone:

1. ``yaml12.read_yaml`` parses the file by YAML 1.2's rules, safely: nothing in a config
   runs code (the sweep spec and the run folders are read the same way).
2. ``overrides.apply_overrides`` sets dotted keys (``model.layers.0.units=256``) on the
   raw dict; values are parsed with the same YAML rules.
3. ``inferred.fill_token_sizes`` fills in the sizes a model of tokens may leave to its
   data (an embedding's ``vocab``, the output layer's ``units``).
4. ``validation.validate`` checks the raw dict against the dataclasses of ``schema`` and
   every component spec against its registry, and the rules across keys.

``load_config`` runs all four and reports every mistake of all of them in one
``checks.ConfigError``, whose lines each start with the key path of the mistake.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterable

import yaml

from .. import plugins
from ..checks import ConfigError, Problems
from ..schema import Config
from .inferred import fill_token_sizes
from .overrides import apply_overrides
from .validation import validate
from .yaml12 import ConfigDumper, read_yaml


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> Config:
    """Read, override and validate a train config; one ConfigError reports every mistake
    of the file, the overrides and the resulting config together. The config keeps the
    components built to check it, for its assembly (``training.assemble``)."""
    problems = Problems()
    raw = plugins.anchored(read_yaml(path, problems), Path(path).parent)
    raw = fill_token_sizes(apply_overrides(raw, overrides, problems))
    try:
        config = validate(raw, keep_components=True)
    except ConfigError as error:
        problems.extend(error.errors)
    problems.raise_if_any()
    return config


def load_saved_config(path: str | Path, allow_plugins: bool = False) -> Config:
    """The config a run folder keeps: ``load_config``, with every mistake naming the
    file, which no one named on the command line (a config written by an earlier
    version may break a rule added since; the file can be edited). One that names
    plugins this process has not imported is refused unless ``allow_plugins``."""
    if not allow_plugins:
        waiting = plugins.waiting(read_yaml(path))
        if waiting:
            raise ConfigError([plugins.refusal(path, waiting)])
    try:
        return load_config(path)
    except ConfigError as error:
        raise ConfigError([line if line.startswith(str(path)) else f"{path}: {line}"
                           for line in error.errors]) from None


def config_to_dict(config: Config) -> dict:
    """The fully resolved config (every default filled in) as plain dicts and lists;
    ``plugins`` only when it names some, so that a config without reads as before."""
    tree = dataclasses.asdict(config)
    if not tree["plugins"]:
        del tree["plugins"]
    return tree


def flatten(tree, prefix: str = "") -> dict:
    """Key paths to leaves: ``{"a": {"b": 1}, "l": [x]} → {"a.b": 1, "l.0": x}``."""
    if isinstance(tree, dict):
        out = {}
        for key, value in tree.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    if isinstance(tree, list):
        out = {}
        for i, value in enumerate(tree):
            out.update(flatten(value, f"{prefix}{i}."))
        return out or {prefix[:-1]: []}
    return {prefix[:-1]: tree}


def dump_config(config: Config) -> str:
    """YAML text of ``config_to_dict(config)``, in schema order; ``load_config`` reads it
    back to an equal Config."""
    return yaml.dump(config_to_dict(config), Dumper=ConfigDumper, sort_keys=False,
                     default_flow_style=None, allow_unicode=True)
