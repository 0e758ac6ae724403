"""From a data config to the three splits a run trains, validates and tests on.

dataset → shuffle and split (seeded; stratified by class) → cast to the run's dtype →
preprocessing fitted on the training split, applied to all three → the targets: the
data set's, or (``data.target: input``, an autoencoder) the preprocessed input itself.
A step that does not fit the data raises ``DataError`` naming ``data.preprocess.i``;
what trains but should be known (a class the split left out of training) comes back in
``Splits.warnings``. The fitted steps come back in ``Splits.steps``; given steps fitted
before (a run's, restored from its checkpoint), ``load`` applies them and fits nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..registry import DATASETS, PREPROCESSORS, Registry
from ..schema import DataConfig, SplitConfig
from .base import DataError, RawData
from .split import split_indices


@dataclass
class Split:
    """One split: inputs X ``(N, *in_shape)`` and targets y ``(N,)`` (or ``(N, T)``)."""

    X: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.X)


@dataclass
class Splits:
    """Train, validation and test splits with what the model and the run summary need.

    X is in the run's dtype (token sequences stay int64); y is int64 class labels
    (classification) or targets in the run's dtype (regression). ``info`` is JSON-ready:
    dataset, sizes, class names, the vocabulary of token sequences. ``warnings`` are
    messages about data that trains but limits the run, for the caller to show once.
    ``steps`` are the fitted preprocessing steps, in order, and ``raw_shape`` the shape
    of one sample before them (``(64,)`` for digits before a PCA to 20 components).
    """

    train: Split
    val: Split
    test: Split
    task: str
    num_classes: int | None
    info: dict
    warnings: list[str] = field(default_factory=list)
    steps: list = field(default_factory=list)
    raw_shape: tuple[int, ...] = ()
    task_reason: str | None = None  # RawData.task_reason

    @property
    def in_shape(self) -> tuple[int, ...]:
        """Shape of one sample, without the batch axis: ``(64,)`` or ``(1, 8, 8)``."""
        return tuple(int(d) for d in self.train.X.shape[1:])


def split_raw(raw: RawData, data: DataConfig, seed) -> tuple[tuple, tuple, tuple]:
    """``((X, y), (X, y), (X, y))`` for train, val and test; a given test set is kept and
    the validation split comes out of the training data."""
    fractions = data.split
    if raw.X_test is None:
        train, val, test = split_indices(raw.y, fractions.val, fractions.test, seed, fractions.stratify)
        return (raw.X[train], raw.y[train]), (raw.X[val], raw.y[val]), (raw.X[test], raw.y[test])
    train, val, _ = split_indices(raw.y, fractions.val, 0.0, seed, fractions.stratify)
    return (raw.X[train], raw.y[train]), (raw.X[val], raw.y[val]), (raw.X_test, raw.y_test)


def check_cast(raw: RawData, splits: list[Split], dtype: np.dtype) -> None:
    """Finite values stay finite in the run's dtype: a float64 value beyond float32's
    largest (3.4e38) would become infinity and pass for a diverged run."""
    wider = raw.X.dtype.itemsize > dtype.itemsize
    narrowed = {"X": raw.X.dtype.kind == "f" and wider,
                "y": raw.task != "classification" and raw.y.dtype.itemsize > dtype.itemsize}
    for name in (name for name, cast in narrowed.items() if cast):
        if not all(np.isfinite(getattr(split, name)).all() for split in splits):
            raise DataError(f"data: {name} holds values beyond {dtype}'s largest "
                            f"({np.finfo(dtype).max:.3g}); scale the data, or train in "
                            f"float64 (train.dtype: float64)")


def check_classes_to_learn(raw: RawData, train: Split) -> None:
    """A classifier learns to tell classes apart: its training split must hold two."""
    if raw.task != "classification":
        return
    seen = np.unique(train.y)
    if len(seen) == 1:
        raise DataError(f"data: the training split holds one class only ({seen[0]}); a "
                        f"classifier needs samples of at least two")


def unlearned_classes(raw: RawData, fractions: SplitConfig, splits: list[Split],
                      most: int = 10) -> str | None:
    """The classes of validation and test samples that the training split has no sample
    of, with the cause (the split, or the data set's own test set) and the fix; None
    when training has every class they hold.

    The model never sees such a class as a target, so it never predicts it: those
    samples are always misclassified and accuracy cannot reach 1. Leaving a class out
    can be meant, so this is a warning, not an error. Labels of one class per sample
    only: per-step labels (token sequences) have the whole vocabulary as classes, and a
    rare token seen only outside training is ordinary there, which no split setting fixes.
    """
    train, val, test = splits
    if raw.task != "classification" or train.y.ndim != 1:
        return None
    held_out = np.concatenate([val.y, test.y])
    missing = np.setdiff1d(held_out, train.y)
    if missing.size == 0:
        return None
    names = raw.names or []

    def named(classes: np.ndarray) -> str:
        shown = [f"{c} ({names[c]})" if c < len(names) and names[c] != str(c) else str(c)
                 for c in classes[:most].tolist()]
        more = f" and {classes.size - most} more" if classes.size > most else ""
        return ", ".join(shown) + more

    samples = int(np.isin(held_out, missing).sum())
    said = [f"data: {missing.size} of the {raw.classes} classes have no sample in the training "
            f"split: {named(missing)}; validation and test hold {samples} samples of them, "
            f"which the model always misclassifies, as it never learns to predict a class it "
            f"has not seen"]
    test_only = np.setdiff1d(missing, raw.y)  # in the data set's own test set, not in raw.y
    if test_only.size:
        said.append(f"Only the data set's own test set has samples of class "
                    f"{named(test_only)}, which no split setting changes")
    if test_only.size < missing.size:
        if raw.X_test is None:
            split = f"data.split: val {fractions.val}, test {fractions.test}"
            lower = "data.split.val or data.split.test"
        else:  # only the validation split comes out of raw.y
            split = f"data.split: val {fractions.val}, the data set's own test set"
            lower = "data.split.val"
        these = "the others" if test_only.size else "these classes"
        if fractions.stratify:
            said.append(f"The stratified split ({split}) left {these}, too small to be in "
                        f"every split, out of training; to train on every class, lower "
                        f"{lower}, or add samples of them")
        else:
            said.append(f"The split ({split}, stratify: false) left {these} out of training; "
                        f"to train on every class, set data.split.stratify: true, or lower "
                        f"{lower}")
    return ". ".join(said)


def apply_steps(splits: list[Split], steps: list, fit: bool = True) -> None:
    """Fit each step on the first split (the training split), unless ``fit`` is False
    (steps fitted before), and apply it to every split, in order."""
    for i, step in enumerate(steps):
        try:
            if fit:
                step.fit(splits[0].X)
            for split in splits:
                split.X = step.transform(split.X)
        except ValueError as error:  # a fitted step's statistics may not fit other data
            raise DataError(f"data.preprocess.{i}: {error}") from None


def load(data: DataConfig, seed: int = 0, dtype="float32", fitted: list | None = None,
         components=None) -> Splits:
    """Load the configured dataset and return its preprocessed splits.

    ``seed`` fixes the synthetic data and the split (two independent streams).
    ``fitted``: the steps of ``data.preprocess`` fitted before, applied as they are.
    ``components``: what validation built (``Config.components``), taken rather than
    built again.
    """
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise ValueError(f"dtype must be a floating-point type, got {dtype}")

    def built(path: str, spec, registry: Registry):
        return components.take(path, spec, registry) if components else registry.create(spec)

    name, options = Registry.split_spec(data.dataset)
    dataset = built("data.dataset", data.dataset, DATASETS)
    steps = fitted if fitted is not None else [
        built(f"data.preprocess.{i}", spec, PREPROCESSORS) for i, spec in enumerate(data.preprocess)]
    data_seed, split_seed = np.random.SeedSequence(seed).spawn(2)

    raw = dataset.load(np.random.default_rng(data_seed))
    target_dtype = np.int64 if raw.task == "classification" else dtype
    input_dtype = np.int64 if raw.X.dtype.kind in "iu" else dtype
    with np.errstate(over="ignore"):  # check_cast names what overflows
        splits = [Split(X.astype(input_dtype, copy=False), y.astype(target_dtype, copy=False))
                  for X, y in split_raw(raw, data, split_seed)]
    check_cast(raw, splits, dtype)
    reconstruct = data.target == "input"
    if reconstruct and input_dtype == np.int64:
        raise DataError("data.target: input needs real-valued inputs to reconstruct, but "
                        "this data set's inputs are token ids")
    if not reconstruct:
        check_classes_to_learn(raw, splits[0])
    unlearned = None if reconstruct else unlearned_classes(raw, data.split, splits)
    raw_shape = tuple(int(d) for d in splits[0].X.shape[1:])
    apply_steps(splits, steps, fit=fitted is None)
    task, classes, names = raw.task, raw.classes, raw.names
    if reconstruct:  # the same array: augmentation makes new inputs and leaves it be
        for split in splits:
            split.y = split.X
        task, classes, names = "regression", None, None

    train, val, test = splits
    info = {
        "dataset": name,
        "options": options,
        "task": task,
        "target": data.target,
        "num_classes": classes,
        "class_names": names,
        "vocab": raw.vocab,
        "sizes": {"train": len(train), "val": len(val), "test": len(test)},
        "test_set": "split" if raw.X_test is None else "given",
        "in_shape": list(train.X.shape[1:]),
        "preprocess": [Registry.split_spec(spec)[0] for spec in data.preprocess],
    }
    return Splits(train, val, test, task=task, num_classes=classes, info=info,
                  warnings=[unlearned] if unlearned else [], steps=steps, raw_shape=raw_shape,
                  task_reason=None if reconstruct else raw.task_reason)
