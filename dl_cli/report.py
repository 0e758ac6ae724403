"""Rich tables for the terminal: model summaries, gradient checks, runs and metrics."""

from __future__ import annotations

import inspect
import json
import math
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from .gradcheck import Check
from .nn.model import Model
from .registry import Registry
from .runs import Run


def number(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.4g}"
    return str(value)


def human(count: int) -> str:
    """``86704128 → 86.7 M``."""
    for size, suffix in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if count >= size:
            return f"{count / size:.1f}{suffix}"
    return str(count)


def model_table(model: Model) -> Table:
    table = Table(title=f"model: input {tuple(model.in_shape)}, loss {model.loss_fn.registered_name}")
    for column in ("#", "layer", "output shape", "params", "multiply-adds"):
        table.add_column(column, justify="right" if column != "layer" else "left")
    rows = model.summary()
    for row in rows:
        table.add_row(str(row["index"]), row["layer"], str(row["output"]),
                      f"{row['params']:,}", f"{row['macs']:,} ({human(row['macs'])})")
    params, macs = sum(r["params"] for r in rows), sum(r["macs"] for r in rows)
    table.add_section()
    table.add_row("", "total", "", f"{params:,}", f"{macs:,} ({human(macs)})")
    return table


def gradcheck_table(checks: list[Check]) -> Table:
    table = Table(title="gradient check (float64, centered differences)")
    for column in ("layer", "parameter", "shape", "max rel. error", "result"):
        table.add_column(column)
    for check in checks:
        verdict = "[green]pass[/]" if check.passed else "[red]FAIL[/]"
        table.add_row(check.layer, check.param, str(check.shape), f"{check.error:.2e}", verdict)
    return table


def registry_table(registry: Registry) -> Table:
    table = Table(title=f"{registry.kind}s")
    table.add_column("name", style="bold")
    table.add_column("options")
    table.add_column("what it is")
    for name in registry.names():
        options = ", ".join(
            k if v is inspect.Parameter.empty else f"{k}={v!r}"
            for k, v in registry.options(name).items())
        table.add_row(name, escape(options), escape(registry.summary(name)))
    return table


def metrics_table(title: str, metrics: dict) -> Table:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        table.add_row(key, number(value))
    return table


def summary_table(summary: dict) -> Table:
    """Rows train / val / test; columns each measure at the best epoch and at the last."""
    best, final, test = summary.get("best") or {}, summary.get("final") or {}, summary.get("test") or {}
    measures = sorted({key.split("/", 1)[1] for key in (*best, *test)
                       if "/" in key and not key.endswith("/objective")},
                      key=lambda m: (m != "loss", m))
    title = (f"{summary.get('name', 'run')}: {summary.get('status')}; best "
             f"{summary.get('monitor')} {number(summary.get('best_value'))} at epoch "
             f"{summary.get('best_epoch')} of {summary.get('epochs')}")
    table = Table(title=title)
    table.add_column("split")
    for measure in measures:
        table.add_column(f"{measure} (best)", justify="right")
    for measure in measures:
        table.add_column(f"{measure} (last)", justify="right")
    for split, at_best, at_last in (("train", best, final), ("val", best, final),
                                    ("test", test, {})):
        values = [at_best.get(f"{split}/{m}") for m in measures]
        if all(v is None for v in values):
            continue
        table.add_row(split, *(number(v) for v in values),
                      *(number(at_last.get(f"{split}/{m}")) if at_last else "" for m in measures))
    return table


def folds_table(summary: dict) -> Table:
    """One row per fold, then the mean ± std that scores the config."""
    monitor = summary["monitor"]
    test_key = monitor.replace("val/", "test/")
    title = (f"{summary['name']}: {summary['kfold']}-fold cross-validation, {monitor} "
             f"{number(summary['best_value'])} ± {number(summary['best_std'])}")
    table = Table(title=title)
    for column in ("fold", "status", "best epoch", f"best {monitor}", test_key):
        table.add_column(column, justify="right" if column != "status" else "left")
    for fold in summary["folds"]:
        table.add_row(str(fold["fold"]), fold["status"], number(fold["best_epoch"]),
                      number(fold["best_value"]), number((fold["test"] or {}).get(test_key)))
    table.add_section()
    table.add_row("mean", summary["status"], "", number(summary["best_value"]),
                  number(summary["test"].get(test_key)))
    return table


def find_runs(root: Path) -> list[Path]:
    """Run folders under ``root`` (any depth): those holding a config.yaml and a
    metrics or summary file."""
    return sorted(p.parent for p in Path(root).rglob("config.yaml")
                  if (p.parent / "summary.json").exists() or (p.parent / "metrics.jsonl").exists())


def read_summary(run_dir: Path) -> dict:
    """The run's summary; a run without one yet shows as ``running?``."""
    return Run(run_dir).read_summary() or {"status": "running?"}


def runs_table(run_dirs: list[Path], root: Path) -> Table:
    table = Table(title=f"runs in {root}")
    for column in ("run", "status", "epochs", "monitor", "best val", "test"):
        table.add_column(column)
    for run_dir in run_dirs:
        summary = read_summary(run_dir)
        monitor = summary.get("monitor", "")
        test = summary.get("test") or {}
        test_key = monitor.replace("val/", "test/")
        table.add_row(str(run_dir.relative_to(root)), str(summary.get("status")),
                      number(summary.get("epochs")), monitor, number(summary.get("best_value")),
                      number(test.get(test_key)))
    return table


def flatten(tree, prefix: str = "") -> dict:
    """``{"a": {"b": 1}, "l": [x]} → {"a.b": 1, "l.0": x}``."""
    if isinstance(tree, dict):
        out = {}
        for key, value in tree.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    if isinstance(tree, list):
        out = {}
        for i, value in enumerate(tree):
            out.update(flatten(value, f"{prefix}{i}."))
        return out or {prefix[:-1]: []}
    return {prefix[:-1]: tree}


def compare_table(run_dirs: list[Path], configs: list[dict]) -> Table:
    flat = [flatten(c) for c in configs]
    keys = sorted({k for f in flat for k in f})
    differing = [k for k in keys if len({json.dumps(f.get(k), sort_keys=True) for f in flat}) > 1]
    summaries = [read_summary(d) for d in run_dirs]
    table = Table(title="runs side by side: differing config keys, then metrics")
    table.add_column("")
    for run_dir in run_dirs:
        table.add_column(run_dir.name)
    for key in differing:
        table.add_row(key, *(number(f.get(key)) for f in flat))
    table.add_section()
    table.add_row("status", *(str(s.get("status")) for s in summaries))
    table.add_row("best epoch", *(number(s.get("best_epoch")) for s in summaries))
    metric_names = sorted({k for s in summaries for k in (s.get("best") or {}) if "/" in k})
    for name in metric_names:
        table.add_row(f"best {name}", *(number((s.get("best") or {}).get(name)) for s in summaries))
    test_names = sorted({k for s in summaries for k in (s.get("test") or {})})
    for name in test_names:
        table.add_row(name, *(number((s.get("test") or {}).get(name)) for s in summaries))
    return table
