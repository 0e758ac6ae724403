"""An asynchronous run, computed again in one process from its record.

An async run's ``metrics.jsonl`` lists its updates in the order the server applied
them: which worker, which of its batches, how stale. A worker's batch is a function of
(seed, worker, batch number) and a gradient a function of the parameters it was computed
on, version ``step − 1 − staleness``. So replaying the updates in order, each computed on
the version it names, gives the run's parameters again: what timing decided once is
now written down.

```python
params, buffers = replay(run_dir)      # the parameters after the last completed epoch
```
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..checkpoints import copy_into
from ..config import load_saved_config
from ..data import build_augment
from ..layout import RunLayout
from ..optim import clip_grad_norm, clip_grad_value
from ..runs import Run
from ..components import build_model
from ..training import assemble
from .parameter_server import gradient
from .shard_worker import Shard, shards
from .source import augment_stream


def replay(run_dir: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The parameters and buffers of the async run in ``run_dir`` after the updates of
    its completed epochs, each recomputed on the parameters it was computed on then."""
    cfg = load_saved_config(RunLayout(run_dir).config)
    parts = assemble(cfg)
    model, optimizer, train = parts.model, parts.optimizer, parts.splits.train
    replica = build_model(cfg, parts.splits.in_shape)  # a worker's copy, at an older version
    augment = build_augment(cfg.data.augment, parts.splits.in_shape, train.X.dtype)
    worker_shards = []
    for indices in shards(len(train.X), cfg.parallel.workers):
        worker_shards.append(Shard(train.X[indices], train.y[indices], indices, train.X[:0],
                                   train.X[:0]))
    lines = Run(run_dir).read_metrics()
    rates = {line["epoch"]: line["lr"] for line in lines if "lr" in line}
    updates = [line for line in lines if "staleness" in line and line["epoch"] in rates]
    window = max((update["staleness"] for update in updates), default=0) + 1
    versions = {0: copies(model)}  # the parameters and buffers after each recent update
    for update in updates:
        params, buffers = versions[update["step"] - 1 - update["staleness"]]
        copy_into(replica.params, params)
        copy_into(replica.buffers, buffers)
        _, grads = gradient(replica, augment, worker_shards[update["worker"]], cfg,
                            update["worker"], update["batch"], augment_stream(cfg.seed))
        if cfg.train.clip_grad_value is not None:
            clip_grad_value(grads, cfg.train.clip_grad_value)
        if cfg.train.clip_grad_norm is not None:
            clip_grad_norm(grads, cfg.train.clip_grad_norm)
        optimizer.lr = rates[update["epoch"]]
        optimizer.step(model.params, grads, model.decay)
        copy_into(model.buffers, replica.buffers)
        versions[update["step"]] = copies(model)
        versions.pop(update["step"] - window, None)
    return model.params, model.buffers


def copies(model) -> tuple[dict, dict]:
    return ({k: v.copy() for k, v in model.params.items()},
            {k: v.copy() for k, v in model.buffers.items()})
