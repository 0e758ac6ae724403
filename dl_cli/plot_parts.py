"""The parts the PNG figures share, those of ``dl plot`` (``plot.py``, ``plot_trials.py``)
and of ``dl report`` (``studies/figures.py``): the epoch records a learning curve is drawn
from, an x axis placed for any values (log, symlog, categories or linear), an axis of
whole epochs, a legend beside the data, and the curve another one hides.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.ticker import MaxNLocator

from .numbers import short
from .runs import Run


def epoch_records(run_dir: Path) -> list[dict]:
    """The per-epoch lines of metrics.jsonl (iteration lines have no learning rate)."""
    return [r for r in Run(run_dir).read_metrics() if "lr" in r]


def is_number(value) -> bool:
    """A number on an axis (a bool is a category)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


FEW = 4  # numeric parameters with at most this many values are shown as categories


def place_values(ax, values: list, order: list | None = None, log: bool = False):
    """Set ``ax``'s x axis for ``values`` and return where each value goes:

    - symlog for a zero among positive values spanning decades (l2 0, 1e-5, 1e-4): the
      zero keeps its place, the others their decades;
    - log for a log domain (``log``) or positive values spanning three decades or more;
    - categories, evenly spaced with short labels (``numbers.short``), for words, specs
      and any other numbers of at most ``FEW`` distinct values (batch size 32, 64), in
      ``order`` or by value;
    - linear otherwise.
    """
    numeric = all(is_number(v) for v in values)
    positive = [v for v in values if numeric and v > 0]
    if positive and min(values) == 0 and max(positive) / min(positive) >= 10:
        ax.set_xscale("symlog", linthresh=min(positive))
        return list(values)
    if positive and positive == values and (log or max(values) / min(values) >= 1000):
        ax.set_xscale("log")
        return list(values)
    distinct = list(dict.fromkeys(short(v) for v in values))
    if numeric and len(distinct) > FEW:
        return list(values)
    labels = order or sorted(distinct, key=(lambda t: float(t)) if numeric else None)
    ax.set_xticks(range(len(labels)), labels, rotation=0 if numeric else 30,
                  ha="center" if numeric else "right")
    ax.set_xlim(-0.5, len(labels) - 0.5)
    return [labels.index(short(v)) for v in values]


def epoch_axis(ax) -> None:
    """An x axis of epochs: whole numbers only."""
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def hidden_by(curve: tuple[list, list], drawn: dict[str, tuple[list, list]]) -> str | None:
    """The label of a curve already drawn that ``curve`` (epochs, values) coincides with,
    so that the one drawn over it can say so; None when it shows."""
    for label, other in drawn.items():
        if list(other[0]) == list(curve[0]) and np.allclose(other[1], curve[1], rtol=1e-3,
                                                            atol=1e-9, equal_nan=True):
            return label
    return None


def outside_legend(ax, **options) -> None:
    """The axes' legend to the right of the data, never over it."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0, **options)
