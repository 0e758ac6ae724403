"""What cutting the batch over the cores gives: `dl`'s epochs of W1 (MLP), W2 (CNN) and
W4 (ResNet) with BLAS's own threads against the batch cut into one part per thread, BLAS
on one (``dl_cli/threads.py``), in alternating, paired repetitions in one process.

    python -m benchmarks.batch_parts [--repeats 5] [--size full|tiny] [--workloads W1,W2,W4]

Prints each pair's two times and the median ratio (parts ÷ BLAS threads). `dl train`
cuts the batches of convolutional models only: the W1 row shows why not of MLPs.
"""

from __future__ import annotations

import argparse
import statistics
import time

from dl_cli.threads import blas_threads

from . import w1_mlp, w2_cnn, w4_resnet

WORKLOADS = {"W1": w1_mlp, "W2": w2_cnn, "W4": w4_resnet}


def epoch_time(trainer, parts: int | None) -> float:
    """One epoch of ``trainer`` with its Solver's batches in ``parts`` (None: BLAS's threads)."""
    trainer.solver.parts = parts
    started = time.perf_counter()
    trainer.epoch()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> dict[str, list[tuple[float, float]]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--size", choices=("full", "tiny"), default="full")
    parser.add_argument("--workloads", default="W1,W2")
    args = parser.parse_args(argv)
    count = blas_threads()
    pairs: dict[str, list[tuple[float, float]]] = {}
    print(f"{count} threads: BLAS's own, or the batch in {count} parts with BLAS on one")
    for name in args.workloads.split(","):
        trainer = WORKLOADS[name].workload(args.size).trainers["dl"]()
        epoch_time(trainer, None), epoch_time(trainer, count)  # warm-up
        pairs[name] = []
        for repeat in range(args.repeats):
            order = (None, count) if repeat % 2 == 0 else (count, None)
            times = {parts: epoch_time(trainer, parts) for parts in order}
            pairs[name].append((times[None], times[count]))
            print(f"{name} pair {repeat + 1}: BLAS threads {times[None]:.3f} s, "
                  f"parts {times[count]:.3f} s")
        ratios = [split / blas for blas, split in pairs[name]]
        print(f"{name}: parts ÷ BLAS threads, median {statistics.median(ratios):.3f} "
              f"(range {min(ratios):.3f}–{max(ratios):.3f})\n")
    return pairs


if __name__ == "__main__":
    main()
