"""Where a swept parameter's values come from.

Domains (``grid: N`` discretizes any of the last four, log-spaced for the log ones):

| domain | points or draws |
|---|---|
| ``values: [a, b, ...]`` | the listed values (any YAML: numbers, names, layer lists) |
| ``range: [lo, hi, step]`` | lo, lo + step, ... up to and including hi |
| ``uniform: [lo, hi]`` | a real number in [lo, hi] |
| ``loguniform: [lo, hi]`` | exp of a uniform draw in [log lo, log hi]: each decade equally likely |
| ``int_uniform: [lo, hi]`` | an integer in [lo, hi]; a grid takes all of them |
| ``int_loguniform: [lo, hi]`` | an integer, log-uniformly (a grid needs ``grid: N``) |

Limits, checked as a spec is read: integer bounds within ±10**18 (draws are made in
int64), a range of at most 10**18 points, ``grid: N`` of at most 10,000 points (they are
listed), and ``hi - lo`` a finite number.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from ..checks import Problems, Rule, describe, is_int, is_number
from ..registry import did_you_mean

KINDS = ("values", "range", "uniform", "loguniform", "int_uniform", "int_loguniform")
CONTINUOUS = ("uniform", "loguniform", "int_uniform", "int_loguniform")
LARGEST_INT = 10**18        # integer bounds: well inside int64, where draws are made
MOST_POINTS = 10**18        # of a range, counted without listing them
MOST_GRID_POINTS = 10_000   # of grid: N, which is listed


def is_plain(value) -> bool:
    """Data that a trial's override (JSON) can carry: not a date, which YAML reads from
    an unquoted 2024-01-01."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Domain:
    """Where one parameter's values come from: ``kind`` is one of KINDS, ``args`` the
    listed values, ``(lo, hi, step)`` for a range or ``(lo, hi)`` otherwise."""

    kind: str
    args: tuple
    grid: int | None = None

    @property
    def log(self) -> bool:
        return self.kind in ("loguniform", "int_loguniform")

    @property
    def continuous(self) -> bool:
        """A range of numbers that coarse-to-fine refinement can narrow."""
        return self.kind in CONTINUOUS

    def size(self) -> int | None:
        """How many points the domain has (None: continuous without ``grid``), counted
        without listing them."""
        if self.kind == "values":
            return len(self.args)
        if self.kind == "range":
            return range_size(*self.args)
        if self.grid is None:
            return self.args[1] - self.args[0] + 1 if self.kind == "int_uniform" else None
        return len(spaced_points(self.kind, *self.args, self.grid))

    def point(self, i: int):
        """Point ``i`` of ``points()``; for a range or an int_uniform without listing them."""
        if self.kind == "range":
            lo, hi, step = self.args
            if all(is_int(a) for a in self.args):
                return lo + i * step
            return round(lo + i * step, 12)
        if self.kind == "int_uniform" and self.grid is None:
            return self.args[0] + i
        if self.kind == "values":
            return self.args[i]
        return spaced_points(self.kind, *self.args, self.grid)[i]

    def points(self) -> list | None:
        """The finite set of values, or None for a continuous domain without ``grid``."""
        if self.kind == "values":
            return list(self.args)
        if self.kind == "range" or self.kind == "int_uniform" and self.grid is None:
            return [self.point(i) for i in range(self.size())]
        if self.grid is None:
            return None
        return list(spaced_points(self.kind, *self.args, self.grid))

    def sample(self, rng: np.random.Generator):
        """One draw; a finite domain draws each of its points with equal probability
        (``rng.integers(size)``, then that point: a range or an int_uniform is never listed)."""
        size = self.size()
        if size is not None:
            return self.point(int(rng.integers(size)))
        lo, hi = self.args
        if self.kind == "uniform":
            return float(rng.uniform(lo, hi))
        if self.kind == "loguniform":
            return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
        # int_loguniform: floor of a log-uniform draw on [lo, hi + 1) gives lo..hi
        return int(min(hi, math.floor(math.exp(rng.uniform(math.log(lo), math.log(hi + 1))))))

    def narrowed(self, chosen: list) -> "Domain":
        """The range around ``chosen`` (the best trials' values), padded by a quarter of
        their spread on each side (a tenth of the current range when they coincide),
        measured in log space for log domains and kept inside the current range."""
        forward, back = (math.log, math.exp) if self.log else (float, float)
        lo, hi = forward(self.args[0]), forward(self.args[1])
        low, high = forward(min(chosen)), forward(max(chosen))
        pad = 0.25 * (high - low) if high > low else 0.1 * (hi - lo)
        first, last = self.args  # a padded end past the range is the range's own end
        new_lo = first if low - pad <= lo else back(low - pad)
        new_hi = last if high + pad >= hi else back(high + pad)
        if self.kind.startswith("int_"):
            new_lo, new_hi = int(math.floor(new_lo + 1e-9)), int(math.ceil(new_hi - 1e-9))
        # exp(log(x)) and the integer rounding can still step past an end by an ulp or one
        new_lo, new_hi = min(max(new_lo, first), last), min(max(new_hi, first), last)
        return Domain(self.kind, (new_lo, new_hi), self.grid)

    def to_yaml(self) -> dict:
        out: dict[str, Any] = {self.kind: list(self.args)}
        if self.grid is not None:
            out["grid"] = self.grid
        return out

    def describe(self) -> str:
        text = f"{self.kind} {list(self.args)}"
        return text + (f", grid {self.grid}" if self.grid is not None else "")


