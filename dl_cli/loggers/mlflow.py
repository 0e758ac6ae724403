"""MLflow: one MLflow run per run folder, through ``MlflowClient`` (``pip install
'dl-cli[mlflow]'``, which installs mlflow-skinny).

Where: ``train.mlflow.uri`` when set, else ``$MLFLOW_TRACKING_URI``, else the file store
``./mlruns`` (of the working folder; made absolute, so a sweep's workers share it). MLflow
3 keeps file stores in maintenance mode and refuses them unless
``MLFLOW_ALLOW_FILE_STORE=true``; a file store named here is opted in (a database such
as ``sqlite:///mlflow.db`` needs no opt-in). Browse them with ``mlflow ui
--backend-store-uri ./mlruns`` (the full mlflow package).

What: the experiment is the config's ``name`` (a sweep's trials: the sweep's name, each
trial a run); the MLflow run is named after the run folder and tagged ``dl.run_dir`` with
its path, and a resumed run continues the MLflow run of the same folder. Params: the
resolved config as flat dotted keys (``optimizer.lr``, ``model.layers.0.units``). Metrics
under their metrics.jsonl names and ``epoch``, at the record's step (iterations so far), as
in ``tensorboard.py``, then ``test/*`` and ``best/<monitor>``; tags ``dl.status`` and
``dl.best_epoch``, and the run ends FINISHED, KILLED (interrupted) or FAILED.

A tracking server that cannot be reached is a LoggerError before training: the first
requests are tried once, with a 10-second timeout. Later requests are tried three times.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from urllib.parse import urlparse

import yaml
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from ..layout import RunLayout, SweepLayout
from ..schema import Config
from .base import Logger, LoggerError, hyperparameters, scalars, test_metrics, weight_norms

DEFAULT_STORE = "mlruns"
BATCH = {"params": 100, "metrics": 1000}  # the most MLflow takes in one log_batch


def tracking_uri(cfg: Config) -> str:
    """The config's URI, else the environment's, else ``./mlruns`` as an absolute file URI."""
    uri = cfg.train.mlflow.uri or os.environ.get("MLFLOW_TRACKING_URI")
    return uri or Path(DEFAULT_STORE).resolve().as_uri()


def is_file_store(uri: str) -> bool:
    return urlparse(uri).scheme in ("", "file")


@contextlib.contextmanager
def requests_tried(times: int, timeout_s: int = 10):
    """MLflow's HTTP requests tried ``times`` in all, each waiting ``timeout_s`` at most,
    unless the environment sets its own (read by MLflow at each request)."""
    settings = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(times - 1),
                "MLFLOW_HTTP_REQUEST_TIMEOUT": str(timeout_s)}
    added = [key for key in settings if key not in os.environ]
    os.environ.update({key: settings[key] for key in added})
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def sweep_name(run_dir: Path) -> str | None:
    """The name of the sweep whose trial ``run_dir`` is (its spec.yaml's), else None."""
    folder = RunLayout(run_dir).sweep()
    if folder is None or not SweepLayout(folder).spec.exists():
        return None
    spec = yaml.safe_load(SweepLayout(folder).spec.read_text())
    return spec.get("name") if isinstance(spec, dict) else None


def chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


class MlflowLogger(Logger):
    """Logs a run to MLflow; LoggerError when its tracking server cannot be reached (the
    run is created here, before training)."""

    name = "mlflow"

    def __init__(self, cfg: Config, run_dir: str | Path):
        self.cfg, self.run_dir = cfg, Path(run_dir).resolve()
        self.uri = tracking_uri(cfg)
        if is_file_store(self.uri):
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.layer_names = {i: spec if isinstance(spec, str) else spec["type"]
                            for i, spec in enumerate(cfg.model.layers)}
        experiment = sweep_name(self.run_dir) or cfg.name
        try:
            with requests_tried(1):
                self.client = MlflowClient(tracking_uri=self.uri)
                self.experiment_id = self.experiment(experiment)
                self.run_id, self.resumed = self.open_run()
        except Exception as error:  # MLflow raises many kinds: connection, permission, ...
            raise LoggerError(f"train.loggers: mlflow cannot start a run at {self.uri} "
                              f"(experiment {experiment!r}): {type(error).__name__}: "
                              f"{str(error).splitlines()[0] if str(error) else ''}") from None

    def experiment(self, name: str) -> str:
        """The id of experiment ``name``, made if missing (by another process at the same
        time, too: then its id is read again)."""
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        try:
            return self.client.create_experiment(name)
        except Exception:
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id

    def open_run(self) -> tuple[str, bool]:
        """The id of the MLflow run of this run folder, and whether it existed: the one
        tagged with its path (a resumed run), else a new one."""
        folder = str(self.run_dir).replace("'", "\\'")
        found = self.client.search_runs([self.experiment_id], max_results=1,
                                        filter_string=f"tags.`dl.run_dir` = '{folder}'")
        if found:
            return found[0].info.run_id, True
        run = self.client.create_run(self.experiment_id, run_name=self.run_dir.name,
                                     tags={"dl.run_dir": str(self.run_dir)})
        return run.info.run_id, False

    # -- writing ---------------------------------------------------------------------
    def log(self, step: int, numbers: dict[str, float]) -> None:
        stamp = int(time.time() * 1000)
        metrics = [Metric(key, value, stamp, int(step)) for key, value in numbers.items()]
        with requests_tried(3):
            for part in chunks(metrics, BATCH["metrics"]):
                self.client.log_batch(self.run_id, metrics=part)

    # -- the Solver's events ---------------------------------------------------------
    def start(self, epoch: int, step: int) -> None:
        params = [Param(key, str(value)) for key, value in hyperparameters(self.cfg).items()]
        with requests_tried(3):
            if self.resumed:
                self.client.update_run(self.run_id, status="RUNNING")
            for part in chunks(params, BATCH["params"]):
                self.client.log_batch(self.run_id, params=part)

    def iteration(self, record: dict) -> None:
        self.log(record["step"], scalars(record))

    def epoch(self, record: dict, params: dict | None = None, grads: dict | None = None) -> None:
        numbers = {"epoch": float(record["epoch"]), **scalars(record)}
        if params is not None and "layers" in record:
            numbers.update(weight_norms(params, self.layer_names))
        self.log(record["step"], numbers)

    def end(self, summary: dict) -> None:
        self.log(summary.get("steps") or 0, test_metrics(summary))
        best = summary.get("best")
        if summary.get("best_value") is not None and best is not None:
            self.log(best["step"], {f"best/{summary['monitor']}": float(summary["best_value"])})
        status = summary.get("status")
        with requests_tried(3):
            self.client.set_tag(self.run_id, "dl.status", str(status))
            self.client.set_tag(self.run_id, "dl.best_epoch", str(summary.get("best_epoch")))
            self.client.set_terminated(self.run_id, {"completed": "FINISHED", "early_stopped": "FINISHED",
                                                     "interrupted": "KILLED"}.get(status, "FAILED"))
