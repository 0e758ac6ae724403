"""The sweep's memory: an append-only JSON-lines file of events, and the table it implies.

```
{"event": "sweep",  "spec_hash": ..., "base_hash": ..., "time": ...}      once per start or resume
{"event": "round",  "round": 1, "domains": {...}}                        refined ranges of a round
{"event": "trial",  "trial": 3, "round": 0, "config": 3, "seed": null, "params": {...},
                   "variant": "tanh"}                                    (variant: with variants only)
{"event": "start",  "trial": 3, "until": 9}                              submitted (until: rung epochs)
{"event": "result", "trial": 3, "status": "paused", "metric": 0.91, "epochs": 9, ...}
{"event": "prune",  "trial": 3, "rung": 9}                               successive halving's verdict
{"event": "retry",  "trial": 3}                                          a failed trial run again
```

Lines are only ever appended, each with one ``write`` and an ``fsync``; a line cut short by
a crash is the only one that can be malformed, and reading skips it. Anything else that
does not read as ``EVENTS`` describes (a JSON value that is not an event, an event without
a field its kind needs, bytes that are not text) is damage, and a SweepError names the
line. Replaying the events in order gives every trial's state, so the driver can stop at
any moment and resume.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..nesting import NestingError, json_value
from ..runs import entry_problem
from ..storage import RunError, open_append, read_text

FINAL = ("completed", "pruned", "diverged", "failed")  # a trial in one of these is done


class SweepError(RuntimeError):
    """A sweep folder cannot be used as asked (in use, damaged, or its spec or base changed)."""


class SweepWriteError(SweepError):
    """A file of the sweep folder cannot be written (a full disk): the sweep stops."""


# The fields each kind of event needs and the kind of value each holds (see runs.VALUE_KINDS);
# every event also has a "time". OPTIONAL: fields some events have, checked where they are.
EVENTS = {
    "sweep": {"spec_hash": "a string"},
    "round": {"round": "a count", "domains": "an object"},
    "trial": {"trial": "a count", "round": "a count", "config": "a count",
              "seed": "a count or null", "params": "an object"},
    "start": {"trial": "a count"},
    "result": {"trial": "a count", "status": "a string"},
    "prune": {"trial": "a count"},
    "retry": {"trial": "a count"},
}
OPTIONAL = {"base_hash": "a string", "variant": "a string or null", "until": "a count or null",
            "metric": "a number or null", "epochs": "a count", "time_s": "a number",
            "error": "a string or null", "fold_metrics": "a list or null", "rung": "a count",
            "executor": "a string", "workers": "a count", "address": "a string or null"}


def event_problem(event) -> str | None:
    """What keeps a JSON value from being an event ``apply`` can replay, or None."""
    if not isinstance(event, dict):
        return f"a JSON {type(event).__name__}, not an event (an object)"
    kind = event.get("event")
    if not isinstance(kind, str) or kind not in EVENTS:
        return f"unknown event {kind!r}; known: {', '.join(EVENTS)}"
    required = {"time": "a number", **EVENTS[kind]}
    for name, expected in required.items():
        if name not in event:
            return f"a {kind} event without {name} ({expected})"
    problem = entry_problem(event, {**OPTIONAL, **required})
    return None if problem is None else f"{problem} (a {kind} event)"


@dataclass
class TrialState:
    index: int
    round: int
    config: int
    seed: int | None
    params: dict
    status: str = "pending"     # pending | running | paused | interrupted | one of FINAL
    metric: float | None = None
    epochs: int = 0
    time_s: float = 0.0
    error: str | None = None
    fold_metrics: list | None = None
    rungs: dict[int, float | None] = field(default_factory=dict)  # until → metric reported
    started: float | None = None  # when the running attempt was submitted (epoch seconds)
    until: int | None = None      # the rung the last result was trained towards
    variant: str | None = None    # the spec's variant this trial trains

    def reached(self, epochs: int, first: int) -> bool:
        """Whether the trial takes part in the rung of ``epochs`` (``first``: the first
        rung): it reported there, or it had completed before (early stopping, fewer
        epochs), or it diverged or failed on the way there (training towards this rung,
        or at the first rung when it never trained). A trial pruned at an earlier rung
        does not."""
        if self.status in ("diverged", "failed"):
            return epochs in self.rungs or (self.until or first) == epochs
        return epochs in self.rungs or self.status == "completed"

    def metric_at(self, epochs: int) -> float | None:
        """The metric the rung of ``epochs`` compares: None (the worst) for a trial that
        diverged or failed before reporting there."""
        if epochs in self.rungs:
            return self.rungs[epochs]
        return None if self.status in ("diverged", "failed") else self.metric


def apply(trials: dict[int, TrialState], e: dict) -> None:
    """Update the trials' states with one event."""
    kind, state = e["event"], trials.get(e.get("trial"))
    if kind == "trial":
        trials[e["trial"]] = TrialState(e["trial"], e["round"], e["config"], e["seed"], e["params"],
                                        variant=e.get("variant"))
    elif state is None:
        return
    elif kind == "start":
        state.status, state.started = "running", e["time"]
    elif kind == "result":
        state.status, state.metric = e["status"], e.get("metric")
        state.epochs, state.error = e.get("epochs", 0), e.get("error")
        state.fold_metrics, state.until = e.get("fold_metrics"), e.get("until")
        state.time_s += e.get("time_s", 0.0)
        if e.get("until") is not None and e["status"] in ("paused", "completed"):
            state.rungs[e["until"]] = e.get("metric")
    elif kind == "prune":
        state.status = "pruned"
    elif kind == "retry":
        trials[e["trial"]] = TrialState(state.index, state.round, state.config, state.seed,
                                        state.params, variant=state.variant)


