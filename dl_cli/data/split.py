"""Train/validation/test splits and k-fold cross-validation, shuffled and seeded.

The validation set picks hyperparameters; the test set is scored once, at the end.
Shuffling first keeps every split from the same distribution; stratifying keeps each
class's share equal across splits (classification labels only: integer ``y``).
"""

from __future__ import annotations

import numpy as np

from ..checks import check_float, check_int


def split_sizes(n: int, val: float, test: float) -> tuple[int, int]:
    """``(n_val, n_test)`` for n samples: rounded fractions, at least one sample in each
    split asked for, as long as one training sample is left."""
    n_val, n_test = int(n * val + 0.5), int(n * test + 0.5)
    while n_val + n_test >= n and n_val + n_test > 0:
        if n_test >= n_val:
            n_test -= 1
        else:
            n_val -= 1
    if val > 0 and n_val == 0 and n - n_test >= 2:
        n_val = 1
    if test > 0 and n_test == 0 and n - n_val >= 2:
        n_test = 1
    return n_val, n_test


def check_fractions(val: float, test: float) -> None:
    check_float("split val", val, 0.0, 1.0)
    check_float("split test", test, 0.0, 1.0)
    if val + test >= 1:
        raise ValueError(f"split val + test must be < 1 to leave training data, "
                         f"got {val} + {test} = {val + test}")


def strata(y: np.ndarray, stratify: bool) -> list[np.ndarray]:
    """Index groups to split separately: one per class when stratifying integer labels
    ``(N,)``, else (regression targets, per-step labels ``(N, T)``) everything together."""
    y = np.asarray(y)
    if stratify and y.ndim == 1 and y.dtype.kind in "iub":
        _, inverse = np.unique(y, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        return np.split(order, np.cumsum(np.bincount(inverse))[:-1])
    return [np.arange(len(y))]


def allocate(sizes: np.ndarray, fraction: float, total: int, room: np.ndarray,
             rng: np.random.Generator) -> np.ndarray:
    """Per-class counts that sum to ``total``: each class starts at ``⌊size·fraction⌋``,
    then one at a time the class furthest below ``size·fraction`` gains a sample (or,
    when over, the class furthest above loses one); ties in random order, never more
    than ``room`` per class."""
    quota = sizes * fraction
    counts = np.minimum(np.floor(quota).astype(np.int64), room)
    order = rng.permutation(len(sizes))
    while counts.sum() < total:
        shortfall = np.where(counts < room, quota - counts, -np.inf)[order]
        counts[order[np.argmax(shortfall)]] += 1
    while counts.sum() > total:
        excess = np.where(counts > 0, counts - quota, -np.inf)[order]
        counts[order[np.argmax(excess)]] -= 1
    return counts


def split_indices(y: np.ndarray, val: float = 0.2, test: float = 0.2, seed=0,
                  stratify: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shuffle and split ``range(len(y))`` into ``(train_idx, val_idx, test_idx)``.

    The validation and test splits get ``round(fraction·n)`` samples (at least one each
    when asked for and possible). Stratified, each class c puts ``⌊n_c·fraction⌋`` or
    ``⌈n_c·fraction⌉`` samples into each split, so its share holds within one sample.
    Each split comes out shuffled. ``seed`` is anything ``np.random.default_rng`` takes.
    A dataset with its own test set calls this with ``test=0`` and keeps its test set.
    """
    check_fractions(val, test)
    rng = np.random.default_rng(seed)
    groups = [rng.permutation(group) for group in strata(y, stratify)]
    sizes = np.array([len(group) for group in groups], dtype=np.int64)
    n_val, n_test = split_sizes(len(y), val, test)
    val_counts = allocate(sizes, val, n_val, sizes, rng)
    test_counts = allocate(sizes, test, n_test, sizes - val_counts, rng)
    parts: tuple[list, list, list] = ([], [], [])
    for group, n_val_c, n_test_c in zip(groups, val_counts, test_counts):
        parts[1].append(group[:n_val_c])
        parts[2].append(group[n_val_c:n_val_c + n_test_c])
        parts[0].append(group[n_val_c + n_test_c:])
    return tuple(rng.permutation(np.concatenate(part)).astype(np.int64) for part in parts)


def kfold_indices(y: np.ndarray, k: int = 5, seed=0,
                  stratify: bool = True) -> list[tuple[np.ndarray, np.ndarray]]:
    """k ``(train_idx, val_idx)`` pairs whose validation folds are disjoint and cover
    every sample; fold sizes differ by at most one (per class, when stratified).

    Samples are shuffled within each class, the classes laid end to end and dealt to the
    folds in turn, so each fold gets ``⌊n_c/k⌋`` or ``⌈n_c/k⌉`` samples of class c.
    """
    n = len(y)
    k = check_int("k", k, 2)
    if k > n:
        raise ValueError(f"k must be at most the number of samples ({n}), got {k}")
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(group) for group in strata(y, stratify)])
    fold = np.empty(n, dtype=np.int64)
    fold[order] = np.arange(n) % k
    return [(rng.permutation(np.flatnonzero(fold != i)), rng.permutation(np.flatnonzero(fold == i)))
            for i in range(k)]
