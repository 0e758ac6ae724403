"""Write what earlier runs recorded to TensorBoard or MLflow, for runs trained without a
logger (``dl export RUN --to tensorboard|mlflow``).

```python
replay("runs/digits-mlp/20240101-120000-abc123", "tensorboard")   # → RUN/tensorboard/
replay_all("runs/lr-vs-width/<sweep>", "mlflow", uri="sqlite:///mlflow.db")  # each trial
```

A run folder's config.yaml, metrics.jsonl and summary.json are read (and checked, as
``dl runs`` reads them) and handed to the same logger a live run uses, event by event:
``start``, each batch line (``iteration``) and epoch line (``epoch``) in order, then
``end`` with the summary. The numbers are those training logged, at the same steps;
what only a live run has (the weights, for histograms and weight norms) is left out.
A run is written once: a folder whose ``tensorboard/`` exists, or that MLflow already
holds a run of, is refused, so nothing is logged twice.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..config import load_saved_config
from ..layout import RunLayout, find_runs
from ..runs import Run
from ..schema import MlflowConfig
from . import LOGGERS, LoggerError, logger_class


def replay(run_dir: str | Path, to: str, uri: str | None = None) -> str:
    """Write the run in ``run_dir`` to ``to`` (tensorboard or mlflow; ``uri``: the MLflow
    tracking URI, else as a live run finds it). Returns where it went: the event folder,
    or the MLflow run id. LoggerError when it cannot be written; RunError when the folder
    is not a readable run."""
    if to not in LOGGERS:
        raise LoggerError(f"--to: unknown logger {to!r}; allowed: {', '.join(LOGGERS)}")
    run = Run(run_dir)
    cfg = load_saved_config(run.layout.config)
    if uri is not None:
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, mlflow=MlflowConfig(uri)))
    records, summary = run.read_metrics(), run.read_summary()
    if to == "tensorboard" and run.layout.tensorboard.exists():
        raise LoggerError(f"{run.layout.tensorboard} exists already; remove it to write "
                          f"the run's events again")
    logger = logger_class(to)(cfg, run.path)
    try:
        if to == "mlflow" and logger.resumed:
            raise LoggerError(f"{run.path}: MLflow at {logger.uri} holds this run already "
                              f"(run {logger.run_id})")
        logger.start(epoch=0, step=0)
        for record in records:
            if "train/batch_loss" in record:
                logger.iteration(record)
            elif "lr" in record:  # an epoch's line; a status line (diverged) has no numbers
                logger.epoch(record)
        if summary:
            logger.end(summary)
    finally:
        logger.close()
    return str(logger.folder) if to == "tensorboard" else logger.run_id


def run_folders(path: str | Path) -> list[Path]:
    """The run folders in ``path``: itself, or every one below it (a sweep's trials, a
    k-fold run's folds), in path order."""
    path = Path(path)
    if RunLayout(path).metrics.exists():
        return [path]
    return [run for run in find_runs(path) if RunLayout(run).metrics.exists()]


def replay_all(path: str | Path, to: str, uri: str | None = None) -> dict[Path, str]:
    """``replay`` each run folder of ``path``; LoggerError when it holds none."""
    folders = run_folders(path)
    if not folders:
        raise LoggerError(f"{path}: no run folder (config.yaml and metrics.jsonl) in it")
    return {folder: replay(folder, to, uri) for folder in folders}
