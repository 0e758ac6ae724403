"""What ``train.diagnostics: true`` costs: configs/digits_mlp.yaml trained with and
without per-layer statistics, in paired, alternating repetitions.

    python -m benchmarks.diagnostics_overhead [--repeats 7] [--epochs 15]

Prints each repetition's two times and the median ratio (with / without). Early
stopping is off so both train the same number of epochs; no run folder is written.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from dl_cli import training
from dl_cli.config import load_config

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "digits_mlp.yaml"


def time_training(diagnostics: bool, epochs: int) -> float:
    cfg = load_config(CONFIG, [f"train.diagnostics={str(diagnostics).lower()}",
                               "train.early_stopping=null", f"train.epochs={epochs}"])
    parts = training.assemble(cfg)
    solver = training.make_solver(cfg, parts, None, progress=False)
    started = time.perf_counter()
    solver.train()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=15)
    args = parser.parse_args()
    time_training(False, 1)  # warm-up: imports, data file cache
    ratios = []
    for repeat in range(args.repeats):
        order = (False, True) if repeat % 2 == 0 else (True, False)
        times = {flag: time_training(flag, args.epochs) for flag in order}
        ratios.append(times[True] / times[False])
        print(f"repeat {repeat + 1}: without {times[False]:.3f} s, with {times[True]:.3f} s, "
              f"ratio {ratios[-1]:.3f}")
    print(f"median ratio with / without diagnostics: {statistics.median(ratios):.3f} "
          f"(range {min(ratios):.3f}–{max(ratios):.3f}) over {args.repeats} pairs")


if __name__ == "__main__":
    main()
