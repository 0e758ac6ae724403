"""Data-parallel training on Dask against plain ``dl train``: time per epoch of W1 and W2
on K = 1, 2 workers of a LocalCluster (one process and one BLAS thread each), and the
share of a step spent sending parameters and gradients.

    python -m benchmarks.distributed [--size full|tiny] [--repeats 3]

For each workload: one epoch of ``Solver.step`` calls (no end-of-epoch scoring) in this
process on all of BLAS's threads (``dl train``) and on one (what a worker has), then
through a ``DaskSource`` on K workers, the repetitions taking turns. The transfer of a
step is measured apart on the same cluster: the round trip of the parameters to a
worker (``ShardWorker.load``), counted twice (the gradients come back the same size),
less one empty round trip (``ping``), which the step pays once anyway.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

from dl_cli.config.validation import validate
from dl_cli.data.loading import Split, Splits
from dl_cli.distributed.cluster import connect
from dl_cli.distributed.dask_sync import DaskSource
from dl_cli.registry import OPTIMIZERS
from dl_cli.solver import Solver
from dl_cli.training import build_model

from . import harness, w1_mlp, w2_cnn

WORKLOADS = {"W1": w1_mlp, "W2": w2_cnn}
HEADER = ("workload", "trained by", "s/epoch", "÷ dl train", "ms/step", "transfer ms/step",
          "transfer share")


def splits_of(X: np.ndarray, y: np.ndarray) -> Splits:
    held_out = Split(X[:64], y[:64])
    return Splits(Split(X, y), held_out, held_out, task="classification",
                  num_classes=int(y.max()) + 1, info={})


def solver_for(module, X, y, cluster=None, workers: int = 1) -> Solver:
    """A Solver of the workload's model: in this process, or on ``workers`` of ``cluster``."""
    cfg = validate({"model": {"layers": module.LAYERS}, "optimizer": module.OPTIMIZER,
                    "train": {"batch_size": module.BATCH, "dtype": "float32"}})
    splits = splits_of(X, y)
    model = build_model(cfg, splits.in_shape)
    source = None if cluster is None else DaskSource(cluster.client, model, splits, cfg, workers)
    return Solver(model, splits, OPTIMIZERS.create(module.OPTIMIZER), cfg.train,
                  progress=False, source=source)


def epoch_seconds(solver: Solver) -> float:
    """One epoch of steps, as ``DLTrainer.epoch`` runs it; its wall time."""
    n, size, last = len(solver.splits.train.X), solver.batch_size, solver.iters_per_epoch - 1
    perm = solver.rng.permutation(n)
    started = time.perf_counter()
    with solver.computing():
        for it in range(solver.iters_per_epoch):
            solver.step(perm[it * size:n if it == last else (it + 1) * size])
    return time.perf_counter() - started


def transfer_seconds(source: DaskSource, repeats: int = 20) -> float:
    """Parameters out and gradients back, less the round trip a step pays anyway."""
    actor, state = source.actors[0], source.state()

    def median_call(call) -> float:
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            call().result()
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    return 2 * median_call(lambda: actor.load(state)) - median_call(actor.ping)


def measure(name: str, size: str, repeats: int, cluster) -> list[tuple[str, ...]]:
    module = WORKLOADS[name]
    workload = module.workload(size)
    X, y = harness.synthetic_classes(module.SAMPLES[size], module.IN_SHAPE, module.CLASSES)
    ways = {"dl train": (None, 1, None), "dl train --threads 1": (None, 1, 1),  # (cluster,
            "dask, 1 worker": (cluster, 1, None), "dask, 2 workers": (cluster, 2, None)}  # K, threads)
    solvers = {way: solver_for(module, X, y, c, k) for way, (c, k, _) in ways.items()}
    times: dict[str, list[float]] = {way: [] for way in ways}
    for repeat in range(repeats + 1):  # the first round warms up
        for way, (_, _, threads) in ways.items():
            with threadpool_limits(threads, user_api="blas"):
                seconds = epoch_seconds(solvers[way])
            if repeat:
                times[way].append(seconds)
    local = statistics.median(times["dl train"])
    rows = []
    for way, solver in solvers.items():
        seconds = statistics.median(times[way])
        step = seconds / solver.iters_per_epoch
        transfer = transfer_seconds(solver.source) if isinstance(solver.source, DaskSource) else None
        rows.append((f"{name} {workload.title}" if not rows else "", way, f"{seconds:.3g}",
                     f"{seconds / local:.2f}", f"{1000 * step:.3g}",
                     "" if transfer is None else f"{1000 * transfer:.3g}",
                     "" if transfer is None else f"{100 * transfer / step:.0f}%"))
    return rows


def main(argv: list[str] | None = None, cluster=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=("full", "tiny"), default="full")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    own = cluster is None
    cluster = connect(2, None, quiet=True) if own else cluster
    try:
        body = [row for name in WORKLOADS for row in measure(name, args.size, args.repeats, cluster)]
    finally:
        if own:
            cluster.close()
    table = harness.markdown(HEADER, body)
    print(table)
    return table


if __name__ == "__main__":
    main()
