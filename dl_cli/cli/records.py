"""``dl export --to``: what earlier runs recorded, written to the tools people watch runs in."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .output import AS_IS, fail, out


def export(
    path: Path = typer.Argument(..., metavar="RUN|SWEEP", help="A run folder, a k-fold run "
                                "(each fold) or a sweep folder (each trial)."),
    to: str = typer.Option(..., "--to", help="tensorboard: event files in each run's "
                           "tensorboard/ folder | mlflow: one MLflow run per run folder."),
    uri: Optional[str] = typer.Option(None, "--uri", help="MLflow's tracking URI (default: "
                                      "the run's train.mlflow.uri, else $MLFLOW_TRACKING_URI, "
                                      "else ./mlruns)."),
):
    """Write what earlier runs recorded to TensorBoard or MLflow, for runs trained without
    train.loggers.

    The metrics of metrics.jsonl at their steps, the resolved config as hyperparameters and
    the summary's test metrics, as a live logger writes them; a sweep's trials go to MLflow
    as the children of one parent run. A run already written is refused.

    Example: dl export runs/lr-vs-width/<sweep> --to mlflow && mlflow ui
    """
    from ..checks import ConfigError
    from ..loggers import LoggerError
    from ..loggers.replay import export as export_records
    from ..storage import RunError
    from ..sweep.ledger import SweepError

    if uri is not None and to != "mlflow":
        fail("--uri names an MLflow tracking store: it goes with --to mlflow")
    def say(folder: Path, where: str) -> None:
        out.print(f"{folder} → {where}", **AS_IS)

    try:
        export_records(path, to, uri, say=say)
    except (LoggerError, RunError, SweepError, ConfigError) as error:
        fail(str(error))
    except OSError as error:
        fail(f"cannot write {error.filename or path}: {error.strerror or error}")
