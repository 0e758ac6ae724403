"""Does model-based search pay off? TPE against random search, same budget, same space.

    python -m benchmarks.tpe_vs_random [--trials 32] [--seeds 0,1,2,3,4] [--workers 1]
                                       [--spec SPEC] [--out DIR] [key=value ...]

For each sweep seed, ``dl sweep SPEC sweep.method=random`` and ``sweep.method=tpe`` (in
rounds of the spec's ``batch``, default 4), each with ``--trials`` configurations, in a
fresh process as a user would run them. The default spec is ``configs/sweep_digits.yaml``
(learning rate, width, L2 and batch size of the digits MLP). For each sweep it reads
results.csv: the best validation metric of a completed configuration (what the sweep
chooses by), the test metric of that configuration's trial (scored once, never used to
choose), and how many of the trials beat the random sweep's best. Prints a Markdown table
and writes it, with the raw numbers as JSON, to ``--out`` (default: a temporary folder).
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
from pathlib import Path

import yaml

SPEC = Path(__file__).resolve().parents[1] / "configs" / "sweep_digits.yaml"


def run_sweep(spec: Path, method: str, seed: int, trials: int, workers: int,
              overrides: list[str], folder: Path) -> dict:
    """One ``dl sweep`` in a fresh process; its best completed configuration and timing."""
    command = [sys.executable, "-m", "dl_cli", "sweep", str(spec), f"sweep.method={method}",
               f"sweep.trials={trials}", f"sweep.seed={seed}", *overrides,
               "--workers", str(workers), "--sweep-dir", str(folder)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"dl sweep failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    with open(folder / "results.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    settled = yaml.safe_load((folder / "spec.yaml").read_text())["metric"]
    metric, goal = settled["name"], max if settled["goal"] == "max" else min
    completed = [r for r in rows if r["status"] == "completed" and r[metric]]
    best = goal(completed, key=lambda r: float(r[metric]))
    summary = json.loads((folder / best["dir"] / "summary.json").read_text())
    test_name = "test/" + metric.split("/", 1)[1]
    return {"method": method, "seed": seed, "metric": metric, "goal": settled["goal"],
            "best": float(best[metric]),
            "test": summary.get("test", {}).get(test_name),
            "values": [float(r[metric]) for r in completed], "wall_s": round(wall, 1),
            "best_params": {k: v for k, v in best.items() if "." in k}}


def cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def table(results: list[dict]) -> str:
    """One row per sweep seed; "beats" and "winner" follow the metric's goal."""
    metric, sign = results[0]["metric"], 1.0 if results[0]["goal"] == "max" else -1.0
    by = {(r["method"], r["seed"]): r for r in results}
    seeds = sorted({r["seed"] for r in results})
    lines = [f"| sweep seed | random: best {metric} | TPE: best {metric} | random: its test | "
             f"TPE: its test | random: mean of its trials | TPE: mean of its trials | "
             f"TPE trials beating random's best | winner |",
             "|---|---|---|---|---|---|---|---|---|"]
    wins = 0
    for seed in seeds:
        rand, tpe = by["random", seed], by["tpe", seed]
        better = sum(sign * v > sign * rand["best"] for v in tpe["values"])
        margin = sign * (tpe["best"] - rand["best"])
        winner = "TPE" if margin > 0 else "random" if margin < 0 else "tie"
        wins += winner == "TPE"
        lines.append(f"| {seed} | {cell(rand['best'])} | {cell(tpe['best'])} | {cell(rand['test'])} | "
                     f"{cell(tpe['test'])} | {cell(statistics.fmean(rand['values']))} | "
                     f"{cell(statistics.fmean(tpe['values']))} | {better} of {len(tpe['values'])} | "
                     f"{winner} |")
    means = {(m, key): statistics.fmean(by[m, s][key] for s in seeds)
             for m in ("random", "tpe") for key in ("best", "test")}
    trial_means = {m: statistics.fmean(v for s in seeds for v in by[m, s]["values"])
                   for m in ("random", "tpe")}
    lines.append(f"| mean | {means['random', 'best']:.4f} | {means['tpe', 'best']:.4f} | "
                 f"{means['random', 'test']:.4f} | {means['tpe', 'test']:.4f} | "
                 f"{trial_means['random']:.4f} | {trial_means['tpe']:.4f} | | "
                 f"TPE in {wins} of {len(seeds)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--spec", type=Path, default=SPEC)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("overrides", nargs="*", help="key=value overrides of the base config")
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="tpe-vs-random-"))
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for method in ("random", "tpe"):
            result = run_sweep(args.spec, method, seed, args.trials, args.workers,
                               args.overrides, out / f"{method}-{seed}")
            results.append(result)
            print(f"seed {seed} {method}: best {result['metric']} {result['best']:.4f} "
                  f"({result['wall_s']} s)", flush=True)
            (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    text = table(results)
    (out / "table.md").write_text(text + "\n")
    print(text)
    print(f"sweep folders, results.json and table.md in {out}")


if __name__ == "__main__":
    main()
