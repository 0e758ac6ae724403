"""A worker's side of data-parallel training: a Dask actor that holds its shard of the
data and a replica of the model, and computes its part of each step.

```python
actor = client.submit(ShardWorker, cfg, in_shape, shard_future, stream,
                      actor=True, workers=[address]).result()
message = actor.start(state, rows, indices, epoch, weight).result()  # ("moments", ...) or ("done", ...)
while message[0] != "done":
    message = actor.answer(batchnorm_sync.join(all_parts_messages)).result()
```

The part's loss is scaled by its share of the batch, ``weight = n_k / N``: the batch's
mean loss is ``L = Σ_k (n_k/N)·L_k``, so the part returns ``(n_k/N)·L_k`` and the
gradient of that, and the driver adds the parts' returns. (With synchronized batchnorm,
a part's outputs depend on the other parts' inputs: the gradient of ``L`` with respect
to them is what each part must backpropagate, and ``(n_k/N)·∂L_k`` is its share.)
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from ..checkpoints import copy_into
from ..draws import sample_keys
from ..nn.normalization import BatchNorm
from .batchnorm_sync import Abandoned, Exchange
from .source import augmented


def shards(size: int, parts: int) -> list[np.ndarray]:
    """Indices ``0 .. size-1`` cut into ``parts`` runs of nearly equal length."""
    return np.array_split(np.arange(size), parts)


@dataclass
class Shard:
    """One worker's samples: rows of the training split with their indices in it (which
    name their draws), and rows of the validation and test splits."""

    train_X: np.ndarray
    train_y: np.ndarray
    train_indices: np.ndarray
    val_X: np.ndarray
    test_X: np.ndarray


class ShardWorker:
    """Lives on one Dask worker: its ``Shard``, a replica of the config's model whose
    batchnorm layers synchronize their statistics with the other parts', and the thread
    computing the current step's part (which waits at each batchnorm layer)."""

    def __init__(self, cfg, in_shape: tuple[int, ...], shard: Shard, augment_stream: int):
        from ..data import build_augment
        from ..components import build_model

        self.model = build_model(cfg, in_shape)
        self.augment = build_augment(cfg.data.augment, in_shape, shard.train_X.dtype)
        self.augment_stream = augment_stream
        self.shard = shard
        self.exchange = Exchange()
        for _, layer in self.model.chain.walk(""):
            if isinstance(layer, BatchNorm):
                layer.sync = self.exchange
        self.computing: threading.Thread | None = None

    def load(self, state: dict) -> None:
        copy_into(self.model.params, state["params"])
        copy_into(self.model.buffers, state["buffers"])

    def start(self, state: dict, rows: np.ndarray, indices: np.ndarray, epoch: int,
              weight: float) -> tuple:
        """Start computing the part ``rows`` of the shard (training samples ``indices``)
        at the parameters and buffers of ``state``; the part's first message: the
        statistics of its first batchnorm layer, or ``("done", loss, grads, buffers)``,
        or ``("error", exception)``."""
        self.abandon()
        self.load(state)
        keys = sample_keys(epoch, indices)
        X = augmented(self.shard.train_X[rows], keys, self.augment, self.augment_stream)
        y = self.shard.train_y[rows]
        self.computing = threading.Thread(target=self.compute, args=(X, y, keys, weight),
                                          daemon=True, name="dl-part")
        self.computing.start()
        return self.exchange.posted.get()

    def answer(self, joined: tuple) -> tuple:
        """Hand the batch's statistics to the waiting part; its next message."""
        self.exchange.answers.put(joined)
        return self.exchange.posted.get()

    def compute(self, X: np.ndarray, y: np.ndarray, keys: np.ndarray, weight: float) -> None:
        try:
            scores = self.model.forward(X, True, keys)
            loss, dscores = self.model.loss_fn(scores, y)
            grads = self.model.backward(dscores * weight)
            self.exchange.posted.put(("done", weight * loss, grads, self.model.buffers))
        except Abandoned:
            return
        except Exception as error:  # the driver raises it (a batch batchnorm refuses, ...)
            self.exchange.posted.put(("error", error))

    def abandon(self) -> None:
        """Stop the part of a step given up (waiting for an answer, or just done) and
        forget its messages."""
        if self.computing is not None:
            self.exchange.answers.put(None)
            self.computing.join()
        self.computing = None
        self.exchange.reset()

    def scores(self, state: dict, split: str, rows: np.ndarray | None) -> np.ndarray:
        """Eval-mode scores of the shard's ``split`` samples (its ``rows``, or all)."""
        self.load(state)
        X = getattr(self.shard, f"{split}_X")
        return self.model.scores(X if rows is None else X[rows])

    def ping(self) -> bool:
        return True
