"""Batchnorm over a batch cut into parts: the parts' statistics joined into the batch's.

Each worker computes its part of a batch apart, but a batchnorm layer normalizes by the
statistics of the whole batch. Computing them per part, as PyTorch's
DistributedDataParallel does by default, would make the numbers depend on how many
workers there are (and fail on a part of one sample). Here they are synchronized, as
``SyncBatchNorm`` does: each part posts its own and waits, the driver joins them and
answers every part with the batch's.

Forward, per feature: part k has ``m_k`` values, mean ``μ_k`` and ``M2_k = Σ(x − μ_k)²``.
The batch's (Chan, Golub & LeVeque, 1979):

    m = Σ m_k,   μ = Σ m_k·μ_k / m,   M2 = Σ M2_k + Σ m_k·(μ_k − μ)²

which, unlike ``Σx² − m·μ²``, loses no digits to cancellation.

Backward: ``Σ dout`` and ``Σ dout·x̂`` over the batch are the sums of the parts' sums.

A part computes on a thread of its own (``ShardWorker``); ``Exchange`` is what its
batchnorm layers call (``BatchNorm.sync``): it posts the part's statistics and blocks
until the driver answers with the batch's, or abandons the step (``Abandoned``).
"""

from __future__ import annotations

import queue

import numpy as np


class Abandoned(Exception):
    """The driver gave up the step (a part's worker was lost): the part stops computing."""


class Exchange:
    """A part's side of the exchange, posted on ``posted`` and answered on ``answers``."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        """Forget every message (those of a step given up)."""
        self.posted: queue.Queue = queue.Queue()
        self.answers: queue.Queue = queue.Queue()

    def ask(self, message: tuple):
        self.posted.put(message)
        answer = self.answers.get()
        if answer is None:
            raise Abandoned
        return answer

    def moments(self, count: int, mean: np.ndarray, m2: np.ndarray):
        """The batch's ``(m, μ, M2)`` from this part's, in the part's dtype."""
        m, batch_mean, batch_m2 = self.ask(("moments", count, mean, m2))
        return m, batch_mean.astype(mean.dtype), batch_m2.astype(m2.dtype)

    def sums(self, dbeta: np.ndarray, dgamma: np.ndarray):
        """The batch's ``Σ dout`` and ``Σ dout·x̂`` from this part's."""
        batch_dbeta, batch_dgamma = self.ask(("sums", dbeta, dgamma))
        return batch_dbeta.astype(dbeta.dtype), batch_dgamma.astype(dgamma.dtype)


def join(messages: list[tuple]) -> tuple:
    """The driver's answer to the parts' messages, all of one kind (in float64)."""
    kind = messages[0][0]
    if kind == "moments":
        counts = np.array([message[1] for message in messages], dtype=np.float64)
        means = np.array([message[2] for message in messages], dtype=np.float64)
        m = counts.sum()
        mean = (counts[:, None] * means).sum(axis=0) / m
        m2 = (sum(np.asarray(message[3], np.float64) for message in messages)
              + (counts[:, None] * (means - mean) ** 2).sum(axis=0))
        return int(m), mean, m2
    return tuple(sum(np.asarray(message[i], np.float64) for message in messages)  # "sums"
                 for i in (1, 2))
