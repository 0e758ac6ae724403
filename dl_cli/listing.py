"""What ``dl runs`` lists: a row per run and one per sweep, found under a folder.

```
run                          started           duration  status      epochs  monitor  best val  test
digits-mlp/20250101-120000…  2025-01-01 12:00  41s       completed   30      val/acc  0.9805    0.9694
lr-sweep/20250102-090000…    2025-01-02 09:00  12m05s    sweep: 16 of 16 trials done  val/acc  0.9861  0.9722
```

A sweep's trials fold into its row (its best trial's scores, the wall time of its
drivers); ``trials=True``, or a sweep folder as the root, lists them instead. A row
starts when its folder's name says (``<YYYYmmdd-HHMMSS>-<id>``), else when its config was
written; a run lasts its training time (``time_s``), a sweep the time its drivers ran.
``select`` keeps the rows of a name, the last N started, and sorts by a metric, best
first.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from .layout import RunLayout, SweepLayout, find_runs
from .metrics import mode_of
from .numbers import column
from .runs import Run
from .storage import RunError
from .sweep.ledger import FINAL, Ledger, SweepError

STAMP = re.compile(r"(\d{8}-\d{6})(-|$)")


@dataclass
class Row:
    """One line of the listing."""

    path: Path
    name: str
    status: str
    started: datetime.datetime | None = None
    seconds: float | None = None
    epochs: int | None = None
    monitor: str = ""
    best: float | None = None
    spread: float | None = None  # a k-fold run's std over folds
    test: float | None = None
    scores: dict = field(default_factory=dict)  # what --sort may name


def started(folder: Path, first_file: Path) -> datetime.datetime | None:
    """When the folder's name says it was made, else when ``first_file`` was written."""
    match = STAMP.match(folder.name)
    if match:
        return datetime.datetime.strptime(match[1], "%Y%m%d-%H%M%S")
    try:
        return datetime.datetime.fromtimestamp(first_file.stat().st_mtime)
    except OSError:
        return None


def run_row(path: Path) -> Row:
    layout = RunLayout(path)
    try:
        summary = Run(path).read_summary() or {"status": "running?"}
    except RunError:
        summary = {"status": "unreadable (summary.json)"}
    monitor = summary.get("monitor") or ""
    test = summary.get("test") or {}
    status = str(summary.get("status"))
    if summary.get("kfold"):
        status += f" ({summary['kfold']}-fold mean)"
    scores = {**{k: v for k, v in (summary.get("best") or {}).items() if "/" in k}, **test}
    if monitor:
        scores[monitor] = summary.get("best_value")
    return Row(path=path, name=str(summary.get("name") or path.parent.name), status=status,
               started=started(path, layout.config), seconds=summary.get("time_s"),
               epochs=summary.get("epochs"), monitor=monitor, best=summary.get("best_value"),
               spread=summary.get("best_std") if summary.get("kfold") else None,
               test=test.get(monitor.replace("val/", "test/")), scores=scores)


def driver_seconds(events: list[dict]) -> float:
    """The wall time a sweep's drivers ran: from each start or resume to its last event."""
    total, begun, last = 0.0, None, None
    for event in events:
        if event["event"] == "sweep":
            if begun is not None:
                total += last - begun
            begun = event["time"]
        last = event["time"]
    return total + (last - begun if begun is not None else 0.0)


def sweep_row(path: Path) -> Row:
    layout = SweepLayout(path)
    try:
        ledger = Ledger(layout.ledger)
        events, table = ledger.events(), ledger.table()
    except SweepError:
        return Row(path=path, name=path.parent.name, status="unreadable (ledger.jsonl)",
                   started=started(path, layout.spec))
    done = sum(state.status in FINAL for state in table.values())
    row = Row(path=path, name=path.parent.name, started=started(path, layout.spec),
              seconds=driver_seconds(events),
              status=f"sweep: {done} of {len(table)} trials done")
    trials = [run_row(layout.trial(i)) for i, state in sorted(table.items())
              if state.status == "completed" and RunLayout(layout.trial(i)).is_run]
    scored = [t for t in trials if t.best is not None and t.monitor]
    if scored:
        goal = mode_of(scored[0].monitor)
        best = (max if goal == "max" else min)(scored, key=lambda t: t.best)
        row.name, row.monitor, row.best, row.test = best.name, best.monitor, best.best, best.test
        row.scores = best.scores
    return row


def rows(root: Path, trials: bool = False) -> list[Row]:
    """The rows under ``root``: its runs, and its sweeps as one row each (their trials
    with ``trials``, or when ``root`` is a sweep folder), in path order."""
    root = Path(root)
    if SweepLayout(root).is_sweep:
        return [run_row(p) for p in find_runs(root)]
    sweeps = [] if trials else sorted(p.parent for p in root.rglob(SweepLayout(root).ledger.name)
                                      if SweepLayout(p.parent).is_sweep)
    runs = [p for p in find_runs(root) if not any(s in p.parents for s in sweeps)]
    return sorted([*map(run_row, runs), *map(sweep_row, sweeps)], key=lambda r: r.path)


def select(found: list[Row], name: str | None = None, last: int | None = None,
           sort: str | None = None) -> list[Row]:
    """The rows whose name holds ``name``; of those the ``last`` started (oldest first);
    sorted by the metric ``sort``, best first (rows without it last)."""
    chosen = [r for r in found if name is None or name in r.name]
    if last is not None:
        oldest = datetime.datetime.min
        chosen = sorted(chosen, key=lambda r: (r.started or oldest, r.path))[-last:] if last else []
    if sort is not None:
        sign = -1 if mode_of(sort) == "max" else 1
        chosen = sorted(chosen, key=lambda r: (r.scores.get(sort) is None,
                                               sign * (r.scores.get(sort) or 0.0)))
    return chosen


def duration(seconds: float | None) -> str:
    """``41s``, ``12m05s``, ``3h02m``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def runs_table(listed: list[Row], root: Path) -> Table:
    table = Table(title=escape(f"runs in {root}"))
    table.add_column("run", overflow="fold")  # whole: a k-fold run's folds differ by the tail
    for heading in ("started", "duration", "status", "epochs", "monitor", "best val", "test"):
        table.add_column(heading, justify="right" if heading in ("best val", "test") else "left",
                         no_wrap=heading != "status")
    bests = column([r.best for r in listed] + [r.spread for r in listed if r.spread is not None])
    spreads = iter(bests[len(listed):])
    tests = column([r.test for r in listed])
    for row, best, test in zip(listed, bests, tests):
        best += f" ± {next(spreads)}" if row.spread is not None else ""
        when = row.started.strftime("%Y-%m-%d %H:%M") if row.started else "-"
        table.add_row(escape(str(row.path.relative_to(root))), when, duration(row.seconds),
                      escape(row.status), "-" if row.epochs is None else str(row.epochs),
                      row.monitor, best, test)
    return table
