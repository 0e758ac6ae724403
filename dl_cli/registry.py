"""Registries map the names a config uses to the classes that implement them.

Configs and sweeps only ever see names: ``LAYERS.create("relu")`` or
``LAYERS.create({"type": "affine", "units": 10})``. A name that is not registered is
an error listing the known names, never an import path or an attribute lookup.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import re
from typing import Any, Callable


@functools.cache
def init_options(init: Callable) -> dict[str, Any]:
    """The keyword parameters of an ``__init__`` and their defaults, read once per class:
    validating a sweep's trial configs asks for them thousands of times."""
    parameters = list(inspect.signature(init).parameters.values())[1:]
    return {p.name: p.default for p in parameters
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


class RegistryError(ValueError):
    """A spec names an unknown entry or gives it options it does not take."""


def did_you_mean(word: str, choices) -> str:
    """``" (did you mean 'relu'?)"`` when a close match exists, else ``""``."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class Registry:
    """A named table of classes, filled by the ``@REGISTRY.register("name")`` decorator."""

    def __init__(self, kind: str, plural: str | None = None):
        self.kind = kind
        self.plural = plural or f"{kind}s"  # a table's heading: "layers", "losses"
        self._entries: dict[str, type] = {}

    def register(self, name: str) -> Callable[[type], type]:
        def add(cls: type) -> type:
            if name in self._entries:
                raise RegistryError(f"{self.kind} '{name}' is registered twice")
            cls.registered_name = name
            self._entries[name] = cls
            return cls

        return add

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def get(self, name: str) -> type:
        if not isinstance(name, str) or name not in self._entries:
            known = ", ".join(self.names())
            raise RegistryError(
                f"unknown {self.kind} '{name}'{did_you_mean(name, self._entries)}; known: {known}"
            )
        return self._entries[name]

    @staticmethod
    def split_spec(spec: str | dict) -> tuple[str, dict[str, Any]]:
        """A spec is a bare name or a dict ``{"type": name, **options}``."""
        if isinstance(spec, str):
            return spec, {}
        if isinstance(spec, dict) and "type" in spec:
            options = dict(spec)
            return options.pop("type"), options
        raise RegistryError(f"expected a name or a mapping with a 'type' key, got {spec!r}")

    def options(self, name: str) -> dict[str, Any]:
        """The keyword options of an entry with their defaults (``inspect.Parameter.empty``
        for required ones)."""
        return dict(init_options(self.get(name).__init__))

    def unknown_option(self, name: str, key: str) -> str:
        """The error of an option that entry ``name`` does not take."""
        allowed = self.options(name)
        return (f"{self.kind} '{name}' has no option '{key}'{did_you_mean(key, allowed)}; "
                f"options: {', '.join(allowed) or 'none'}")

    def check_options(self, name: str, options: dict[str, Any]) -> None:
        allowed = self.options(name)
        for key in options:
            if key not in allowed:
                raise RegistryError(self.unknown_option(name, key))
        missing = [k for k, v in allowed.items() if v is inspect.Parameter.empty and k not in options]
        if missing:
            raise RegistryError(f"{self.kind} '{name}' needs option(s): {', '.join(missing)}")

    def create(self, spec: str | dict):
        """Build an entry from a name or a ``{"type": ..., **options}`` dict."""
        name, options = self.split_spec(spec)
        cls = self.get(name)
        self.check_options(name, options)
        return cls(**options)

    def summary(self, name: str) -> str:
        """The first paragraph of the entry's docstring on one line, its reST literals
        (double backticks) in single backticks as a terminal reader expects them. A
        paragraph ending in ``:`` introduces a formula block, which a one-line summary
        leaves out: its colon becomes a full stop."""
        doc = inspect.getdoc(self.get(name)) or ""
        paragraph = " ".join(re.split(r"\n\s*\n", doc, maxsplit=1)[0].split()).replace("``", "`")
        return paragraph[:-1].rstrip() + "." if paragraph.endswith(":") else paragraph


LAYERS = Registry("layer")
LOSSES = Registry("loss", "losses")
INITIALIZERS = Registry("initializer")
OPTIMIZERS = Registry("optimizer")
SCHEDULES = Registry("schedule")
DATASETS = Registry("dataset")
PREPROCESSORS = Registry("preprocessing step")
AUGMENTATIONS = Registry("augmentation")