class Ledger:
    """The file and, once read, the table of trial states it implies, kept up to date
    by ``append``."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._table: dict[int, TrialState] | None = None

    def append(self, event: str, **fields) -> None:
        self.extend([{"event": event, **fields}])

    def extend(self, events: list[dict]) -> None:
        """Append events with one write and one fsync."""
        stamp = round(time.time(), 3)
        events = [{**e, "time": stamp} for e in events]
        # a line cut short by a crash is ended first, so it cannot swallow the next event
        lead = "" if self._ends_with_newline() else "\n"
        try:
            with open_append(self.path) as f:
                f.write(lead + "".join(json.dumps(e) + "\n" for e in events))
                f.flush()
                os.fsync(f.fileno())
        except RunError as error:
            raise SweepError(str(error)) from None
        except OSError as error:  # what was appended before stays; a cut line is skipped
            raise SweepWriteError(f"cannot write {self.path}: {error.strerror or error}") from None
        if self._table is not None:
            for e in events:
                apply(self._table, e)

    def _ends_with_newline(self) -> bool:
        """Whether the file is missing, empty, or ends with a whole line."""
        try:
            with open(self.path, "rb") as f:
                if f.seek(0, os.SEEK_END) == 0:
                    return True
                f.seek(-1, os.SEEK_END)
                return f.read(1) == b"\n"
        except FileNotFoundError:
            return True

    def events(self) -> list[dict]:
        """Every event in the file, checked; SweepError naming the line of a damaged one."""
        if not self.path.exists():
            return []
        try:
            text = read_text(self.path)
        except RunError as error:
            raise SweepError(str(error)) from None
        events = []
        for number, line in enumerate(text.split("\n"), start=1):
            try:
                event = json_value(line)
            except NestingError as error:
                raise SweepError(f"{self.path}: damaged at line {number}: {error}") from None
            except json.JSONDecodeError:
                continue  # the tail of a write cut short by a crash, or a blank line
            problem = event_problem(event)
            if problem is not None:
                raise SweepError(f"{self.path}: damaged at line {number}: {problem}")
            events.append(event)
        return events

    def header(self) -> dict | None:
        return next((e for e in self.events() if e["event"] == "sweep"), None)

    def placement(self) -> dict | None:
        """Where the sweep last ran: ``{"executor", "workers", "address"}`` of its latest
        start or resume that recorded them, or None."""
        runs = [e for e in self.events() if e["event"] == "sweep" and "executor" in e]
        if not runs:
            return None
        return {key: runs[-1].get(key) for key in ("executor", "workers", "address")}

    def rounds(self) -> dict[int, dict]:
        return {e["round"]: e["domains"] for e in self.events() if e["event"] == "round"}

    def table(self) -> dict[int, TrialState]:
        """Every declared trial's state: the events replayed once, then kept current."""
        if self._table is None:
            self._table = {}
            for e in self.events():
                apply(self._table, e)
        return self._table
