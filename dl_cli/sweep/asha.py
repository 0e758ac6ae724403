"""Successive halving: stop poor configurations early, decided on the sweep's own table.

With ``min_epochs = r`` and ``eta = η`` every configuration is trained to rung ``r``;
the best ``⌊n/η⌋`` (at least one) of the ``n`` still in the race go on to rung ``r·η``,
the others are *pruned*; and so on up to the configured epochs, the last rung. A trial
resumes from its ``last.npz`` at each rung, so a promoted configuration ends exactly as
if it had been trained in one go.

The rungs are synchronous: a rung is decided once every trial in it has reported, from
the ledger alone. That makes the verdicts identical on one worker, on many, and on a
cluster, at the price of waiting for a rung's slowest trial (asynchronous ASHA would
promote as results arrive, which depends on timing).
"""

from __future__ import annotations

import math


def rungs(min_epochs: int, eta: int, max_epochs: int) -> list[int]:
    """``min_epochs·ηᵏ`` below ``max_epochs``, then ``max_epochs``: (3, 3, 30) → [3, 9, 27, 30]."""
    out = []
    epochs = min_epochs
    while epochs < max_epochs:
        out.append(epochs)
        epochs *= eta
    return out + [max_epochs]


def promote(scores: dict[int, float | None], eta: int, goal: str) -> set[int]:
    """The keys of the best ``max(1, ⌊n/η⌋)`` scores (ties go to the lower key); a missing
    or non-finite score is never promoted."""
    finite = {key: s for key, s in scores.items() if s is not None and math.isfinite(s)}
    sign = -1.0 if goal == "max" else 1.0
    ranked = sorted(finite, key=lambda key: (sign * finite[key], key))
    return set(ranked[:max(1, len(scores) // eta)])
