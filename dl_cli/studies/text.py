"""How a study's values read in report.md: a parameter value in a label, a mean ± std,
a markdown table."""

from __future__ import annotations

import json
import statistics

from ..tables import number


def short(value) -> str:
    """A parameter value in a label: ``normal(std=0.01)`` for a spec, numbers to 4 digits."""
    if isinstance(value, dict) and "type" in value:
        options = ", ".join(f"{k}={short(v)}" for k, v in value.items() if k != "type")
        return f"{value['type']}({options})" if options else str(value["type"])
    if isinstance(value, (dict, list)):
        text = json.dumps(value, separators=(",", ":"))
        return text if len(text) <= 30 else text[:27] + "..."
    return number(value)


def mean_std(values: list[float], digits: int = 4) -> str:
    """``0.9554 ± 0.011``: the mean and the sample standard deviation (the value alone
    when there is one, or all are equal)."""
    if not values:
        return "–"
    text = f"{statistics.fmean(values):.{digits}g}"
    return text if len(set(values)) == 1 else f"{text} ± {statistics.stdev(values):.2g}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
