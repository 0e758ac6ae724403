"""Read a mapping into a typed dataclass of ``schema``, recording every mistake.

One reader serves the train config and the sweep spec. For each field:

- a key the mapping leaves out takes the field's default, which passes the same checks
  as a given value (a default of None stands for "not given");
- null is allowed where the type says ``| None``;
- the value must have the field's type: true or false, an integer, a number (an integer
  too; finite), a string, a section (a dataclass, read the same way), or anything
  (``Any``: a free-form value that its own reader checks);
- then it must pass the field's rule (``schema.key``); a typed rule, which tests the type
  too, stands in for the type check;
- a field naming registry entries (``specs``) holds one spec or a list of them, each
  checked by ``check_spec`` (the train config's reader, ``config.validation``).

Keys the dataclass does not have are mistakes too, with a did-you-mean. A field that
fails holds ``INVALID``, so the checks that read several fields can skip it.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import types
from typing import Any, Union, get_args, get_origin, get_type_hints

from ..checks import INVALID, Problems, describe, is_number, join
from ..registry import Registry

TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    """The resolved annotations of a section's dataclass, read once per class."""
    return get_type_hints(cls)


def default_value(f: dataclasses.Field) -> Any:
    """A field's default as raw data, so that it passes the same checks as a given value."""
    if f.default is not dataclasses.MISSING:
        return f.default
    value = f.default_factory()
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value


class SectionReader:
    """Reads sections into dataclasses; ``problems`` holds every mistake found."""

    def __init__(self):
        self.problems = Problems()

    def section(self, cls: type, raw: Any, path: str):
        """An instance of ``cls`` from the mapping ``raw`` at key path ``path``, or INVALID."""
        if not isinstance(raw, dict):
            example = f" such as {json.dumps(dataclasses.asdict(cls()))}" if cls.show_defaults else ""
            self.problems.add(path or "config", f"expected a mapping{example}, got {describe(raw)}")
            return INVALID
        fields = dataclasses.fields(cls)
        allowed = [f.name for f in fields]
        for key in raw:
            if key not in allowed:
                self.problems.unknown(join(path, key), key, allowed)
        hints = field_types(cls)
        values = {}
        for f in fields:
            value = raw[f.name] if f.name in raw else default_value(f)
            given = f.name in raw or value is not None
            values[f.name] = self.field(f, hints[f.name], value, join(path, f.name)) if given else None
        section = cls(**values)
        mistake = section.mistake()
        if mistake:
            self.problems.add(path, mistake)
        return section

    def field(self, f: dataclasses.Field, hint: Any, value: Any, path: str):
        """The checked value of one field, or INVALID."""
        rule, registry = f.metadata.get("rule"), f.metadata.get("specs")
        if value is None and type(None) in get_args(hint):
            return None
        if rule is not None and rule.typed:
            return value if self.problems.check(path, value, rule) else INVALID
        if registry is None:
            checked = self.typed(hint, value, path)
        elif get_origin(hint) is not list:
            self.check_spec(registry, value, path)
            return copy.deepcopy(value)
        elif not isinstance(value, list):
            self.problems.add(path, f"expected a list of {registry.kind} specs, got {describe(value)}")
            return INVALID
        else:
            for i, spec in enumerate(value):
                self.check_spec(registry, spec, join(path, i))
            checked = copy.deepcopy(value)
        if rule is not None and checked is not INVALID and not self.problems.check(path, checked, rule):
            return INVALID
        return checked

    def typed(self, hint: Any, value: Any, path: str):
        """``value`` if it has the annotated type (an int is fine for a float, a bool is
        never an int), a dataclass for a section, else INVALID with the mistake recorded."""
        choices = get_args(hint) if get_origin(hint) in (Union, types.UnionType) else (hint,)
        for choice in choices:
            if choice is Any:
                return value
            if dataclasses.is_dataclass(choice):
                return self.section(choice, value, path)
            if choice is float and isinstance(value, (int, float)) and not isinstance(value, bool):
                if not is_number(value):
                    self.problems.add(path, f"expected a finite number, got {value}")
                    return INVALID
                return float(value)
            if type(value) is choice and choice in (bool, int, str):
                return value
        wanted = " or ".join(TYPE_NAMES[c] for c in choices if c in TYPE_NAMES)
        if type(None) in choices:
            wanted += " or null"
        self.problems.add(path, f"expected {wanted}, got {describe(value)}")
        return INVALID

    def check_spec(self, registry: Registry, spec: Any, path: str) -> None:
        """Record the mistakes of one component spec (the train config's reader,
        ``config.validation``, builds it)."""
        raise NotImplementedError