def range_size(lo, hi, step) -> int:
    """The number of points lo, lo + step, ... up to and including hi (exact for integers)."""
    if all(is_int(a) for a in (lo, hi, step)):
        return (hi - lo) // step + 1
    return int(math.floor((hi - lo) / step + 1e-9)) + 1


@lru_cache(maxsize=64)
def spaced_points(kind: str, lo, hi, grid: int) -> tuple:
    """The ``grid`` points of a continuous domain, log-spaced for the log kinds; the
    integer kinds keep each rounded value once. Cached: a random sweep draws from them
    once per trial."""
    spaced = np.geomspace(lo, hi, grid) if "log" in kind else np.linspace(lo, hi, grid)
    if kind.startswith("int_"):
        return tuple(sorted({int(round(v)) for v in spaced}))
    return tuple(float(v) for v in spaced)


def bounds_problem(kind: str, args: list) -> str | None:
    """Why numeric domain arguments (already of the right types) cannot be used, or None."""
    lo, hi = args[0], args[1]
    shape = "[lo, hi, step]" if kind == "range" else "[lo, hi]"
    if all(is_int(a) for a in args) and any(abs(a) > LARGEST_INT for a in args):
        return f"integers must lie within ±10**18, got {args}"
    if kind == "range" and not args[2] > 0:
        return f"step must be > 0, got {args[2]}"
    if lo > hi or lo == hi and kind in ("uniform", "loguniform"):
        return f"lo must be below hi, got {shape} = {args}"
    if kind == "loguniform" and lo <= 0 or kind == "int_loguniform" and lo < 1:
        return f"a log domain needs lo {'>= 1' if kind.startswith('int_') else '> 0'}, got {lo}"
    span = float(hi) - float(lo)
    if not math.isfinite(span):
        return f"hi - lo must be a finite number, got {shape} = {args}"
    if kind == "range" and span / args[2] >= MOST_POINTS:
        return f"{shape} = {args} has {span / args[2]:.3g} points; at most 1e+18: take a larger step"
    return None


GRID = Rule(f"an integer from 2 to {MOST_GRID_POINTS} (points of the grid)",
            lambda v: is_int(v) and 2 <= v <= MOST_GRID_POINTS)


def parse_domain(raw: Any, path: str, found: list[str]) -> Domain | None:
    """A Domain from ``{kind: args, grid: N}``; a bare list means ``{values: list}``.
    Every mistake is added to ``found`` as a line that starts with its key path."""
    problems = Problems()
    domain = read_domain(raw, path, problems)
    found.extend(problems)
    return domain


def read_domain(raw: Any, path: str, problems: Problems) -> Domain | None:
    if isinstance(raw, list):
        raw = {"values": raw}
    if not isinstance(raw, dict):
        problems.add(path, f"expected a domain such as {{values: [...]}} or {{loguniform: [lo, hi]}}, "
                           f"got {describe(raw)}; fixed values go in 'overrides'")
        return None
    kinds = [k for k in raw if k in KINDS]
    for key in raw:
        if key not in KINDS and key != "grid":
            problems.add(f"{path}.{key}", f"unknown domain{did_you_mean(key, KINDS)}; "
                                          f"allowed: {', '.join(KINDS)} (and grid: N)")
    if len(kinds) != 1:
        if not kinds and all(k in KINDS or k == "grid" for k in raw):
            problems.add(path, f"give one of {', '.join(KINDS)}")
        elif kinds:
            problems.add(path, f"give one domain, got {', '.join(kinds)}")
        return None
    kind, args = kinds[0], raw[kinds[0]]
    where = f"{path}.{kind}"
    grid = raw.get("grid")
    if grid is not None and not problems.check(f"{path}.grid", grid, GRID):
        return None
    if grid is not None and kind not in CONTINUOUS:
        problems.add(f"{path}.grid", f"applies to {', '.join(CONTINUOUS)}; {kind} lists its points already")
        return None
    if kind == "values":
        if not isinstance(args, list) or not args:
            problems.add(where, f"expected a non-empty list, got {describe(args)}")
            return None
        for i, value in enumerate(args):
            if not is_plain(value):
                problems.add(f"{where}.{i}", f"expected numbers, strings, lists or mappings, got "
                                             f"{describe(value)}; quote a date to make it a string")
                return None
        return Domain(kind, tuple(args))
    size = 3 if kind == "range" else 2
    shape = "[lo, hi, step]" if kind == "range" else "[lo, hi]"
    integer = kind.startswith("int_")
    if not (isinstance(args, list) and len(args) == size
            and all(is_int(a) if integer else is_number(a) for a in args)):
        wanted = "integers" if integer else "finite numbers"
        problems.add(where, f"expected {shape} of {wanted}, got {describe(args)}")
        return None
    problem = bounds_problem(kind, args)
    if problem:
        problems.add(where, problem)
        return None
    return Domain(kind, tuple(args), grid)
