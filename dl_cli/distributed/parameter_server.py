"""Asynchronous SGD with a parameter server: Downpour (Dean et al., 2012), as the notes
describe Google's scheme.

The parameters live on a server, here a Dask actor (``ParameterServer``). Each worker,
on its own and without waiting for the others (``work``):

    pull the parameters (version v) → compute the gradient of its next batch → push it

and the server applies each gradient as it arrives, with the run's optimizer. By then
other workers may have pushed theirs: the gradient was computed on parameters
``staleness = (updates applied since v)`` updates old. With K workers the staleness is
about K − 1; the notes' point is that SGD still converges, if more slowly per gradient.

Not deterministic by nature: which worker's gradient arrives first depends on timing.
So the server records every update it applies (worker, its batch number, staleness,
loss) and each worker's batches are a pure function of (seed, worker, batch number)
(``worker_batch``): ``replay`` computes the same updates in the same order, in one
process, and arrives at the same parameters.

Epochs: the driver opens the server for the ``until`` updates of an epoch (the number
of batches of a synchronous epoch, so that the runs compare at equal numbers of
gradients); a gradient pushed after that is refused (the worker computes that batch
again on fresher parameters), the workers wait while the driver scores the epoch.
"""

from __future__ import annotations

import math
import time

import numpy as np

from ..checkpoints import copy_into
from ..draws import sample_keys
from ..optim import clip_grad_norm, clip_grad_value, global_norm
from .shard_worker import Shard
from .source import augmented

WAIT = 0.01  # seconds a worker sleeps while the server takes no updates


def batches_per_pass(size: int, batch_size: int) -> int:
    """Batches in one pass over ``size`` samples; a lone last sample joins the batch
    before it, as in the Solver (batchnorm needs two)."""
    if size % batch_size == 1 and size > batch_size:
        return size // batch_size
    return math.ceil(size / batch_size)


def worker_batch(seed: int, worker: int, size: int, batch_size: int,
                 number: int) -> tuple[np.ndarray, int]:
    """Rows of a worker's shard (of ``size`` samples) in its batch ``number``, and the
    pass over the shard it belongs to: each pass a permutation of its own."""
    per_pass = batches_per_pass(size, batch_size)
    passes, i = divmod(number, per_pass)
    order = np.random.default_rng([seed, 5, worker, passes]).permutation(size)
    end = size if i == per_pass - 1 else (i + 1) * batch_size
    return order[i * batch_size:end], passes


class ParameterServer:
    """The parameters, the optimizer that updates them, and the record of the updates.

    ``version`` counts the updates applied; the server takes them while ``version <
    until``. ``batches[k]`` is worker k's next batch number: a push of another batch
    (one computed before a refusal) is refused too, so each batch is applied once.
    """

    def __init__(self, params: dict, buffers: dict, optimizer, decay: set,
                 clip_value: float | None, clip_norm: float | None, batches: list[int],
                 version: int):
        self.params, self.buffers, self.optimizer = params, buffers, optimizer
        self.decay, self.clip_value, self.clip_norm = decay, clip_value, clip_norm
        self.batches, self.version, self.until = list(batches), version, version
        self.applied: list[dict] = []  # updates since the last ``drain``
        self.failure: str | None = None
        self.stopped = False

    def pull(self, worker: int):
        """``None`` once stopped, ``"wait"`` while closed, else copies of the parameters
        and buffers with their version and the worker's next batch number."""
        if self.stopped:
            return None
        if self.version >= self.until:
            return "wait"
        return (self.version, {k: v.copy() for k, v in self.params.items()},
                {k: v.copy() for k, v in self.buffers.items()}, self.batches[worker])

    def push(self, worker: int, batch: int, pulled: int, loss: float, grads: dict,
             buffers: dict) -> bool:
        """Apply a worker's gradient of ``batch``, computed on version ``pulled``;
        whether it was taken. A non-finite loss or gradient closes the server."""
        if self.version >= self.until or batch != self.batches[worker]:
            return False
        norm = global_norm(grads)
        if not (math.isfinite(loss) and math.isfinite(norm)):
            what, value = ("loss", loss) if not math.isfinite(loss) else ("gradient norm", norm)
            self.failure = f"{what} became {value} at update {self.version + 1}"
            self.until = self.version
            return False
        if self.clip_value is not None:
            clip_grad_value(grads, self.clip_value)
        if self.clip_norm is not None:
            clip_grad_norm(grads, self.clip_norm)
        self.optimizer.step(self.params, grads, self.decay)
        copy_into(self.buffers, buffers)  # the running statistics of its batch, last in wins
        self.version += 1
        self.batches[worker] += 1
        self.applied.append({"step": self.version, "worker": worker, "batch": batch,
                             "staleness": self.version - 1 - pulled, "loss": float(loss)})
        return True

    def open(self, until: int, lr: float) -> None:
        """Take updates until ``until`` have been applied, at the rate ``lr``."""
        self.until, self.optimizer.lr = until, lr

    def progress(self) -> tuple[int, str | None]:
        return self.version, self.failure

    def drain(self) -> list[dict]:
        """The updates applied since the last call, in order."""
        applied, self.applied = self.applied, []
        return applied

    def state(self) -> tuple[dict, dict, dict, list[int]]:
        """Parameters, buffers, optimizer state and each worker's next batch number."""
        return ({k: v.copy() for k, v in self.params.items()},
                {k: v.copy() for k, v in self.buffers.items()},
                self.optimizer.state_dict(), list(self.batches))

    def stop(self) -> None:
        self.stopped = True


def work(server, worker: int, shard: Shard, cfg, in_shape: tuple[int, ...],
         stream: int) -> int:
    """A worker's loop (a long-running Dask task): pull, compute the gradient of its
    next batch, push; until the server stops. Returns the number of gradients pushed."""
    from ..data import build_augment
    from ..components import build_model

    model = build_model(cfg, in_shape)
    augment = build_augment(cfg.data.augment, in_shape, shard.train_X.dtype)
    pushed = 0
    while True:
        order = server.pull(worker).result()
        if order is None:
            return pushed
        if order == "wait":
            time.sleep(WAIT)
            continue
        version, params, buffers, batch = order
        copy_into(model.params, params)
        copy_into(model.buffers, buffers)
        loss, grads = gradient(model, augment, shard, cfg, worker, batch, stream)
        server.push(worker, batch, version, loss, grads, model.buffers).result()
        pushed += 1


def gradient(model, augment, shard: Shard, cfg, worker: int, batch: int, stream: int):
    """The loss and gradient of a worker's ``batch`` at the model's parameters."""
    batch_size = len(shard.train_X) if cfg.train.batch_size == "full" else cfg.train.batch_size
    rows, passes = worker_batch(cfg.seed, worker, len(shard.train_X), batch_size, batch)
    keys = sample_keys(passes, shard.train_indices[rows])
    X = augmented(shard.train_X[rows], keys, augment, stream)
    return model.loss(X, shard.train_y[rows], keys=keys)
