"""What a dataset is: a registered class whose options are checked in ``__init__`` and
whose ``load(rng)`` returns the arrays as ``RawData``.

```python
dataset = DATASETS.create({"type": "spiral", "classes": 3})
raw = dataset.load(np.random.default_rng(0))     # RawData: X, y, task, classes, ...
```
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TASKS = ("classification", "regression")


class DataError(ValueError):
    """A data file is malformed; the message names the file and where it goes wrong."""


@dataclass
class RawData:
    """The arrays a dataset provides, before splitting and preprocessing.

    X: ``(N, D)`` features, ``(N, C, H, W)`` images or ``(N, T, D)`` sequences, floating
    point (float64; 8-bit image files give float32 to halve their memory), or ``(N, T)``
    int64 token sequences.
    y: ``(N,)`` int64 class labels in ``[0, classes)``, ``(N, T)`` int64 labels of every
    step, ``(N, H, W)`` int64 labels of every pixel, or float64 regression targets.
    X_test, y_test: an explicit test set, when the source comes with one.
    names: class names, when the source has them.
    vocab: for token sequences, the string each token stands for (token i is ``vocab[i]``).
    task_reason: why ``task: auto`` read the targets as regression, naming the first that
    is not a whole number (``t.csv: line 26: label 1.5``), for messages that need classes.
    """

    X: np.ndarray
    y: np.ndarray
    task: str = "classification"
    classes: int | None = None
    names: list[str] | None = None
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    vocab: list[str] | None = None
    task_reason: str | None = None

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {', '.join(TASKS)}, got {self.task!r}")
        if (self.X_test is None) != (self.y_test is None):
            raise ValueError("X_test and y_test come together")
        pairs = [(self.X, self.y)] + ([(self.X_test, self.y_test)] if self.X_test is not None else [])
        for X, y in pairs:
            if X.ndim < 2 or len(X) != len(y):
                raise ValueError(f"X {X.shape} and y {y.shape} must both have one row per sample")
        if self.task == "classification":
            if self.classes is None:
                raise ValueError("a classification dataset states its number of classes")
            for _, y in pairs:
                if y.ndim not in (1, 2, 3) or y.dtype.kind not in "iu":
                    raise ValueError(f"class labels must be an integer array (N,), one per "
                                     f"step (N, T) or one per pixel (N, H, W), got {y.dtype} "
                                     f"{y.shape}")
                if len(y) and (y.min() < 0 or y.max() >= self.classes):
                    raise ValueError(f"class labels must lie in [0, {self.classes}), "
                                     f"got {y.min()}..{y.max()}")


class Dataset:
    """A registered source of samples: options in ``__init__``, arrays from ``load``."""

    registered_name = "dataset"
    per_pixel = False  # labels every pixel of its images, (N, H, W): segmentation

    def load(self, rng: np.random.Generator) -> RawData:
        raise NotImplementedError

    def token_count(self) -> int | None:
        """How many distinct tokens its samples are made of, for a data set of token
        sequences (what a config may leave out: ``config.inferred``); None otherwise."""
        return None
