"""Shell completion of ``KEY=VALUE`` overrides (``dl --install-completion`` sets it up).

```
dl train c.yaml optim<TAB>            →  optimizer=  optimizer.lr=  optimizer.type=
dl train c.yaml optimizer.type=<TAB>  →  adagrad  adam  adamw  momentum  nesterov  ...
dl train c.yaml model.layers.0=re<TAB> →  relu
```

Keys come from the schema (``schema.Config`` and its sections' fields); a value after a component's key (``optimizer``,
``schedule``, ``model.loss``, ``data.dataset``, a layer ``model.layers.N``) or after its
``.type`` is one of the names its registry holds.
"""

from __future__ import annotations

import dataclasses
import typing

from ..config.sections import field_types
from ..registry import Registry
from ..schema import Config


def schema_keys(section=Config, prefix: str = "") -> dict[str, Registry | None]:
    """Every dotted key of the schema, and the registry each component key names."""
    keys: dict[str, Registry | None] = {}
    for f in dataclasses.fields(section):
        path = f"{prefix}{f.name}"
        keys[path] = f.metadata.get("specs")
        hint = field_types(section)[f.name]
        inner = next((t for t in (hint, *typing.get_args(hint)) if dataclasses.is_dataclass(t)),
                     None)
        if inner is not None:
            keys.update(schema_keys(inner, f"{path}."))
    return keys


def registry_of(key: str) -> Registry | None:
    """The registry whose names ``key`` takes: a component's key, or its ``.type``; a list
    item by index (``model.layers.3``) takes the list's."""
    parts = key.split(".")
    if parts[-1] == "type":
        parts = parts[:-1]
    if parts and parts[-1].isdigit():
        parts = parts[:-1]
    return schema_keys().get(".".join(parts))


def complete_override(incomplete: str) -> list[str]:
    """What ``incomplete`` may become: a key (``optimizer.`` → its keys, each ending in
    ``=``), or after ``key=`` a registered name."""
    from .. import data, nn, optim, schedules  # noqa: F401  (fill the registries)

    key, equals, value = incomplete.partition("=")
    if equals:
        registry = registry_of(key)
        names = registry.names() if registry is not None else []
        return [f"{key}={name}" for name in names if name.startswith(value)]
    keys = schema_keys()
    components = [f"{k}.type" for k, registry in keys.items() if registry is not None]
    return [f"{k}=" for k in sorted([*keys, *components]) if k.startswith(key)]
