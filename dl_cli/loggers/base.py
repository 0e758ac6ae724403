"""What a logger is: an observer of the Solver's events, and the guard that keeps a
failing one from stopping training.

```python
logger = MlflowLogger(cfg)            # starts: LoggerError when it cannot (before any run folder)
guarded = Guarded(logger, warn)
guarded.open(run.path)                # begins the record of the run in that folder
solver.observers.append(guarded)      # the Solver's events fill it
guarded.close()                       # ends it
```

Starting a logger is reaching its tool (its package imported, its tracking server
answering), which needs no run folder: ``dl train`` starts the loggers before it makes the
folder, so one that cannot start leaves nothing behind. ``open`` and ``close`` then frame
the record of one run; a logger may record several runs in turn (the folds of a k-fold run).

A logger hears the events of ``Solver`` (see its docstring) through ``__call__(event,
payload)``, one method per event:

| event | method | what a logger writes |
|---|---|---|
| ``start`` | ``start(epoch, step)`` | the resolved config as hyperparameters, the run folder's path |
| ``iteration`` | ``iteration(record)`` | ``train/batch_loss`` at its step (``train.log_every``) |
| ``epoch`` | ``epoch(record, params, grads)`` | every number of the metrics.jsonl record under its name, ``lr`` included; with ``train.diagnostics`` the per-layer statistics and weight norms |
| ``end`` | ``end(summary)`` | the test metrics of the best parameters, the best value, the status |

Every number goes at the record's ``step`` (iterations so far), as in metrics.jsonl, with
the epoch beside it as the scalar ``epoch``.

The run folder stays the record: a logger that fails mid-run is warned about once and
heard no more (``Guarded``), and training goes on.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

from ..schema import Config
from ..config import flatten


class LoggerError(RuntimeError):
    """A logger cannot start: its package is not installed, or its server cannot be reached."""


def hyperparameters(cfg: Config) -> dict[str, str | int | float | bool]:
    """The resolved config as flat dotted keys (``optimizer.lr``, ``model.layers.0.units``);
    values that are not a number, a string or a boolean (null, an empty list) as text."""
    return {key: value if isinstance(value, (bool, int, float, str)) else str(value)
            for key, value in flatten(dataclasses.asdict(cfg)).items()}


def scalars(record: dict) -> dict[str, float]:
    """The numbers of a metrics record under their names (``val/acc``, ``lr``, ``time``),
    not its ``epoch`` and ``step``; its diagnostics rows (``layers``) as
    ``layers/<index>.<layer>/<statistic>``."""
    out = {key: float(value) for key, value in record.items()
           if key not in ("epoch", "step") and isinstance(value, (int, float))
           and not isinstance(value, bool)}
    for row in record.get("layers", []):
        name = f"layers/{row['index']}.{row['layer']}"
        out.update({f"{name}/{stat}": float(value) for stat, value in row.items()
                    if stat not in ("index", "layer") and isinstance(value, (int, float))})
    return out


def test_metrics(summary: dict) -> dict[str, float]:
    """The summary's test metrics (of the best parameters; none for a run that did not end
    normally), ``test/acc`` and so on."""
    return {key: float(value) for key, value in (summary.get("test") or {}).items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)}


def weight_norms(params: dict[str, np.ndarray], layer_names: dict[int, str]) -> dict[str, float]:
    """``layers/<index>.<layer>/weight_norm``: the L2 norm of each layer's parameters
    together (``"3.W"`` and ``"3.b"`` are layer 3's), √Σw²."""
    squares: dict[int, float] = {}
    for key, value in params.items():
        index = int(key.split(".", 1)[0])
        squares[index] = squares.get(index, 0.0) + float(np.vdot(value, value))
    return {f"layers/{i}.{layer_names.get(i, 'layer')}/weight_norm": math.sqrt(total)
            for i, total in sorted(squares.items())}


class Logger:
    """A run's logger: override the events it writes; each does nothing by default."""

    name = "logger"

    def open(self, run_dir: Path) -> None:
        """Begin the record of the run in ``run_dir`` (a resumed run: continue it)."""

    def __call__(self, event: str, payload: dict) -> None:
        handlers = {"start": self.start, "iteration": self.iteration, "epoch": self.epoch,
                    "end": self.end}
        handlers[event](**payload)

    def start(self, epoch: int, step: int) -> None:
        """Training begins (or continues, from ``epoch`` and ``step``)."""

    def iteration(self, record: dict) -> None:
        """A ``log_every`` record: ``{step, epoch, train/batch_loss}``."""

    def epoch(self, record: dict, params: dict | None = None, grads: dict | None = None) -> None:
        """An epoch's record; the parameters and the last update's gradients (None when
        replayed from a run folder)."""

    def end(self, summary: dict) -> None:
        """The summary of the run, as summary.json holds it."""

    def close(self) -> None:
        """End the record of the run (flush, release what it holds); nothing when none is open."""


class Guarded:
    """An observer that passes the Solver's events on to a logger until it fails once:
    then ``warn`` says so, the logger is closed quietly and hears nothing more."""

    def __init__(self, logger: Logger, warn):
        self.logger, self.warn = logger, warn
        self.failed = False

    def open(self, run_dir: Path) -> None:
        try:
            self.logger.open(run_dir)
        except Exception as error:  # the tool answered as the logger started; it may not now
            self._give_up("as it opened the run's record", error)

    def __call__(self, event: str, payload: dict) -> None:
        if self.failed:
            return
        try:
            self.logger(event, payload)
        except Exception as error:  # whatever the tool raises, training goes on
            self._give_up(f"at its {event} event", error)

    def close(self) -> None:
        if self.failed:
            return
        try:
            self.logger.close()
        except Exception as error:
            self._give_up("as it closed", error)

    def _give_up(self, where: str, error: Exception) -> None:
        self.failed = True
        self.warn(f"the {self.logger.name} logger failed {where} ({type(error).__name__}: "
                  f"{error}); training goes on without it, and the run folder keeps every metric")
        try:
            self.logger.close()
        except Exception:  # it has failed already, and that was said
            pass
