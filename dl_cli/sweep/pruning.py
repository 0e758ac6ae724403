"""Pruning: stop poor configurations early, decided on the sweep's own table.

Both rules train every configuration of a round to the rungs ``r, r·η, r·η², ...`` (``r =
min_epochs``, up to the configured epochs, the last rung) and decide at each rung which
configurations go on; the others are *pruned*. A trial resumes from its ``last.npz`` at
each rung, so a configuration that goes on ends exactly as if it had been trained in one go.

- ``sha`` (synchronous successive halving): the best ``⌊n/η⌋`` (at least one) of the
  ``n`` configurations still in the race go on.
- ``median`` (Optuna's MedianPruner, made synchronous): a configuration goes on unless
  its score at the rung is worse than the median of every score reported at that rung
  so far, its round's and earlier rounds' (a model-based search runs in rounds).

The rungs are synchronous: a rung is decided once every trial of the round has reported
there, from the ledger alone. That makes the verdicts identical on one worker, on many,
and on a cluster, and after a resume, at the price of waiting for a rung's slowest trial
(asynchronous ASHA would promote as results arrive, which depends on timing).
"""

from __future__ import annotations

import math
import statistics

RULES = ("sha", "median")
RENAMED = {"asha": "sha"}  # former rule names, still read


def rungs(min_epochs: int, eta: int, max_epochs: int) -> list[int]:
    """``min_epochs·ηᵏ`` below ``max_epochs``, then ``max_epochs``: (3, 3, 30) → [3, 9, 27, 30]."""
    out = []
    epochs = min_epochs
    while epochs < max_epochs:
        out.append(epochs)
        epochs *= eta
    return out + [max_epochs]


def finite(scores: dict[int, float | None]) -> dict[int, float]:
    return {key: s for key, s in scores.items() if s is not None and math.isfinite(s)}


def promote(scores: dict[int, float | None], eta: int, goal: str) -> set[int]:
    """Successive halving: the keys of the best ``max(1, ⌊n/η⌋)`` scores (ties go to the
    lower key); a missing or non-finite score is never promoted."""
    kept = finite(scores)
    sign = -1.0 if goal == "max" else 1.0
    ranked = sorted(kept, key=lambda key: (sign * kept[key], key))
    return set(ranked[:max(1, len(scores) // eta)])


def above_median(scores: dict[int, float | None], earlier: dict[int, float | None],
                 goal: str) -> set[int]:
    """The median rule: the keys of ``scores`` not worse than the median ``m`` of the
    finite scores of ``scores`` and ``earlier`` together (score ≥ m for goal max, ≤ m for
    min); a missing or non-finite score never goes on."""
    kept = finite(scores)
    reference = [*kept.values(), *finite(earlier).values()]
    if not reference:
        return set()
    middle = statistics.median(reference)
    return {key for key, s in kept.items() if (s >= middle if goal == "max" else s <= middle)}


def rung_scores(trials, epochs: int, min_epochs: int) -> dict[int, float | None]:
    """Each configuration's mean metric at the rung of ``epochs`` over its trials among
    ``trials`` (``ledger.TrialState``), for the configurations whose trials all reached
    the rung (None: one of them diverged or failed)."""
    groups: dict[int, list] = {}
    for trial in trials:
        groups.setdefault(trial.config, []).append(trial)
    scores = {}
    for config, group in groups.items():
        if all(t.reached(epochs, min_epochs) for t in group):
            values = [t.metric_at(epochs) for t in group]  # None: diverged or failed
            scores[config] = None if None in values else sum(values) / len(values)
    return scores
