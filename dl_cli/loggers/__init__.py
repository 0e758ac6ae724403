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
mlflow.py       one MLflow run per run folder (extra dl-cli[mlflow])
replay.py       what an earlier run folder recorded, written to either of them
```

Each package is imported only when a config names its logger. The run folder stays the
record: a logger that cannot start is a LoggerError before training, one that fails
mid-run is warned about once and training goes on.
"""

from __future__ import annotations

from pathlib import Path

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


def start_loggers(cfg, run_dir: str | Path, warn) -> list[Guarded]:
    """The loggers ``cfg.train.loggers`` names, started for ``run_dir``, each guarded
    (``warn(message)`` says once that one failed mid-run). LoggerError, with the loggers
    started so far closed, when one cannot start."""
    started: list[Guarded] = []
    try:
        for name in cfg.train.loggers:
            started.append(Guarded(logger_class(name)(cfg, run_dir), warn))
    except LoggerError:
        for logger in started:
            logger.close()
        raise
    return started
