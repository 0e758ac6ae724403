"""How a study's values read in report.md: a mean ± std, a markdown table (a parameter
value in a label: ``numbers.short``)."""

from __future__ import annotations

import statistics


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
