"""How `dl` writes a number: alone in a line, or in a column of numbers at one precision.

A value gets four significant digits: ``0.9694``, ``0.02509``, ``1.000``, ``12.35``. A
column gets the decimals its largest value needs for four, and every value in it gets
those same decimals, so that ``1.000`` stands above ``0.978`` (never ``1`` above
``0.9777``), and a mean and its spread read alike (``0.9854 ± 0.0108``). Values too
large or too small for that (at least ``10⁶``, or a nonzero value that would keep fewer
than two significant digits) put the whole column in scientific notation: ``3.052e+04``.
"""

from __future__ import annotations

import json
import math

SIGNIFICANT = 4
MOST_DECIMALS = 6
LARGE = 1e6


def decimals(values: list[float]) -> int | None:
    """The decimals that give the largest of ``values`` four significant digits and leave
    every nonzero one at least two; None when scientific notation is needed instead."""
    sizes = [abs(v) for v in values if v != 0]
    if not sizes:
        return SIGNIFICANT - 1
    largest, smallest = max(sizes), min(sizes)
    if largest >= LARGE:
        return None
    places = max(0, SIGNIFICANT - 1 - math.floor(math.log10(largest)))
    if places > MOST_DECIMALS or smallest < 10 ** (1 - places):
        return None
    return places


def column(values: list) -> list[str]:
    """Each value as text, the floats among them at one precision (``decimals``); None
    is ``-``, integers and words stay as they are, NaN and infinities are spelled out."""
    floats = [v for v in values if isinstance(v, float) and math.isfinite(v)]
    places = decimals(floats) if floats else None

    def text(value) -> str:
        if value is None:
            return "-"
        if not isinstance(value, float):
            return str(value)
        if not math.isfinite(value):
            return str(value)
        return f"{value:.{places}f}" if places is not None else f"{value:.{SIGNIFICANT - 1}e}"

    return [text(v) for v in values]


def figure(value) -> str:
    """One value with four significant digits (``column`` of one)."""
    return column([value])[0]


def scores_text(scores: dict) -> str:
    """``{"test/loss": 0.0944, "test/acc": 0.9694}`` → ``test/loss 0.09436  test/acc 0.9694``."""
    return "  ".join(f"{key} {figure(value)}" for key, value in scores.items())


def short(value) -> str:
    """A parameter value in a label or a tick: ``normal(std=0.01)`` for a spec, numbers to
    four significant digits, other data as compact JSON cut at 30 characters."""
    if isinstance(value, dict) and "type" in value:
        options = ", ".join(f"{k}={short(v)}" for k, v in value.items() if k != "type")
        return f"{value['type']}({options})" if options else str(value["type"])
    if isinstance(value, (dict, list)):
        text = json.dumps(value, separators=(",", ":"))
        return text if len(text) <= 30 else text[:27] + "..."
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.4g}"
    return str(value)
