"""A grid without a spec file: ``dl sweep CONFIG optimizer.lr=1e-3,1e-2 model.layers.0.units=64,128``.

Given a train config instead of a sweep spec, ``dl sweep`` reads each ``key=v1,v2,...``
override (commas outside brackets, braces and quotes) as a grid parameter and every
other override as a change of the config for all trials, and sweeps every combination:

```yaml
base: CONFIG                   # as an absolute path
name: <the config's name>-grid
method: grid
params: {optimizer.lr: {values: [0.001, 0.01]}, model.layers.0.units: {values: [64, 128]}}
overrides: [train.epochs=5]
```

The sweep folder saves that spec, so ``dl sweep --resume`` continues it as any other.
"""

from __future__ import annotations

from pathlib import Path

from ..checks import ConfigError
from ..config.yaml12 import parse_yaml, read_yaml
from ..layout import safe_name

PAIRS = {"[": "]", "{": "}"}


def is_train_config(path: Path) -> bool:
    """Whether a YAML file is a train config rather than a sweep spec (which names its
    ``base``); a file that cannot be read is left to the spec's reader to name."""
    try:
        raw = read_yaml(path)
    except ConfigError:
        return False
    return isinstance(raw, dict) and "base" not in raw


def top_level_parts(text: str) -> list[str]:
    """``text`` cut at the commas outside brackets, braces and quotes."""
    parts, depth, quote, current = [], 0, None, ""
    for char in text:
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in PAIRS:
            depth += 1
        elif char in PAIRS.values():
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        current += char
    return [*parts, current]


def grid_spec(config: Path, overrides: list[str]) -> tuple[dict, list[str]]:
    """The spec of the grid the overrides describe, and the overrides left for it
    (``sweep.KEY=VALUE`` ones, which set keys of the spec)."""
    params, changes, spec_keys = {}, [], []
    for item in overrides:
        key, equals, text = item.partition("=")
        if key.strip().startswith("sweep."):
            spec_keys.append(item)
            continue
        values = top_level_parts(text) if equals else [text]
        if len(values) < 2:
            changes.append(item)
            continue
        params[key.strip()] = {"values": [parse_yaml(value, f"override {item!r}",
                                                     root_path=key.strip())
                                          for value in values]}
    if not params:
        raise ConfigError([f"{config} is a train config: give the values to try as "
                           f"key=v1,v2 (dl sweep {config} optimizer.lr=1e-3,1e-2), or a "
                           f"sweep spec"])
    raw = read_yaml(config)
    name = raw.get("name") if isinstance(raw.get("name"), str) else config.stem
    spec = {"base": str(Path(config).resolve()), "name": safe_name(f"{name}-grid"),
            "method": "grid", "params": params}
    if changes:
        spec["overrides"] = changes
    return spec, spec_keys


def prepare_grid(config: Path, overrides: list[str]):
    """``base_config.prepare`` of the grid a train config and its overrides describe
    (``grid_spec``), read from a spec file of its own like any other spec."""
    import tempfile

    import yaml

    from .base_config import prepare

    raw, spec_overrides = grid_spec(config, overrides)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "grid.yaml"
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        return prepare(path, spec_overrides)
