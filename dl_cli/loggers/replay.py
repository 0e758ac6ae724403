"""Write what earlier runs recorded to TensorBoard or MLflow, for runs trained without a
logger (``dl export RUN|SWEEP --to tensorboard|mlflow``).

```python
replay("runs/digits-mlp/20240101-120000-abc123", "tensorboard")   # → RUN/tensorboard/
export("runs/lr-vs-width/<sweep>", "mlflow", uri="sqlite:///mlflow.db")  # each trial
```

A run folder's config.yaml, metrics.jsonl and summary.json are read (and checked, as
``dl runs`` reads them) and handed to the same logger a live run uses, event by event:
``start``, each batch line (``iteration``) and epoch line (``epoch``) in order, then
``end`` with the summary. The numbers are those training logged, at the same steps;
what only a live run has (the weights, for histograms and weight norms) is left out.
A run is written once: a folder whose ``tensorboard/`` exists, or that MLflow already
holds a run of, is refused, so nothing is logged twice. A sweep folder's trials go to
MLflow as the children of the sweep's parent run, as a live sweep logs them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..config import load_saved_config
from ..layout import RunLayout, SweepLayout, find_runs
from ..runs import Run
from ..schema import MlflowConfig
from . import LOGGERS, LoggerError, logger_class


def with_uri(cfg, uri: str | None):
    """``cfg`` with ``train.mlflow.uri`` set to ``uri`` (unchanged for None)."""
    if uri is None:
        return cfg
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, mlflow=MlflowConfig(uri)))


def check_target(to: str) -> None:
    if to not in LOGGERS:
        raise LoggerError(f"--to: unknown logger {to!r}; allowed: {', '.join(LOGGERS)}")


def replay(run_dir: str | Path, to: str, uri: str | None = None) -> str:
    """Write the run in ``run_dir`` to ``to`` (tensorboard or mlflow; ``uri``: the MLflow
    tracking URI, else as a live run finds it). Returns where it went: the event folder,
    or the MLflow run id. LoggerError when it cannot be written; RunError when the folder
    is not a readable run."""
    check_target(to)
    run = Run(run_dir)
    cfg = with_uri(load_saved_config(run.layout.config), uri)
    records, summary = run.read_metrics(), run.read_summary()
    if to == "tensorboard" and run.layout.tensorboard.exists():
        raise LoggerError(f"{run.layout.tensorboard} exists already; remove it to write "
                          f"the run's events again")
    logger = logger_class(to)(cfg)
    try:
        logger.open(run.path)
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


def open_sweep_record(sweep_dir: Path, uri: str | None) -> None:
    """The parent run of the sweep in ``sweep_dir`` in MLflow (``MlflowSweep``), ended
    with the best configuration's mean metric, for its trials to be written as its
    children; its tracking store as its base config's. SweepError when the folder's
    spec or ledger cannot be read."""
    from ..sweep.folder import saved_spec, trial_table
    from ..sweep.results import best_configuration
    from .mlflow import MlflowSweep

    spec = saved_spec(sweep_dir)
    best = best_configuration(trial_table(sweep_dir, spec), spec)
    record = MlflowSweep(with_uri(load_saved_config(SweepLayout(sweep_dir).base), uri))
    record.open(sweep_dir, spec.raw)
    record.end(spec.metric, best.mean if best else None, "FINISHED")


def export(path: str | Path, to: str, uri: str | None = None, say=None) -> dict[Path, str]:
    """``replay`` each run folder of ``path`` (a run, a k-fold run, a sweep: its trials
    as children of the sweep's parent run in MLflow); ``say(folder, where)`` hears each
    as it is written. LoggerError when ``path`` holds no run folder."""
    check_target(to)
    folders = run_folders(path)
    if not folders:
        raise LoggerError(f"{path}: no run folder (config.yaml and metrics.jsonl) in it")
    if to == "mlflow" and SweepLayout(path).is_sweep:
        logger_class(to)  # the package, or the extra to install
        open_sweep_record(Path(path), uri)
    written = {}
    for folder in folders:
        written[folder] = replay(folder, to, uri)
        if say is not None:
            say(folder, written[folder])
    return written
