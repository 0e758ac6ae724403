"""MLflow: one MLflow run per run folder, through ``MlflowClient`` (``pip install
'dl-cli[mlflow]'``, which installs mlflow-skinny).

Where: ``train.mlflow.uri`` when set, else ``$MLFLOW_TRACKING_URI``, else the file store
``./mlruns`` (of the working folder; made absolute, so a sweep's workers share it). MLflow
3 keeps file stores in maintenance mode and refuses them unless
``MLFLOW_ALLOW_FILE_STORE=true``; a file store named here is opted in (a database such
as ``sqlite:///mlflow.db`` needs no opt-in). Browse them with ``mlflow ui
--backend-store-uri ./mlruns`` (the full mlflow package).

What: the experiment is the config's ``name``; the MLflow run is named after the run
folder and tagged ``dl.run_dir`` with its path, and a resumed run continues the MLflow run
of the same folder. Params: the resolved config as flat dotted keys (``optimizer.lr``,
``model.layers.0.units``). Metrics under their metrics.jsonl names and ``epoch``, at the
record's step (iterations so far), as in ``tensorboard.py``, then ``test/*`` and
``best/<monitor>``; tags ``dl.status`` and ``dl.best_epoch``, and the run ends FINISHED,
KILLED (interrupted) or FAILED.

A sweep is one parent run (``MlflowSweep``, tagged ``dl.sweep_dir``) in the experiment
named after the sweep, and each trial's run is its child (tag ``mlflow.parentRunId``),
with its parameters: MLflow's compare view lines the trials up under the sweep.

Starting is reaching the tracking store: a server that cannot be reached is a
LoggerError before any run folder is made, its requests tried once, with a 10-second
timeout. Later requests are tried three times.
"""

from __future__ import annotations

import contextlib
import json
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
MAX_PARAM = 6000                            # the longest param value MLflow keeps


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


def sweep_name(sweep_dir: Path) -> str | None:
    """The name of the sweep in ``sweep_dir`` (its spec.yaml's), else None."""
    spec_file = SweepLayout(sweep_dir).spec
    if not spec_file.exists():
        return None
    spec = yaml.safe_load(spec_file.read_text())
    return spec.get("name") if isinstance(spec, dict) else None


def chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def connect(uri: str) -> MlflowClient:
    """A client of the tracking store at ``uri``, which answered once; LoggerError when it
    cannot be reached."""
    if is_file_store(uri):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    try:
        with requests_tried(1):
            client = MlflowClient(tracking_uri=uri)
            client.search_experiments(max_results=1)
    except Exception as error:  # MLflow raises many kinds: connection, permission, ...
        first_line = str(error).splitlines()[0] if str(error) else ""
        raise LoggerError(f"train.loggers: mlflow cannot start a run at {uri} "
                          f"({type(error).__name__}: {first_line})") from None
    return client


def experiment_id(client: MlflowClient, name: str) -> str:
    """The id of experiment ``name``, made if missing (by another process at the same
    time, too: then its id is read again)."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(name)
    except Exception:
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def tagged_run(client: MlflowClient, experiment: str, tag: str, value: str) -> str | None:
    """The id of the run of ``experiment`` whose tag ``tag`` is ``value``, else None."""
    quoted = value.replace("'", "\\'")
    found = client.search_runs([experiment], max_results=1,
                               filter_string=f"tags.`{tag}` = '{quoted}'")
    return found[0].info.run_id if found else None


class MlflowLogger(Logger):
    """Logs runs to MLflow; LoggerError when its tracking store cannot be reached."""

    name = "mlflow"

    def __init__(self, cfg: Config):
        self.cfg, self.uri = cfg, tracking_uri(cfg)
        self.layer_names = {i: spec if isinstance(spec, str) else spec["type"]
                            for i, spec in enumerate(cfg.model.layers)}
        self.client = connect(self.uri)
        self.run_id: str | None = None

    def open(self, run_dir: Path) -> None:
        """The MLflow run of ``run_dir``: the one tagged with its path (a resumed run),
        else a new one; a sweep's trial in the sweep's experiment, the child of its run."""
        self.run_dir = Path(run_dir).resolve()
        sweep = RunLayout(self.run_dir).sweep()  # the sweep folder of a trial (or its fold)
        experiment = (sweep_name(sweep) if sweep else None) or self.cfg.name
        with requests_tried(3):
            self.experiment_id = experiment_id(self.client, experiment)
            found = tagged_run(self.client, self.experiment_id, "dl.run_dir", str(self.run_dir))
            self.resumed = found is not None
            if found is not None:
                self.run_id = found
                return
            tags = {"dl.run_dir": str(self.run_dir)}
            if sweep is not None:  # the child of the sweep's run, when it has one
                parent = tagged_run(self.client, self.experiment_id, "dl.sweep_dir", str(sweep))
                tags.update({"mlflow.parentRunId": parent} if parent else {})
            run = self.client.create_run(self.experiment_id, run_name=self.run_dir.name, tags=tags)
            self.run_id = run.info.run_id

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


class MlflowSweep:
    """The parent run of a sweep: made as the sweep starts (found again on a resume), in the
    experiment named after the sweep, tagged ``dl.sweep_dir``; its params are the spec's
    keys, each swept parameter's domain as ``params.<key>``. Each trial's run finds it by
    that tag and becomes its child. ``end`` logs the best configuration's mean
    ``best/<metric>`` and ends it. LoggerError when the tracking store cannot be reached."""

    def __init__(self, cfg: Config):
        self.uri = tracking_uri(cfg)
        self.client = connect(self.uri)
        self.run_id: str | None = None  # until ``open``

    def open(self, sweep_dir: Path, spec: dict) -> str:
        """The parent run of the sweep in ``sweep_dir`` (``spec``: its spec.yaml), its id."""
        folder = str(Path(sweep_dir).resolve())
        with requests_tried(3):
            experiment = experiment_id(self.client, spec["name"])
            self.run_id = tagged_run(self.client, experiment, "dl.sweep_dir", folder)
            if self.run_id is not None:
                self.client.update_run(self.run_id, status="RUNNING")
                return self.run_id
            self.run_id = self.client.create_run(experiment, run_name=Path(folder).name,
                                                 tags={"dl.sweep_dir": folder}).info.run_id
            params = [Param(key, text) for key, text in spec_params(spec).items()]
            for part in chunks(params, BATCH["params"]):
                self.client.log_batch(self.run_id, params=part)
        return self.run_id

    def end(self, metric: str, best: float | None, status: str) -> None:
        """``status``: FINISHED (every trial ended), KILLED (interrupted) or FAILED; nothing
        when no parent run was opened."""
        if self.run_id is None:
            return
        with requests_tried(3):
            if best is not None:
                self.client.log_metric(self.run_id, f"best/{metric}", float(best))
            self.client.set_terminated(self.run_id, status)


def spec_params(spec: dict) -> dict[str, str]:
    """A sweep spec's keys as MLflow params: each swept parameter's domain as
    ``params.<key>`` (JSON), the others as written; not its base config's path."""
    out = {}
    for key, value in spec.items():
        if key == "params" and isinstance(value, dict):
            out.update({f"params.{path}": json.dumps(domain) for path, domain in value.items()})
        elif key != "base":
            out[key] = value if isinstance(value, str) else json.dumps(value)
    return {key: text[:MAX_PARAM] for key, text in out.items()}
