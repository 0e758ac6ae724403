"""One vocabulary of value checks, and one collector of every mistake in a document.

A ``Rule`` is a test and the words for what it asks: ``Rule("an integer >= 1", ...)``.
Two kinds of reader use the same rules:

- a constructor (a layer, an optimizer, a data set) checks its options and stops at the
  first mistake, a ValueError naming the option::

      self.units = positive_int("units", units)  # units must be a positive integer, got 0

- a document (a train config, a sweep spec) is checked whole: ``Problems`` collects every
  mistake under its key path, and ``raise_if_any`` reports them all in one ``ConfigError``,
  one line each::

      problems.check("train.epochs", 0, at_least(1))  # train.epochs: must be >= 1, got 0

A constructor shows a refused value as Python writes it (``got 'ten'``). A document shows
it with its kind (``got 'ten' (string)``), unless the rule is a bound checked after the
type (``typed=False``: ``>= 1`` once the value is known to be an integer).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable

from .registry import did_you_mean


# -- what a value is -------------------------------------------------------------------
def is_int(value) -> bool:
    """An integer, never a bool (YAML's true is not 1)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value) -> bool:
    """A real number that is finite as a float, never a bool."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer beyond the largest float
        return False


def describe(value: Any) -> str:
    """A value as a document's error shows it: ``'ten' (string)``, ``null``."""
    if value is None:
        return "null"
    kind = {bool: "boolean", int: "integer", float: "number", str: "string",
            list: "list", dict: "mapping"}.get(type(value), type(value).__name__)
    text = repr(value)
    return f"{text if len(text) <= 60 else text[:57] + '...'} ({kind})"


# -- rules -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    """A test of a value and what it asks: the message is ``must be <wanted>, got <value>``
    (``wanted`` may depend on the value, for a did-you-mean), or ``says(value)`` for a rule
    put another way. ``typed``: the test checks the type too (see the module's docstring)."""

    wanted: str | Callable[[Any], str]
    holds: Callable[[Any], bool]
    typed: bool = True
    says: Callable[[Any], str] | None = None

    def problem(self, value, shown: Callable[[Any], str] = repr) -> str | None:
        """Why ``value`` fails the rule, or None when it passes."""
        if self.holds(value):
            return None
        if self.says is not None:
            return self.says(value)
        wanted = self.wanted(value) if callable(self.wanted) else self.wanted
        return f"must be {wanted}, got {shown(value)}"


def said(holds: Callable[[Any], bool], says: Callable[[Any], str]) -> Rule:
    """A rule put another way than ``must be ...``: ``says(value)`` is the whole message."""
    return Rule("", holds, typed=False, says=says)


def integer(minimum: int | None = None) -> Rule:
    """An integer (>= ``minimum``)."""
    bound = "" if minimum is None else f" >= {minimum}"
    return Rule(f"an integer{bound}", lambda v: is_int(v) and (minimum is None or v >= minimum))


POSITIVE_INT = Rule("a positive integer", lambda v: is_int(v) and v >= 1)
BOOLEAN = Rule("true or false", lambda v: isinstance(v, bool))


def finite(minimum: float = 0.0, maximum: float | None = None) -> Rule:
    """A finite number in [minimum, maximum] (no lower bound for ``minimum=-inf``)."""
    bounds = (f" in [{minimum}, {maximum}]" if maximum is not None
              else f" >= {minimum}" if math.isfinite(minimum) else "")
    return Rule(f"a finite number{bounds}", lambda v: is_number(v) and v >= minimum
                and (maximum is None or v <= maximum))


def number(allowed: str, inside: Callable[[float], bool]) -> Rule:
    """A finite number for which ``inside`` holds, ``allowed`` in words: ``"in (0, 1]"``."""
    return Rule(f"a number {allowed}", lambda v: is_number(v) and inside(float(v)))


POSITIVE = number("> 0", lambda x: x > 0)
NONNEGATIVE = number(">= 0", lambda x: x >= 0)
FRACTION = number("in [0, 1)", lambda x: 0 <= x < 1)


def one_of(choices, suggest: bool = False) -> Rule:
    """One of ``choices``; ``suggest``: a close match is named (did you mean ...?)."""
    listing = ", ".join(map(str, choices))
    hint = (lambda v: did_you_mean(v, choices)) if suggest else (lambda v: "")
    return Rule(lambda v: f"one of {listing}{hint(v)}", lambda v: v in choices)


def known(names) -> Rule:
    """A name from ``names``, said as a config says it (the value is already a string):
    ``unknown value 'x' (did you mean ...?); allowed: ...``."""
    return said(lambda v: v in names, lambda v: f"unknown value {v!r}{did_you_mean(v, names)}; "
                                                f"allowed: {', '.join(names)}")


def distinct_names(names) -> Rule:
    """A list of distinct names from ``names``, each said as ``known`` says it:
    ``[tensorboard, mlflow]``."""
    listing = ", ".join(names)

    def says(value) -> str:
        if not isinstance(value, list):
            return f"must be a list of names from {listing}, got {describe(value)}"
        unknown = [name for name in value if name not in names]
        if unknown:
            return f"unknown value {unknown[0]!r}{did_you_mean(unknown[0], names)}; allowed: {listing}"
        return f"names {', '.join(sorted({n for n in value if value.count(n) > 1}))} more than once"

    return Rule(listing, lambda v: isinstance(v, list) and all(n in names for n in v)
                and len(set(v)) == len(v), says=says)


def at_least(minimum) -> Rule:
    """A bound on a number already checked: ``>= minimum``."""
    return Rule(f">= {minimum}", lambda v: v >= minimum, typed=False)


def above(minimum) -> Rule:
    """A bound on a number already checked: ``> minimum``."""
    return Rule(f"> {minimum}", lambda v: v > minimum, typed=False)


# -- a constructor's checks: the value back, or a ValueError naming the option ---------------
def require(name: str, value, rule: Rule, then: str = ""):
    """``value`` if it passes ``rule``, else ``ValueError("<name> must be ..., got <value><then>")``."""
    problem = rule.problem(value)
    if problem:
        raise ValueError(f"{name} {problem}{then}")
    return value


def positive_int(name: str, value) -> int:
    return int(require(name, value, POSITIVE_INT))


def check_int(name: str, value, minimum: int | None = 1) -> int:
    return int(require(name, value, integer(minimum)))


def check_float(name: str, value, minimum: float = 0.0, maximum: float | None = None) -> float:
    return float(require(name, value, finite(minimum, maximum)))


def check_number(name: str, value, allowed: str, inside: Callable[[float], bool]) -> float:
    return float(require(name, value, number(allowed, inside)))


def positive(name: str, value) -> float:
    return float(require(name, value, POSITIVE))


def nonnegative(name: str, value) -> float:
    return float(require(name, value, NONNEGATIVE))


def fraction(name: str, value) -> float:
    return float(require(name, value, FRACTION))


def check_choice(name: str, value, choices: tuple):
    return require(name, value, one_of(choices))


def check_bool(name: str, value) -> bool:
    return require(name, value, BOOLEAN)


# -- a document's checks: every mistake, under its key path --------------------------------
class ConfigError(Exception):
    """Every mistake found in a document (a train config, a sweep spec, a run folder's
    file), one line each, each starting with its key path."""

    def __init__(self, errors: list[str]):
        self.errors = list(errors)
        super().__init__(self.errors)

    def __str__(self) -> str:
        return "\n".join(self.errors)


INVALID = object()  # what a document's reader holds for a value that failed its check


def join(path: str, key: Any) -> str:
    """The key path of ``key`` under ``path``: ``model.layers`` + 0 → ``model.layers.0``."""
    return f"{path}.{key}" if path else str(key)


class Problems(list):
    """The mistakes found in one document, in the order found: lines that each start
    with a key path, ``train.epochs: must be >= 1, got 0``."""

    def add(self, path: str, message: str) -> None:
        self.append(f"{path}: {message}")

    def unknown(self, path: str, key, allowed) -> None:
        """A key the mapping at ``path``'s parent does not take."""
        self.add(path, f"unknown key{did_you_mean(key, allowed)}; allowed: {', '.join(allowed)}")

    def check(self, path: str, value, rule: Rule) -> bool:
        """Whether ``value`` passes ``rule``; a mistake is recorded when it does not."""
        problem = rule.problem(value, describe if rule.typed else repr)
        if problem:
            self.add(path, problem)
        return problem is None

    def raise_if_any(self, error: type[ConfigError] = ConfigError) -> None:
        if self:
            raise error(list(self))
