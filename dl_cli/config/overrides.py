"""The override grammar: ``dotted.key=value`` on a config's (or a spec's) raw mapping.

```
optimizer.lr=1e-3                 a key, at any depth; the value is read as YAML 1.2
model.layers.0.units=256          list items by index
model.layers.2=tanh               a whole value: a name, a number, a list, a mapping
data.dataset.path=x.npz           under a bare name ("spiral"): it becomes {type: spiral}
~schedule                         a key deleted: back to its default (Hydra's ~key)
```

Hydra's ``+key=value`` and ``++key=value`` are refused with a hint: ``key=value``
already adds a key or overrides it.
"""

from __future__ import annotations

import copy
import dataclasses
import typing
from typing import Any, Iterable

from ..checks import ConfigError, Problems, describe
from ..schema import Config
from ..nesting import MAX_DEPTH
from .sections import field_types
from .yaml12 import parse_yaml


def apply_overrides(raw: dict, overrides: Iterable[str], problems: Problems | None = None) -> dict:
    """A copy of ``raw`` with every ``dotted.key=value`` applied in order.

    List items are addressed by index (``model.layers.0.units=256``); a key the file
    leaves out starts from its default (``optimizer.lr=0.1`` on a config without an
    optimizer tunes the default one), any other missing or null mapping on the way is
    created, and a spec written as a bare name ("relu") becomes ``{type: relu}`` when a
    key under it is set. An override that cannot be applied is a ConfigError, or, with
    ``problems``, recorded there while the others are applied.
    """
    result = copy.deepcopy(raw)
    mistakes = Problems()
    for override in overrides:
        try:
            apply_override(result, override)
        except ConfigError as error:
            mistakes.extend(error.errors)
    if problems is None:
        mistakes.raise_if_any()
    else:
        problems.extend(mistakes)
    return result


def apply_override(root: dict, override: str) -> None:
    if override.startswith("+"):
        plain = override.lstrip("+")
        raise ConfigError([f"{plain.partition('=')[0] or override}: write {plain!r}, without "
                           f"{override[:len(override) - len(plain)]}: key=value already adds "
                           f"a key or overrides it"])
    if override.startswith("~"):
        delete_key(root, override)
        return
    key, equals, value_text = override.partition("=")
    key = key.strip()
    if not equals:
        raise ConfigError([f"{key or repr(override)}: an override is key=value "
                           f"(e.g. optimizer.lr=0.01), got {override!r}"])
    segments = key.split(".")
    if "" in segments:
        raise ConfigError([f"{key or repr(override)}: malformed key in override "
                           f"{shortened(override)!r}; write dotted keys such as model.layers.0.units"])
    if len(segments) > MAX_DEPTH:
        raise ConfigError([f"{shortened(key)}: a key of {len(segments):,} parts is nested deeper "
                           f"than {MAX_DEPTH} levels; dl reads no document nested that deep"])
    value = parse_yaml(value_text, f"override {shortened(override)!r}", root_path=key)
    container: Any = root
    for depth, segment in enumerate(segments):
        path = ".".join(segments[: depth + 1])
        slot = list_index(container, segment, path) if isinstance(container, list) else segment
        if depth == len(segments) - 1:
            container[slot] = value
            return
        child = container.get(slot) if isinstance(container, dict) else container[slot]
        if child is None and isinstance(container, dict) and slot not in container:
            child = copy.deepcopy(default_at(segments[: depth + 1]))
        if child is None:
            child = {}
        elif isinstance(child, str) and slot != "type":
            child = {"type": child}
        elif not isinstance(child, (dict, list)):
            raise ConfigError([f"{path}: cannot set '{segments[depth + 1]}' inside "
                               f"{describe(child)} (override {override!r})"])
        container[slot] = child
        container = child


def delete_key(root: dict, override: str) -> None:
    """``~dotted.key``: remove the key (a list item by index), so that it takes its
    default; a key neither the config nor the schema has is a ConfigError."""
    key = override[1:].strip()
    segments = key.split(".")
    if "=" in key or "" in segments:
        raise ConfigError([f"{override}: deleting a key is ~dotted.key, with no value "
                           f"(~schedule)"])
    container: Any = root
    for depth, segment in enumerate(segments):
        path = ".".join(segments[: depth + 1])
        slot = list_index(container, segment, path) if isinstance(container, list) else segment
        present = isinstance(container, list) or slot in container
        if depth == len(segments) - 1:
            if present:
                del container[slot]
            elif not in_schema(segments):
                raise ConfigError([f"{key}: cannot delete it: the config has no such key"])
            return
        if not present or not isinstance(container[slot], (dict, list)):
            if not in_schema(segments):
                raise ConfigError([f"{key}: cannot delete it: the config has no {path}"])
            return  # left out already: it has its default
        container = container[slot]


def in_schema(segments: list[str]) -> bool:
    """Whether the schema has the dotted path; a section's own keys count whether or not
    a config sets the section (``train.early_stopping.patience``)."""
    section: Any = Config
    for segment in segments:
        if section is None or segment not in field_types(section):
            return False
        hint = field_types(section)[segment]
        section = next((t for t in (hint, *typing.get_args(hint)) if dataclasses.is_dataclass(t)),
                       None)
    return True


def default_at(segments: list[str]) -> Any:
    """The schema default at a dotted path (None where the schema has none)."""
    value: Any = dataclasses.asdict(Config())
    for segment in segments:
        if not isinstance(value, dict) or segment not in value:
            return None
        value = value[segment]
    return value


def shortened(text: str, most: int = 80) -> str:
    """An override as a message shows it: cut to ``most`` characters."""
    return text if len(text) <= most else text[:most - 3] + "..."


def list_index(items: list, segment: str, path: str) -> int:
    size = f"{len(items)} item{'' if len(items) == 1 else 's'}"
    if not (segment.isascii() and segment.isdigit()):  # not "²", which str.isdigit takes
        raise ConfigError([f"{path}: '{segment}' is not a list index; the list has {size}"])
    index = int(segment)
    if index >= len(items):
        allowed = f"indices 0..{len(items) - 1}" if items else "it is empty"
        raise ConfigError([f"{path}: index {index} is out of range; "
                           f"the list has {size} ({allowed})"])
    return index
