"""Rich tables for the terminal: model summaries, gradient checks, runs and metrics."""

from __future__ import annotations

import inspect
import json
import math
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from .config import flatten
from .gradcheck import ZERO, Check
from .nn.model import Model
from .numbers import column, figure
from .registry import Registry
from .runs import Run
from .storage import RunError


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
    for heading in ("#", "layer", "output shape", "params", "multiply-adds"):
        table.add_column(heading, justify="right" if heading != "layer" else "left")
    rows = model.summary()
    for row in rows:
        table.add_row(str(row["index"]), row["layer"], str(row["output"]),
                      f"{row['params']:,}", f"{row['macs']:,} ({human(row['macs'])})")
    params, macs = sum(r["params"] for r in rows), sum(r["macs"] for r in rows)
    table.add_section()
    table.add_row("", "total", "", f"{params:,}", f"{macs:,} ({human(macs)})")
    return table


def zero_gradient(check: Check) -> bool:
    """Whether both gradients of a tensor are zero to within ``ZERO``: it passes by that
    rule alone, and its relative error, rounding noise over rounding noise, means nothing."""
    return math.isfinite(check.error) and check.largest <= ZERO


ZERO_NOTE = (f"both ≈ 0: every analytic and numerical gradient of the tensor is below {ZERO:.0e}, "
             f"the rounding noise of a centered difference (batchnorm, for one, makes the "
             f"gradient of the bias before it exactly zero); such a tensor passes, and its "
             f"relative error, noise over noise, is left out of the max error.")


def gradcheck_table(checks: list[Check]) -> Table:
    zeros = any(zero_gradient(c) for c in checks)
    table = Table(title="gradient check (float64, centered differences)",
                  caption=ZERO_NOTE if zeros else None, caption_justify="left")
    for heading in ("layer", "parameter", "shape", "max rel. error", "result"):
        table.add_column(heading)
    for check in checks:
        error = f"{check.error:.2e}"
        if zero_gradient(check):
            error, verdict = f"[dim]{error}[/]", "[green]pass[/] (both ≈ 0)"
        else:
            verdict = "[green]pass[/]" if check.passed else "[red]FAIL[/]"
        table.add_row(escape(check.layer), escape(check.param), str(check.shape), error, verdict)
    return table


def gradcheck_summary(checks: list[Check]) -> str:
    """The line under the table: how many tensors pass and the largest relative error of
    those whose gradients are not both ≈ 0 (theirs is noise, see ``zero_gradient``)."""
    if not checks:
        return "no tensors to check"
    failed = [c for c in checks if not c.passed]
    if failed:
        return (f"{len(failed)} of {len(checks)} tensors FAIL (relative error above "
                f"{max(c.tolerance for c in failed):.0e})")
    measured = [c.error for c in checks if not zero_gradient(c)]
    zeros = len(checks) - len(measured)
    text = "1 tensor passes" if len(checks) == 1 else f"all {len(checks)} tensors pass"
    if not measured:
        return f"{text} (every gradient ≈ 0, below {ZERO:.0e})"
    if zeros:
        return (f"{text} (max error {max(measured):.1e} over {len(measured)}; "
                f"{zeros} with both gradients ≈ 0 not counted)")
    return f"{text} (max error {max(measured):.1e})"


def registry_table(registry: Registry, only: str | None = None) -> Table:
    """Every entry of ``registry`` (or the one called ``only``): name, options, summary."""
    table = Table(title=registry.plural if only is None else registry.kind)
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("options")
    table.add_column("what it is")
    for name in registry.names() if only is None else [only]:
        options = ", ".join(
            k if v is inspect.Parameter.empty else f"{k}={v!r}"
            for k, v in registry.options(name).items())
        table.add_row(name, escape(options), escape(registry.summary(name)))
    return table


def metrics_table(metrics: dict) -> Table:
    """One row per metric; the values at one precision (``numbers.column``)."""
    table = Table()
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, text in zip(metrics, column(list(metrics.values()))):
        table.add_row(key, text)
    return table


def summary_title(summary: dict) -> str:
    """The line above a run's table: ``digits-mlp: completed; best val/acc 0.9777 at
    epoch 4 of 5`` (plain text, printed whole)."""
    return (f"{summary.get('name', 'run')}: {summary.get('status')}; best "
            f"{summary.get('monitor')} {figure(summary.get('best_value'))} at epoch "
            f"{summary.get('best_epoch')} of {summary.get('epochs')}")


def add_columns(table: Table, columns: list[list], blank: set[tuple[int, int]] = frozenset()) -> None:
    """Rows from ``columns`` (lists of values, each at one precision); the cells in
    ``blank`` (row, column) stay empty."""
    texts = [column(values) for values in columns]
    for row in range(len(columns[0]) if columns else 0):
        table.add_row(*("" if (row, c) in blank else texts[c][row] for c in range(len(texts))))


