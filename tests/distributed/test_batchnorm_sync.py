"""Batchnorm over a batch cut into parts: the parts' statistics joined into the batch's,
against the per-part statistics of PyTorch DDP's default (no cluster: the parts'
``ShardWorker``s run in this process)."""

import numpy as np
import pytest

from dl_cli import training
from dl_cli.config import load_config
from dl_cli.distributed import batchnorm_sync
from dl_cli.distributed.shard_worker import Shard, ShardWorker, shards
from dl_cli.draws import sample_keys
from dl_cli.nn.normalization import BatchNorm


def test_joined_moments_are_the_whole_batch_moments():
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(50, 4))
    messages = []
    for part in (x[:7], x[7:8], x[8:]):
        mean = part.mean(axis=0)
        messages.append(("moments", len(part), mean, ((part - mean) ** 2).sum(axis=0)))
    m, mean, m2 = batchnorm_sync.join(messages)
    assert m == 50
    np.testing.assert_allclose(mean, x.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(m2 / m, x.var(axis=0), rtol=1e-13)
    sums = batchnorm_sync.join([("sums", x[:7].sum(0), x[:7].sum(0)), ("sums", x[7:].sum(0), x[7:].sum(0))])
    np.testing.assert_allclose(sums[0], x.sum(axis=0), rtol=1e-14)


def part_workers(cfg, parts):
    """One ShardWorker per part of the training split, in this process."""
    train = parts.splits.train
    workers = []
    for indices in shards(len(train.X), 2):
        shard = Shard(train.X[indices], train.y[indices], indices, train.X[:0], train.X[:0])
        workers.append(ShardWorker(cfg, parts.splits.in_shape, shard, augment_stream=0))
    return workers


def step(workers, model, idx, owner_rows):
    """One step's parts computed as the driver computes them: statistics joined until
    every part is done; the summed loss and gradients."""
    state = {"params": model.params, "buffers": model.buffers}
    messages = [worker.start(state, rows, part, 0, len(part) / len(idx))
                for worker, (part, rows) in zip(workers, owner_rows)]
    while any(message[0] != "done" for message in messages):
        joined = batchnorm_sync.join(messages)
        messages = [worker.answer(joined) for worker in workers]
    grads = {name: sum(message[2][name] for message in messages) for name in messages[0][2]}
    return sum(message[1] for message in messages), grads


def test_synchronized_statistics_give_the_whole_batch_step_and_per_part_ones_do_not(digits_mlp):
    cfg = load_config(digits_mlp, ["train.dtype=float64"])
    parts = training.assemble(cfg)
    model, train = parts.model, parts.splits.train
    workers = part_workers(cfg, parts)
    idx = np.random.default_rng(0).permutation(len(train.X))[:64]
    cut = len(train.X) // 2 + 1  # shard 0 holds samples 0 .. cut - 1
    owner_rows = [(idx[idx < cut], idx[idx < cut]), (idx[idx >= cut], idx[idx >= cut] - cut)]
    assert min(len(part) for part, _ in owner_rows) > 20
    scores = model.forward(train.X[idx], True, sample_keys(0, idx))  # the whole batch
    data_loss, dscores = model.loss_fn(scores, train.y[idx])
    whole_grads = {k: v.copy() for k, v in model.backward(dscores).items()}

    loss, grads = step(workers, model, idx, owner_rows)
    assert loss == pytest.approx(data_loss, rel=1e-13)
    for name in grads:
        np.testing.assert_allclose(grads[name], whole_grads[name], rtol=1e-9, atol=1e-13)

    for worker in workers:  # per-part statistics, as DDP computes them by default
        for _, layer in worker.model.chain.walk(""):
            if isinstance(layer, BatchNorm):
                layer.sync = None
    per_part_loss, per_part_grads = step(workers, model, idx, owner_rows)
    assert abs(per_part_loss - data_loss) / data_loss > 1e-3  # about 2e-3 here
    W = "0.W"  # the weights before batchnorm: their gradient is about 20 % off (norm)
    assert np.linalg.norm(per_part_grads[W] - whole_grads[W]) > 0.05 * np.linalg.norm(whole_grads[W])
