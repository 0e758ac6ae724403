"""Loggers: a run's metrics, live, in the tools people already watch runs in.

```yaml
train:
  loggers: [tensorboard, mlflow]         # default: none
  tensorboard: {histograms_every: 5}     # weight and gradient histograms (0: none)
  mlflow: {uri: http://localhost:5000}   # default: $MLFLOW_TRACKING_URI, else ./mlruns
```

```
base.py         the observer interface (Logger), the guard (Guarded), LoggerError
tensorboard.py  event files in RUN/tensorboard/ (extra dl-cli[tensorboard])
mlflow.py       one MLflow run per run folder, a sweep's parent run (extra dl-cli[mlflow])
replay.py       what earlier run folders recorded, written to either of them (dl export)
```

Each package is imported only when a config names its logger. The run folder stays the
record: a logger that cannot start is a LoggerError before any run folder is made, one
that fails mid-run is warned about once and training goes on.
"""

from __future__ import annotations

from ..schema import LOGGERS  # the names train.loggers takes; each one's extra too
from .base import Guarded, Logger, LoggerError


def logger_class(name: str) -> type[Logger]:
    """The class of logger ``name``, its package imported; LoggerError naming the extra to
    install when that package is missing."""
    try:
        if name == "tensorboard":
            from .tensorboard import TensorBoardLogger as chosen
        else:
            from .mlflow import MlflowLogger as chosen
    except ImportError as error:
        raise LoggerError(f"train.loggers: {name} needs the {name} package ({error}); "
                          f"pip install 'dl-cli[{name}]'") from None
    return chosen


def start_loggers(cfg) -> list[Logger]:
    """The loggers ``cfg.train.loggers`` names, started: their packages imported, their
    tools reached (no run folder is needed yet). LoggerError, with the loggers started so
    far closed, when one cannot start."""
    started: list[Logger] = []
    try:
        for name in cfg.train.loggers:
            started.append(logger_class(name)(cfg))
    except LoggerError:
        for logger in started:
            logger.close()
        raise
    return started


def start_sweep_record(cfg):
    """Before a sweep whose trials train base config ``cfg``: each logger's package
    imported, and when they log to MLflow the keeper of the sweep's parent run
    (``mlflow.MlflowSweep``), started, else None. LoggerError when one cannot start."""
    for name in cfg.train.loggers:
        logger_class(name)
    if "mlflow" not in cfg.train.loggers:
        return None
    from .mlflow import MlflowSweep

    return MlflowSweep(cfg)