def summary_table(summary: dict) -> Table:
    """Rows train / val / test; columns each measure at the best epoch and at the last
    (the title is ``summary_title``, a line of its own)."""
    best, final, test = summary.get("best") or {}, summary.get("final") or {}, summary.get("test") or {}
    measures = sorted({key.split("/", 1)[1] for key in (*best, *test)
                       if "/" in key and not key.endswith("/objective")},
                      key=lambda m: (m != "loss", m))
    table = Table()
    table.add_column("split")
    for measure in measures:
        table.add_column(f"{measure} (best)", justify="right")
    for measure in measures:
        table.add_column(f"{measure} (last)", justify="right")
    rows = [(split, at_best, at_last) for split, at_best, at_last in
            (("train", best, final), ("val", best, final), ("test", test, {}))
            if any(at_best.get(f"{split}/{m}") is not None for m in measures)]
    columns = [[split for split, _, _ in rows]]
    columns += [[at_best.get(f"{split}/{m}") for split, at_best, _ in rows] for m in measures]
    columns += [[at_last.get(f"{split}/{m}") for split, _, at_last in rows] for m in measures]
    blank = {(r, 1 + len(measures) + c) for r, (_, _, at_last) in enumerate(rows) if not at_last
             for c in range(len(measures))}
    add_columns(table, columns, blank)
    return table


def folds_title(summary: dict) -> str:
    """The line above a k-fold run's table: the config's score, mean ± std over folds."""
    mean, std = column([summary["best_value"], summary["best_std"]])
    return (f"{summary['name']}: {summary['kfold']}-fold cross-validation, "
            f"{summary['monitor']} {mean} ± {std}")


def folds_table(summary: dict) -> Table:
    """One row per fold, then the mean that scores the config (``folds_title`` above it)."""
    monitor = summary["monitor"]
    test_key = monitor.replace("val/", "test/")
    table = Table()
    for heading in ("fold", "status", "best epoch", f"best {monitor}", test_key):
        table.add_column(heading, justify="right" if heading != "status" else "left")
    folds = summary["folds"]
    bests = column([f["best_value"] for f in folds] + [summary["best_value"]])
    tests = column([(f["test"] or {}).get(test_key) for f in folds]
                   + [summary["test"].get(test_key)])
    for i, fold in enumerate(folds):
        table.add_row(str(fold["fold"]), fold["status"], figure(fold["best_epoch"]),
                      bests[i], tests[i])
    table.add_section()
    table.add_row("mean", summary["status"], "", bests[-1], tests[-1])
    return table


def read_summary(run_dir: Path) -> dict:
    """The run's summary; a run without one yet shows as ``running?``, one whose
    summary.json is damaged as ``unreadable``, so that a listing shows the others."""
    try:
        return Run(run_dir).read_summary() or {"status": "running?"}
    except RunError:
        return {"status": "unreadable (summary.json)"}


def kfold_status(summary: dict) -> str:
    """The status, marked ``(3-fold mean)`` for a k-fold run: its metrics are means over
    folds, with no best epoch of its own."""
    status = str(summary.get("status"))
    return f"{status} ({summary['kfold']}-fold mean)" if summary.get("kfold") else status


def best_text(summary: dict) -> str:
    """The best monitored value; for a k-fold run the mean ± std over its folds."""
    text = number(summary.get("best_value"))
    if summary.get("kfold") and summary.get("best_std") is not None:
        text += f" ± {number(summary['best_std'])}"
    return text




def distinct_labels(run_dirs: list[Path]) -> list[str]:
    """Each folder's name, with as many of its parents as it takes to tell the folders
    apart (``sweep-a/trial-0000`` beside ``sweep-b/trial-0000``)."""
    parts = [Path(d).resolve().parts for d in run_dirs]
    for depth in range(1, max(len(p) for p in parts) + 1):
        labels = ["/".join(p[-depth:]) for p in parts]
        if len(set(labels)) == len(labels):
            return labels
    return labels


def compare_table(run_dirs: list[Path], configs: list[dict]) -> Table:
    flat = [flatten(c) for c in configs]
    keys = sorted({k for f in flat for k in f})
    differing = [k for k in keys if len({json.dumps(f.get(k), sort_keys=True) for f in flat}) > 1]
    summaries = [read_summary(d) for d in run_dirs]
    table = Table(title="runs side by side: differing config keys, then metrics")
    table.add_column("")
    for label in distinct_labels(run_dirs):
        table.add_column(escape(label))
    for key in differing:
        table.add_row(key, *(escape(number(f.get(key))) for f in flat))
    table.add_section()
    table.add_row("status", *(kfold_status(s) for s in summaries))
    table.add_row("best epoch", *(number(s.get("best_epoch")) for s in summaries))
    metric_names = sorted({k for s in summaries for k in (s.get("best") or {}) if "/" in k}
                          | {s["monitor"] for s in summaries if s.get("kfold") and s.get("monitor")})
    for name in metric_names:
        table.add_row(f"best {name}", *(best_text(s) if s.get("kfold") and name == s.get("monitor")
                                        else number((s.get("best") or {}).get(name))
                                        for s in summaries))
    test_names = sorted({k for s in summaries for k in (s.get("test") or {})})
    for name in test_names:
        table.add_row(name, *(number((s.get("test") or {}).get(name)) for s in summaries))
    return table
