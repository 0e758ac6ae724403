"""Which parameters mattered in a sweep: permutation importance and partial dependence,
from a random forest fitted to its completed trials (``dl plot SWEEP``).

A random forest ``f`` is fitted to the N completed trials: each trial's swept values
``x`` (one column per parameter, and one for the variant) → its metric ``y``.

- The importance of parameter ``j`` is how much the forest's fit suffers when column
  ``j`` is shuffled among the trials (permutation importance, Breiman 2001):
  ``drop_j = R²(y, f(X)) − R²(y, f(X with column j permuted))``, averaged over
  ``repeats`` shuffles, where ``R² = 1 − Σ(y − ŷ)² / Σ(y − ȳ)²``. The drops are shared
  out so that they sum to 1 (a negative drop counts as none): ``share_j = drop_j / Σ drop``.
- The partial dependence of the pair ``(i, j)`` is the forest's mean prediction with
  those two set and the others as the trials had them:
  ``PD(a, b) = (1/N) Σₙ f(x⁽ⁿ⁾ with xᵢ = a, xⱼ = b)``.

Only completed trials count: a pruned trial's metric was taken at an earlier epoch. A
value is encoded as itself when every trial's is a number (``log10`` of it for a log
domain), else as its position among the values seen (strings, layer lists, variants).
Everything is seeded, so a sweep's plots are the same each time they are drawn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .ledger import TrialState
from .results import show
from .spec import SweepSpec

MIN_TRIALS = 5   # fewer completed trials than this tell a forest nothing
REPEATS = 20     # shuffles per parameter
GRID = 30        # points per axis of a partial dependence
MOST_ROWS = 200  # trials averaged over in a partial dependence (a seeded sample beyond)


@dataclass
class Column:
    """One swept parameter as a column of numbers: ``kind`` is number, log (encoded as
    log10) or category (encoded as the position of its label among ``labels``)."""

    name: str
    kind: str
    labels: list[str]

    def encode(self, value) -> float:
        if self.kind == "category":
            return float(self.labels.index(show(value)))
        return math.log10(value) if self.kind == "log" else float(value)

    def decode(self, x: np.ndarray) -> np.ndarray:
        """Encoded values back on the parameter's own axis (positions stay positions)."""
        return 10.0 ** x if self.kind == "log" else x


@dataclass
class SearchModel:
    """A forest fitted to a sweep's completed trials: ``X`` (N, P) encoded values, ``y``."""

    columns: list[Column]
    X: np.ndarray
    y: np.ndarray
    forest: object

    def r2(self, X: np.ndarray) -> float:
        residual = self.y - self.forest.predict(X)
        return 1.0 - float(residual @ residual) / float(((self.y - self.y.mean()) ** 2).sum())


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def column(spec: SweepSpec, name: str, values: list) -> Column:
    if name == "variant":
        return Column(name, "category", [v for v in spec.variants if v in values])
    if all(is_number(v) for v in values):
        positive = all(v > 0 for v in values)
        return Column(name, "log" if spec.params[name].log and positive else "number", [])
    return Column(name, "category", sorted({show(v) for v in values}))


def fit(spec: SweepSpec, table: dict[int, TrialState]) -> SearchModel | None:
    """The forest of a sweep's completed trials; None with fewer than MIN_TRIALS of them,
    fewer than two parameters, or one metric for all."""
    from sklearn.ensemble import RandomForestRegressor

    trials = [s for s in sorted(table.values(), key=lambda s: s.index)
              if s.status == "completed" and s.metric is not None and math.isfinite(s.metric)]
    names = (["variant"] if spec.variants else []) + list(spec.params)
    if len(trials) < MIN_TRIALS or len(names) < 2:
        return None
    y = np.array([s.metric for s in trials])
    if np.ptp(y) == 0:
        return None

    def value(state: TrialState, name: str):
        return state.variant if name == "variant" else state.params[name]

    columns = [column(spec, name, [value(s, name) for s in trials]) for name in names]
    X = np.array([[c.encode(value(s, c.name)) for c in columns] for s in trials])
    forest = RandomForestRegressor(n_estimators=200, random_state=0, n_jobs=1).fit(X, y)
    return SearchModel(columns, X, y, forest)


def importances(model: SearchModel, repeats: int = REPEATS) -> tuple[np.ndarray, np.ndarray]:
    """Each parameter's share of the drop in R² when it is shuffled, and the standard
    deviation of that share over the shuffles (see the module docstring)."""
    rng = np.random.default_rng(0)
    fitted = model.r2(model.X)
    drops = np.zeros((model.X.shape[1], repeats))
    for j in range(model.X.shape[1]):
        for r in range(repeats):
            shuffled = model.X.copy()
            shuffled[:, j] = rng.permutation(shuffled[:, j])
            drops[j, r] = fitted - model.r2(shuffled)
    mean = np.clip(drops.mean(axis=1), 0.0, None)
    total = mean.sum()
    if total == 0:
        return mean, np.zeros_like(mean)
    return mean / total, drops.std(axis=1) / total


def most_important_pair(model: SearchModel, shares: np.ndarray) -> tuple[int, int] | None:
    """The two most important parameters whose values vary among the trials (ties go to
    the earlier column), or None when fewer than two vary."""
    varying = [j for j in range(model.X.shape[1]) if np.ptp(model.X[:, j]) > 0]
    ranked = sorted(varying, key=lambda j: (-shares[j], j))
    return (ranked[0], ranked[1]) if len(ranked) >= 2 else None


def axis(model: SearchModel, j: int) -> np.ndarray:
    """The encoded points a partial dependence takes along column ``j``."""
    if model.columns[j].kind == "category":
        return np.arange(len(model.columns[j].labels), dtype=float)
    return np.linspace(model.X[:, j].min(), model.X[:, j].max(), GRID)


def partial_dependence(model: SearchModel, i: int, j: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(a, b, PD)``: the encoded points of columns ``i`` and ``j`` and ``PD[q, p] =
    PD(a[p], b[q])`` (see the module docstring)."""
    a, b = axis(model, i), axis(model, j)
    rows = model.X
    if len(rows) > MOST_ROWS:
        rows = rows[np.random.default_rng(0).choice(len(rows), MOST_ROWS, replace=False)]
    B, A = np.meshgrid(b, a, indexing="ij")  # (len(b), len(a)), as contourf wants Z
    grid = np.repeat(rows[None, :, :], A.size, axis=0)  # (grid points, trials, P)
    grid[:, :, i] = A.reshape(-1, 1)
    grid[:, :, j] = B.reshape(-1, 1)
    predictions = model.forest.predict(grid.reshape(-1, rows.shape[1]))
    return a, b, predictions.reshape(A.size, len(rows)).mean(axis=1).reshape(A.shape)
