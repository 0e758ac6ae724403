"""Where one training step's gradients come from: the model in this process, or workers.

The Solver's loop does not change with the hardware: every step it takes a batch of
training indices, asks its ``GradientSource`` for the loss and the gradients at the
model's current parameters, and applies one optimizer step to them. ``LocalSource`` is
the model in this process; ``dask_sync.DaskSource`` cuts the batch into parts, one per
worker holding the samples, and sums what the workers return.

Both draw per sample (``draws``): the dropout masks and augmentations of sample i in
epoch e are a function of (stream, e, i), so a step's numbers do not depend on how its
batch is cut.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ..data import Splits
from ..draws import SampleDraws, sample_keys, stream_of
from ..nn.model import Model

AUGMENT_STREAM = 3  # with the run's seed, names the stream of its augmentations


class WorkersLost(RuntimeError):
    """The workers that compute the steps are gone, and none came back in time: the
    model holds the state after the last completed step, from which the run resumes."""


class GradientSource(Protocol):
    """What the Solver asks of whoever computes its steps."""

    def gradients(self, idx: np.ndarray, epoch: int) -> tuple[float, dict[str, np.ndarray]]:
        """The loss of the training samples ``idx`` in ``epoch`` (their mean data loss
        plus the penalty) and its gradient, keyed like ``model.params``, at the model's
        current parameters; the model's buffers (batchnorm's running statistics) end as
        after a training forward on that batch."""

    def scores(self, split: str, idx: np.ndarray | None = None) -> np.ndarray:
        """The model's eval-mode scores on split ``train``, ``val`` or ``test`` (the rows
        ``idx`` of it, or all of them), in order."""


def augmented(X: np.ndarray, keys: np.ndarray, augment, stream: int) -> np.ndarray:
    """The training inputs X of the samples with ``keys``, changed by ``augment`` (if
    any) with each sample's own draws on ``stream``."""
    return X if augment is None else augment(X, SampleDraws(stream, keys))


def augment_stream(seed: int) -> int:
    """The stream of a run's augmentations, from its seed."""
    return stream_of(seed, AUGMENT_STREAM)


class LocalSource:
    """The model in this process computes each step on the whole batch."""

    def __init__(self, model: Model, splits: Splits, augment=None, seed: int = 0):
        self.model, self.splits, self.augment = model, splits, augment
        self.augment_stream = augment_stream(seed)

    def gradients(self, idx, epoch):
        keys = sample_keys(epoch, idx)
        X = augmented(self.splits.train.X[idx], keys, self.augment, self.augment_stream)
        return self.model.loss(X, self.splits.train.y[idx], keys=keys)

    def scores(self, split, idx=None):
        X = getattr(self.splits, split).X
        return self.model.scores(X if idx is None else X[idx])
