"""Synchronous data-parallel training on Dask: map-reduce gradients.

The training split is cut into K shards, each sent once to a worker (``Client.scatter``)
where a ``ShardWorker`` actor holds it with a replica of the model. Every step the
driver cuts the global batch by the shards its samples live in and sends each worker
the current parameters (once per step) and its part: ``n_k`` of the batch's ``N``
samples. The worker returns ``(n_k/N)·L_k`` and its gradient (``shard_worker``); the
driver adds them up,

    L = Σ_k (n_k/N)·L_k,      ∇L = Σ_k (n_k/N)·∇L_k,

adds the penalty once and the Solver takes one optimizer step. The batch and its order
are the Solver's, dropout and augmentation are drawn per sample (``draws``) and
batchnorm joins the parts' statistics (``batchnorm_sync``), so the numbers are those of
one process up to the order of the sums: whatever K, a float64 run's losses agree to
about 1e-15.

Validation, test and the training subsample are scored in parallel too: each worker
scores its shard of the split, the driver puts the scores back in order.

A worker lost mid-step (its process killed, its machine gone) costs the step: the
driver abandons it, places the lost shard on another worker (a LocalCluster's nanny
restarts the process) and computes the step again from the same parameters, which
gives the same numbers. When no worker comes back within ``parallel.wait`` seconds,
``WorkersLost`` stops the run (the Solver saves ``last.npz`` first).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..checkpoints import copy_into
from ..data import Splits
from ..nn.model import Model
from . import batchnorm_sync
from .cluster import free_workers
from .shard_worker import Shard, ShardWorker, shards
from .source import WorkersLost, augment_stream


class DaskSource:
    """A ``GradientSource`` whose steps K Dask workers compute (see the module).

    ``cfg`` rebuilds the model on each worker; ``wait`` is how long a lost worker may
    take to be replaced; ``log`` hears of each loss and recovery.
    """

    def __init__(self, client, model: Model, splits: Splits, cfg, workers: int,
                 wait: float = 60.0, log: Callable[[str], None] | None = None):
        self.client, self.model, self.splits, self.cfg = client, model, splits, cfg
        self.workers, self.wait, self.log = workers, wait, log or (lambda message: None)
        self.stream = augment_stream(cfg.seed)
        self.split_shards = {name: shards(len(getattr(splits, name).X), workers)
                             for name in ("train", "val", "test")}
        n = len(splits.train.X)
        self.owner = np.empty(n, dtype=np.int64)  # which shard holds each training sample
        self.row = np.empty(n, dtype=np.int64)    # and where in it
        for k, indices in enumerate(self.split_shards["train"]):
            self.owner[indices], self.row[indices] = k, np.arange(len(indices))
        self.recoveries = 0
        self.addresses: list[str] = [""] * workers  # where each shard lives
        self.actors: list = [None] * workers
        self.data: list = [None] * workers  # the scattered shards' futures, held so they stay
        for k, address in enumerate(free_workers(client, workers, [], wait)):
            self.place(k, address)

    # -- where the shards live ------------------------------------------------------
    def shard(self, k: int) -> Shard:
        train = self.split_shards["train"][k]
        return Shard(self.splits.train.X[train], self.splits.train.y[train], train,
                     self.splits.val.X[self.split_shards["val"][k]],
                     self.splits.test.X[self.split_shards["test"][k]])

    def place(self, k: int, address: str) -> None:
        """Send shard ``k`` to the worker at ``address`` and start its actor there."""
        data = self.client.scatter(self.shard(k), workers=[address], hash=False)
        actor = self.client.submit(ShardWorker, self.cfg, self.splits.in_shape, data,
                                   self.stream, actor=True, workers=[address],
                                   allow_other_workers=False, pure=False).result()
        self.addresses[k], self.actors[k], self.data[k] = address, actor, data

    def reachable(self, k: int) -> bool:
        try:
            return self.actors[k].ping().result(timeout=self.wait)
        except Exception:  # whatever the comms raise, the actor is out of reach
            return False

    def recover(self, error: Exception) -> None:
        """After ``error`` in a step: abandon the step on the reachable workers, place
        the shards of the lost ones on workers that hold none; re-raise ``error`` when
        every worker is reachable (it was not a lost worker)."""
        lost = [k for k in range(self.workers) if not self.reachable(k)]
        if not lost:
            raise error
        for k in set(range(self.workers)) - set(lost):
            self.actors[k].abandon().result()
        for k in lost:
            self.addresses[k] = ""  # no longer holds anything
        self.log(f"lost the worker{'s' * (len(lost) > 1)} holding shard "
                 f"{', '.join(map(str, lost))} ({error}); the step is computed again")
        for k, address in zip(lost, free_workers(self.client, len(lost), self.addresses,
                                                  self.wait)):
            self.place(k, address)
        self.recoveries += 1

    def computed(self, compute: Callable[[], object]):
        """``compute()``, again after recovering from each worker lost meanwhile."""
        while True:
            try:
                return compute()
            except WorkersLost:
                raise
            except (OSError, RuntimeError, TimeoutError) as error:
                self.recover(error)

    # -- the GradientSource -----------------------------------------------------------
    def state(self) -> dict:
        return {"params": self.model.params, "buffers": self.model.buffers}

    def gradients(self, idx, epoch):
        parts = [(k, idx[self.owner[idx] == k]) for k in range(self.workers)]
        parts = [(k, part) for k, part in parts if len(part)]
        loss, grads, buffers = self.computed(lambda: self.step(parts, epoch, len(idx)))
        copy_into(self.model.buffers, buffers)
        return self.model.regularized(loss, grads)

    def step(self, parts: list[tuple[int, np.ndarray]], epoch: int, total: int):
        """One step's parts, each started on its worker, their batchnorm statistics
        joined until all are done; the summed loss and gradients, and the buffers."""
        state = self.state()
        messages = self.gather({k: self.actors[k].start(state, self.row[part], part, epoch,
                                                        len(part) / total)
                                for k, part in parts})
        while True:
            errors = [message[1] for message in messages.values() if message[0] == "error"]
            if errors:
                for k, message in messages.items():
                    if message[0] != "error":
                        self.actors[k].abandon().result()
                raise errors[0]
            if all(message[0] == "done" for message in messages.values()):
                break
            joined = self.join(list(messages.values()))
            messages = self.gather({k: self.actors[k].answer(joined) for k in messages})
        done = [messages[k] for k, _ in parts]
        grads = {name: sum(message[2][name] for message in done) for name in done[0][2]}
        return sum(message[1] for message in done), grads, done[0][3]

    def join(self, messages: list[tuple]) -> tuple:
        """The answer to the parts waiting at a batchnorm layer: the batch's statistics."""
        return batchnorm_sync.join(messages)

    @staticmethod
    def gather(calls: dict) -> dict:
        """The results of actor calls, waiting for each (so none is left running)."""
        results, failure = {}, None
        for k, call in calls.items():
            try:
                results[k] = call.result()
            except Exception as error:  # a lost worker, most likely: see recover
                failure = failure or error
        if failure is not None:
            raise failure
        return results

    def scores(self, split, idx=None):
        def score():
            state = self.state()
            if idx is None:
                results = self.gather({k: self.actors[k].scores(state, split, None)
                                       for k in range(self.workers)})
                return np.concatenate([results[k] for k in range(self.workers)])
            owners = self.owner[idx]
            calls = {k: self.actors[k].scores(state, split, self.row[idx[owners == k]])
                     for k in range(self.workers) if np.any(owners == k)}
            results = self.gather(calls)
            out = np.empty((len(idx), *self.model.out_shape), dtype=self.model.dtype)
            for k, part_scores in results.items():
                out[owners == k] = part_scores
            return out

        return self.computed(score)
