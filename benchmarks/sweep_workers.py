"""How much a second worker speeds up a sweep: ``dl sweep`` with ``--workers 1`` and
``--workers 2`` on the same spec, in alternating repetitions, each in a fresh process as
a user would run it.

    python -m benchmarks.sweep_workers [--repeats 5] [--trials 12] [--spec SPEC]
                                       [--long [--long-epochs 350]] [key=value ...]

The default is the 12-trial random sweep over ``configs/digits_mlp.yaml``
(``configs/sweep_digits.yaml``), whose trials take well under a second, so that the
fixed start and end of a sweep weigh a lot. ``--long`` then runs the same sweep again
with trials of ``--long-epochs`` epochs and no early stopping (2 s or more each on the
machine of ``benchmarks/README.md``), and reports both trial lengths' ratios. For each run it prints the wall time and where it went,
read from the sweep's ledger: ``start`` (the driver's own start-up, until the first
trial is submitted), ``trials`` (the sum of the trials' own times, as results.csv
reports them), ``first wait`` (from submitting the first trial to its result, beyond its
own time: starting a worker process), and ``end`` (from the last result to the exit).
Then the median wall times and their ratio, and whether both worker counts gave the
same metric for every trial (they must: each trial runs on the spec's ``threads``).
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SPEC = Path(__file__).resolve().parents[1] / "configs" / "sweep_digits.yaml"


@dataclass
class SweepTiming:
    workers: int
    wall: float
    start: float
    trials: float
    first_wait: float
    end: float
    metrics: dict[int, str]
    shortest: float = 0.0  # the shortest trial's own time


def run_sweep(spec: Path, workers: int, trials: int, overrides: list[str],
              folder: Path) -> SweepTiming:
    """One ``dl sweep`` in a fresh process, timed from outside, decomposed by its ledger."""
    command = [sys.executable, "-m", "dl_cli", "sweep", str(spec), f"sweep.trials={trials}",
               *overrides, "--workers", str(workers), "--sweep-dir", str(folder)]
    started = time.time()
    done = subprocess.run(command, capture_output=True, text=True)
    ended = time.time()
    if done.returncode != 0:
        raise SystemExit(f"dl sweep failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    events = [json.loads(line) for line in (folder / "ledger.jsonl").read_text().splitlines()]
    starts = {e["trial"]: e["time"] for e in events if e["event"] == "start"}
    results = [e for e in events if e["event"] == "result"]
    first = min(results, key=lambda e: e["time"])
    with open(folder / "results.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    metric = [name for name in rows[0] if "/" in name][-1]  # e.g. val/acc
    return SweepTiming(
        workers=workers, wall=ended - started, start=min(starts.values()) - started,
        trials=sum(e["time_s"] for e in results),
        first_wait=first["time"] - starts[first["trial"]] - first["time_s"],
        end=ended - max(e["time"] for e in results),
        metrics={int(r["trial"]): r[metric] for r in rows},
        shortest=min(e["time_s"] for e in results))


def compare(args, overrides: list[str], label: str) -> dict[int, list[SweepTiming]]:
    """``args.repeats`` alternating pairs of sweeps on 1 and 2 workers, a table row per
    sweep, then the median walls and their ratio."""
    timings: dict[int, list[SweepTiming]] = {1: [], 2: []}
    print(f"{label}\n")
    print("| run | workers | wall s | start s | trials s | shortest trial s | first wait s "
          "| end s |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(args.repeats):
            for workers in (1, 2) if repeat % 2 == 0 else (2, 1):
                folder = Path(scratch) / f"sweep-{repeat}-{workers}"
                t = run_sweep(args.spec, workers, args.trials, overrides, folder)
                timings[workers].append(t)
                print(f"| {repeat + 1} | {workers} | {t.wall:.2f} | {t.start:.2f} | "
                      f"{t.trials:.2f} | {t.shortest:.2f} | {t.first_wait:.2f} | {t.end:.2f} |")
    one, two = (statistics.median(t.wall for t in timings[w]) for w in (1, 2))
    same = all(t.metrics == timings[1][0].metrics for w in (1, 2) for t in timings[w])
    print(f"\nmedian wall: {one:.2f} s on 1 worker, {two:.2f} s on 2; ratio {two / one:.3f}")
    print(f"same metric for every trial on 1 and 2 workers: {'yes' if same else 'NO'}\n")
    return timings


def ratio(timings: dict[int, list[SweepTiming]]) -> float:
    one, two = (statistics.median(t.wall for t in timings[w]) for w in (1, 2))
    return two / one


def main(argv: list[str] | None = None) -> dict[str, dict[int, list[SweepTiming]]]:
    """The timings by trial length (``short``: as the spec gives them; ``long`` with
    ``--long``), then by worker count."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", type=Path, default=SPEC)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--long", action="store_true",
                        help="also time the sweep with long trials (--long-epochs epochs each, "
                             "no early stopping), and report both ratios")
    parser.add_argument("--long-epochs", type=int, default=350,
                        help="epochs of a long trial (default %(default)s)")
    parser.add_argument("overrides", nargs="*", help="key=value for the base config")
    args = parser.parse_args(argv)
    lengths = {"short": compare(args, args.overrides, "Trials as the spec gives them")}
    if args.long:
        long_overrides = [*args.overrides, f"train.epochs={args.long_epochs}",
                          "train.early_stopping=null"]
        lengths["long"] = compare(args, long_overrides,
                                  f"Long trials: {args.long_epochs} epochs, no early stopping")
        for name, timings in lengths.items():
            shortest = min(t.shortest for w in (1, 2) for t in timings[w])
            print(f"{name} trials (the shortest {shortest:.2f} s): 2 workers ÷ 1 worker "
                  f"{ratio(timings):.3f}")
    return lengths


if __name__ == "__main__":
    main()
