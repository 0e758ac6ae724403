"""Option checks for layers, optimizers, schedules and data sets: each returns the value
(as a plain Python number) or raises a ValueError naming the option, the value and the rule."""

from __future__ import annotations

import math
import numbers


def positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_float(name: str, value, minimum: float = 0.0, maximum: float | None = None) -> float:
    """``value`` as a float if it is a finite number in [minimum, maximum] (no lower bound
    for ``minimum=-inf``), else a ValueError naming the option and the value."""
    bounds = (f" in [{minimum}, {maximum}]" if maximum is not None
              else f" >= {minimum}" if math.isfinite(minimum) else "")
    if (isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value)
            or value < minimum or (maximum is not None and value > maximum)):
        raise ValueError(f"{name} must be a finite number{bounds}, got {value!r}")
    return float(value)


def check_choice(name: str, value, choices: tuple) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}")
    return value


def check_bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return value
