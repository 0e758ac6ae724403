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
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import describe
from ..registry import did_you_mean

KINDS = ("values", "range", "uniform", "loguniform", "int_uniform", "int_loguniform")
CONTINUOUS = ("uniform", "loguniform", "int_uniform", "int_loguniform")


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


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
            lo, hi, step = self.args
            return int(math.floor((hi - lo) / step + 1e-9)) + 1
        if self.grid is None:
            return self.args[1] - self.args[0] + 1 if self.kind == "int_uniform" else None
        return len(self.points())

    def point(self, i: int):
        """Point ``i`` of ``points()``; for a range or an int_uniform without listing them."""
        if self.kind == "range":
            lo, hi, step = self.args
            if all(is_int(a) for a in self.args):
                return lo + i * step
            return round(lo + i * step, 12)
        if self.kind == "int_uniform" and self.grid is None:
            return self.args[0] + i
        return self.points()[i]

    def points(self) -> list | None:
        """The finite set of values, or None for a continuous domain without ``grid``."""
        if self.kind == "values":
            return list(self.args)
        if self.kind == "range" or self.kind == "int_uniform" and self.grid is None:
            return [self.point(i) for i in range(self.size())]
        if self.grid is None:
            return None
        lo, hi = self.args
        spaced = np.geomspace(lo, hi, self.grid) if self.log else np.linspace(lo, hi, self.grid)
        if self.kind.startswith("int_"):
            return sorted({int(round(v)) for v in spaced})
        return [float(v) for v in spaced]

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


def parse_domain(raw: Any, path: str, errors: list[str]) -> Domain | None:
    """A Domain from ``{kind: args, grid: N}``; a bare list means ``{values: list}``."""
    if isinstance(raw, list):
        raw = {"values": raw}
    if not isinstance(raw, dict):
        errors.append(f"{path}: expected a domain such as {{values: [...]}} or "
                      f"{{loguniform: [lo, hi]}}, got {describe(raw)}; fixed values go in "
                      f"'overrides'")
        return None
    kinds = [k for k in raw if k in KINDS]
    for key in raw:
        if key not in KINDS and key != "grid":
            errors.append(f"{path}.{key}: unknown domain{did_you_mean(key, KINDS)}; "
                          f"allowed: {', '.join(KINDS)} (and grid: N)")
    if len(kinds) != 1:
        if not kinds and all(k in KINDS or k == "grid" for k in raw):
            errors.append(f"{path}: give one of {', '.join(KINDS)}")
        elif kinds:
            errors.append(f"{path}: give one domain, got {', '.join(kinds)}")
        return None
    kind, args = kinds[0], raw[kinds[0]]
    where = f"{path}.{kind}"
    grid = raw.get("grid")
    if grid is not None and (not is_int(grid) or grid < 2):
        errors.append(f"{path}.grid: must be an integer >= 2 (points of the grid), got {describe(grid)}")
        return None
    if grid is not None and kind not in CONTINUOUS:
        errors.append(f"{path}.grid: applies to {', '.join(CONTINUOUS)}; {kind} lists its points already")
        return None
    if kind == "values":
        if not isinstance(args, list) or not args:
            errors.append(f"{where}: expected a non-empty list, got {describe(args)}")
            return None
        return Domain(kind, tuple(args))
    size = 3 if kind == "range" else 2
    shape = "[lo, hi, step]" if kind == "range" else "[lo, hi]"
    integer = kind.startswith("int_")
    if not (isinstance(args, list) and len(args) == size
            and all(is_int(a) if integer else is_number(a) for a in args)):
        wanted = "integers" if integer else "finite numbers"
        errors.append(f"{where}: expected {shape} of {wanted}, got {describe(args)}")
        return None
    lo, hi = args[0], args[1]
    if kind == "range" and not args[2] > 0:
        errors.append(f"{where}: step must be > 0, got {args[2]}")
    elif lo > hi or lo == hi and kind in ("uniform", "loguniform"):
        errors.append(f"{where}: lo must be below hi, got {shape} = {args}")
    elif kind == "loguniform" and lo <= 0 or kind == "int_loguniform" and lo < 1:
        errors.append(f"{where}: a log domain needs lo {'>= 1' if integer else '> 0'}, got {lo}")
    else:
        return Domain(kind, tuple(args), grid)
    return None
