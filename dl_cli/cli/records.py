"""What earlier runs recorded, written to the tools people watch runs in, from the command
line: ``export_records``, the work of ``dl export RUN|SWEEP --to tensorboard|mlflow``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from .output import AS_IS, fail, out


def export_records(path: Path, to: str, uri: Optional[str] = None) -> None:
    """Write what the runs in ``path`` (a run, a k-fold run: each fold, a sweep: each
    trial) recorded to ``to`` (``loggers.replay.export``), for runs trained without
    train.loggers, and print where each run went; exit 2 with the reason when it cannot
    (``uri`` without mlflow, an unknown tool, no run folder, a run written already)."""
    from ..checks import ConfigError
    from ..loggers import LoggerError
    from ..loggers.replay import export
    from ..storage import RunError
    from ..sweep.ledger import SweepError

    if uri is not None and to != "mlflow":
        fail("--uri names an MLflow tracking store: it goes with --to mlflow")

    def say(folder: Path, where: str) -> None:
        out.print(f"{folder} → {where}", **AS_IS)

    try:
        export(path, to, uri, say=say)
    except (LoggerError, RunError, SweepError, ConfigError) as error:
        fail(str(error))
    except OSError as error:
        fail(f"cannot write {error.filename or path}: {error.strerror or error}")
