"""Loggers: TensorBoard event files and MLflow runs hold what metrics.jsonl holds; a logger
that cannot start stops the run before training; one failing mid-run does not."""

import csv
import json
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dl_cli import training
from dl_cli.checks import ConfigError
from dl_cli.cli.app import app
from dl_cli.config import load_config
from dl_cli.loggers import Guarded, Logger, start_loggers
from dl_cli.loggers.replay import export, replay

runner = CliRunner()


@pytest.fixture(scope="session")
def logged(tiny_config):
    """The config these tests log, runs/tiny: 80 spiral points per class, 4 epochs of 8
    iterations, a step schedule, the batch loss every 2 iterations, diagnostics, and
    histograms every 2 epochs."""
    return tiny_config(name="tiny", seed=0, samples=80,
                       schedule={"type": "step", "every": 2, "gamma": 0.5},
                       train={"epochs": 4, "batch_size": 16, "log_every": 2, "diagnostics": True,
                              "tensorboard": {"histograms_every": 2}})


@pytest.fixture(scope="session")
def train(write_config, logged):
    """``train(folder, *overrides)``: ``dl train`` of the logged config written in ``folder``."""
    def run(folder: Path, *overrides: str):
        return runner.invoke(app, ["train", str(write_config(folder, logged)), "-q", *overrides])
    return run


def the_run(folder: Path) -> Path:
    (run,) = [path for path in (folder / "runs" / "tiny").iterdir() if path.name != "latest"]
    return run


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def epoch_numbers(run: Path) -> dict[tuple[int, str], float]:
    """(step, name) → value of every number of metrics.jsonl's epoch lines, the epoch too."""
    out = {}
    for record in records(run):
        if "lr" not in record:
            continue
        out[record["step"], "epoch"] = float(record["epoch"])
        out.update({(record["step"], key): float(value) for key, value in record.items()
                    if "/" in key or key in ("lr", "time")})
        for row in record.get("layers", []):
            out.update({(record["step"], f"layers/{row['index']}.{row['layer']}/{stat}"): value
                        for stat, value in row.items() if stat not in ("index", "layer")})
    return out


# -- TensorBoard ----------------------------------------------------------------------
def accumulator(folder: Path):
    """TensorBoard's own reader of the event files in ``folder``, every point kept."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "histograms": 0,
                                                          "tensors": 0})
    events.Reload()
    return events


def event_scalars(folder: Path) -> dict[tuple[int, str], float]:
    events = accumulator(folder)
    return {(e.step, tag): e.value for tag in events.Tags()["scalars"] for e in events.Scalars(tag)}


def test_tensorboard_holds_every_number_of_every_epoch(tmp_path, train):
    pytest.importorskip("tensorboard")
    result = train(tmp_path, "train.loggers=[tensorboard]")
    assert result.exit_code == 0, result.output
    run = the_run(tmp_path)
    scalars = event_scalars(run / "tensorboard")
    expected = epoch_numbers(run)
    assert len(expected) == 4 * 19  # 4 epochs: 8 numbers and 11 layer statistics each
    for key, value in expected.items():
        assert scalars[key] == pytest.approx(value, rel=1e-6, abs=1e-12), key  # stored as float32
    batches = {(r["step"], "train/batch_loss"): r["train/batch_loss"] for r in records(run)
               if "train/batch_loss" in r}
    assert len(batches) == 16  # every second of 4 × 8 iterations
    assert all(scalars[key] == pytest.approx(value, rel=1e-6) for key, value in batches.items())
    summary = json.loads((run / "summary.json").read_text())
    final = summary["steps"]
    assert scalars[final, "test/acc"] == pytest.approx(summary["test"]["test/acc"])
    assert scalars[summary["best"]["step"], "best/val/acc"] == pytest.approx(summary["best_value"])
    assert {tag for _, tag in scalars if tag.endswith("weight_norm")} == {
        "layers/0.affine/weight_norm", "layers/2.affine/weight_norm"}

    events = accumulator(run / "tensorboard")
    assert sorted(events.Tags()["histograms"]) == sorted(
        [f"{kind}/{p}" for kind in ("weights", "gradients") for p in ("0.W", "0.b", "2.W", "2.b")])
    epoch_steps = {r["epoch"]: r["step"] for r in records(run) if "lr" in r}
    assert [e.step for e in events.Histograms("weights/0.W")] == [epoch_steps[2], epoch_steps[4]]
    assert events.Histograms("weights/0.W")[0].histogram_value.num == 2 * 16


def hparams_of(folder: Path) -> dict:
    from tensorboard.plugins.hparams import metadata

    events = accumulator(folder)
    content = events.SummaryMetadata(metadata.SESSION_START_INFO_TAG).plugin_data.content
    start = metadata.parse_session_start_info_plugin_data(content)
    values = {}
    for key, value in start.hparams.items():
        kind = value.WhichOneof("kind")
        values[key] = getattr(value, kind)
    return values


def test_tensorboard_hparams_are_the_resolved_config_and_the_run_folder(tmp_path, train):
    pytest.importorskip("tensorboard")
    assert train(tmp_path, "train.loggers=[tensorboard]", "optimizer.lr=0.02").exit_code == 0
    run = the_run(tmp_path)
    hparams = hparams_of(run / "tensorboard")
    assert hparams["optimizer.lr"] == 0.02 and hparams["model.layers.0.units"] == 16
    assert hparams["model.layers.1"] == "relu" and hparams["train.diagnostics"] is True
    assert hparams["run_dir"] == str(run)


def test_a_resumed_run_shows_each_epoch_once_with_its_final_values(tmp_path, train, interrupt_at):
    pytest.importorskip("tensorboard")
    with interrupt_at(20):  # in epoch 3 of 4, 8 iterations each
        result = train(tmp_path, "train.loggers=[tensorboard]", "checkpoint.every_seconds=0")
    assert result.exit_code == 130, result.output
    run = the_run(tmp_path)
    result = runner.invoke(app, ["train", "--resume", str(run), "-q"])
    assert result.exit_code == 0, result.output
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 2
    scalars = event_scalars(run / "tensorboard")
    for key, value in epoch_numbers(run).items():
        if key[1] != "time":  # a resumed epoch counts its time from its resumption
            assert scalars[key] == pytest.approx(value, rel=1e-6, abs=1e-12), key
    epochs = sorted(step for step, tag in scalars if tag == "val/acc")
    assert epochs == [r["step"] for r in records(run) if "lr" in r]


# -- MLflow ---------------------------------------------------------------------------
def mlflow_client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def test_mlflow_holds_the_params_every_epochs_metrics_and_the_test_metrics(tmp_path, monkeypatch,
                                                                           train):
    mlflow = pytest.importorskip("mlflow")
    uri = (tmp_path / "mlruns").as_uri()
    result = train(tmp_path, "train.loggers=[mlflow]", f"train.mlflow.uri={uri}")
    assert result.exit_code == 0, result.output
    run_dir = the_run(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # where mlflow.search_runs looks
    (run,) = mlflow.search_runs(experiment_names=["tiny"], output_format="list")
    assert run.info.status == "FINISHED" and run.info.run_name == run_dir.name
    assert run.data.tags["dl.run_dir"] == str(run_dir) and run.data.tags["dl.status"] == "completed"
    assert run.data.params["optimizer.lr"] == "0.01"
    assert run.data.params["model.layers.2.units"] == "3"
    assert run.data.params["train.loggers.0"] == "mlflow"
    client = mlflow_client(uri)
    for (step, name), value in epoch_numbers(run_dir).items():
        history = {m.step: m.value for m in client.get_metric_history(run.info.run_id, name)}
        assert history[step] == pytest.approx(value, rel=1e-12, abs=1e-15), (step, name)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert run.data.metrics["test/acc"] == summary["test"]["test/acc"]
    assert run.data.metrics[f"best/{summary['monitor']}"] == summary["best_value"]


def test_each_fold_of_a_kfold_run_is_a_run_of_its_own_in_both_tools(tmp_path, train):
    pytest.importorskip("tensorboard")
    pytest.importorskip("mlflow")
    uri = (tmp_path / "mlruns").as_uri()
    result = train(tmp_path, "train.loggers=[tensorboard, mlflow]", f"train.mlflow.uri={uri}",
                   "validation.kfold=2", "train.epochs=2")
    assert result.exit_code == 0, result.output
    folds = [the_run(tmp_path) / f"fold-{i}" for i in (0, 1)]
    for fold in folds:
        scalars = event_scalars(fold / "tensorboard")
        assert {key: value for key, value in scalars.items() if key[1] == "val/acc"} == \
            pytest.approx({(r["step"], "val/acc"): r["val/acc"] for r in records(fold) if "lr" in r})
    client = mlflow_client(uri)
    runs = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    assert sorted(r.data.tags["dl.run_dir"] for r in runs) == [str(f.resolve()) for f in folds]
    assert {r.info.status for r in runs} == {"FINISHED"}


def test_mlflow_finds_its_tracking_uri_in_the_environment(tmp_path, monkeypatch, train):
    pytest.importorskip("mlflow")
    uri = (tmp_path / "elsewhere").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert train(tmp_path, "train.loggers=[mlflow]").exit_code == 0
    experiment = mlflow_client(uri).get_experiment_by_name("tiny")
    assert len(mlflow_client(uri).search_runs([experiment.experiment_id])) == 1


def test_mlflow_defaults_to_mlruns_in_the_working_folder(tmp_path, monkeypatch, train):
    pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert train(tmp_path, "train.loggers=[mlflow]").exit_code == 0
    client = mlflow_client((tmp_path / "mlruns").as_uri())
    assert len(client.search_runs([client.get_experiment_by_name("tiny").experiment_id])) == 1


# -- starting and failing -------------------------------------------------------------
def run_folders(folder: Path) -> list[Path]:
    """Every folder under ``folder``/runs: none when no run was started."""
    return sorted((folder / "runs").rglob("*")) if (folder / "runs").exists() else []


@pytest.mark.parametrize("kfold", [None, 3])
def test_an_unreachable_tracking_server_stops_the_run_before_its_folder_is_made(
        tmp_path, kfold, train):
    pytest.importorskip("mlflow")
    more = [f"validation.kfold={kfold}"] if kfold else []
    result = train(tmp_path, "train.loggers=[tensorboard, mlflow]",
                   "train.mlflow.uri=http://127.0.0.1:9", *more)
    assert result.exit_code == 2
    assert "train.loggers: mlflow cannot start a run at http://127.0.0.1:9" in result.output
    assert "Traceback" not in result.output
    assert run_folders(tmp_path) == []


@pytest.mark.parametrize("command", ["train", "sweep"])
def test_a_missing_package_names_the_extra_to_install(tmp_path, monkeypatch, command, train,
                                                      write_sweep):
    for name in [m for m in sys.modules if m.split(".")[0] == "tensorboard"] + ["tensorboard"]:
        monkeypatch.setitem(sys.modules, name, None)  # as if it were not installed
    monkeypatch.delitem(sys.modules, "dl_cli.loggers.tensorboard", raising=False)
    if command == "train":
        result = train(tmp_path, "train.loggers=[tensorboard]")
    else:
        spec = write_sweep(tmp_path, "train.loggers=[tensorboard]")
        result = runner.invoke(app, ["sweep", str(spec), "--sweep-dir", str(tmp_path / "sweep")])
        assert not (tmp_path / "sweep").exists()
    assert result.exit_code == 2
    assert "train.loggers: tensorboard needs the tensorboard package" in result.output
    assert "pip install 'dl-cli[tensorboard]'" in result.output
    assert run_folders(tmp_path) == []


def test_a_logger_failing_mid_run_is_warned_about_once_and_training_goes_on(tmp_path, logged,
                                                                            write_config):
    """The MLflow file store disappears after epoch 1: one warning, every epoch trained."""
    pytest.importorskip("mlflow")
    store = tmp_path / "mlruns"
    cfg = load_config(write_config(tmp_path, logged), ["train.loggers=[mlflow]",
                                               f"train.mlflow.uri={store.as_uri()}"])
    parts = training.assemble(cfg)
    run = training.start(cfg)
    warnings = []
    loggers = [Guarded(logger, warnings.append) for logger in start_loggers(cfg)]
    for logger in loggers:
        logger.open(run.path)

    def remove_the_store(event, payload):
        if event == "epoch" and payload["record"]["epoch"] == 1:
            shutil.rmtree(store)

    solver = training.make_solver(cfg, parts, run, progress=False,
                                  observers=[remove_the_store, *loggers])
    summary = solver.train()
    for logger in loggers:
        logger.close()
    assert summary["status"] == "completed" and summary["epochs"] == 4
    assert len([r for r in records(run.path) if "lr" in r]) == 4
    (warning,) = warnings
    assert warning.startswith("the mlflow logger failed at its epoch event (")
    assert f"{store}' does not exist" in warning
    assert warning.endswith("training goes on without it, and the run folder keeps every metric")


class Failing(Logger):
    name = "failing"

    def __init__(self):
        self.heard, self.closed = [], 0

    def epoch(self, record, params=None, grads=None):
        self.heard.append(record["epoch"])
        raise OSError(28, "No space left on device")

    def close(self):
        self.closed += 1


def test_the_guard_stops_passing_events_after_the_first_failure():
    warnings, failing = [], Failing()
    guarded = Guarded(failing, warnings.append)
    for epoch in (1, 2, 3):
        guarded("epoch", {"record": {"epoch": epoch}})
    guarded("end", {"summary": {}})
    guarded.close()
    assert failing.heard == [1] and failing.closed == 1
    assert warnings == ["the failing logger failed at its epoch event (OSError: [Errno 28] No space "
                        "left on device); training goes on without it, and the run folder keeps "
                        "every metric"]


# -- the config -----------------------------------------------------------------------
@pytest.mark.parametrize("override, error", [
    ("train.loggers=[tensorbord]", "train.loggers: unknown value 'tensorbord' (did you mean "
                                   "'tensorboard'?); allowed: tensorboard, mlflow"),
    ("train.loggers=[mlflow, mlflow]", "train.loggers: names mlflow more than once"),
    ("train.loggers=tensorboard", "train.loggers: must be a list of names from tensorboard, "
                                  "mlflow, got 'tensorboard' (string)"),
    ("train.loggers=[1]", "train.loggers: unknown value 1; allowed: tensorboard, mlflow"),
    ("train.mlflow.uri=''", "train.mlflow.uri: must not be empty"),
    ("train.tensorboard.histograms_every=-1", "train.tensorboard.histograms_every: must be >= 0"),
    ("train.mlflow.url=x", "train.mlflow.url: unknown key (did you mean 'uri'?)"),
])
def test_logger_keys_are_checked(tmp_path, override, error, logged, write_config):
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(tmp_path, logged), [override])
    assert any(line.startswith(error) for line in caught.value.errors), caught.value.errors


def test_no_logger_by_default(tmp_path, logged, write_config, train):
    cfg = load_config(write_config(tmp_path, logged))
    assert cfg.train.loggers == [] and cfg.train.mlflow.uri is None
    assert train(tmp_path).exit_code == 0
    assert not (the_run(tmp_path) / "tensorboard").exists()


# -- replaying a run folder -----------------------------------------------------------
def test_replay_writes_a_run_trained_without_loggers(tmp_path, train):
    pytest.importorskip("tensorboard")
    pytest.importorskip("mlflow")
    assert train(tmp_path).exit_code == 0
    run = the_run(tmp_path)
    assert replay(run, "tensorboard") == str(run / "tensorboard")
    scalars = event_scalars(run / "tensorboard")
    for key, value in epoch_numbers(run).items():
        assert scalars[key] == pytest.approx(value, rel=1e-6, abs=1e-12), key
    summary = json.loads((run / "summary.json").read_text())
    assert scalars[summary["steps"], "test/acc"] == pytest.approx(summary["test"]["test/acc"])
    assert hparams_of(run / "tensorboard")["optimizer.lr"] == 0.01

    uri = (tmp_path / "mlruns").as_uri()
    run_id = replay(run, "mlflow", uri=uri)
    client = mlflow_client(uri)
    history = {m.step: m.value for m in client.get_metric_history(run_id, "val/acc")}
    assert history == {r["step"]: r["val/acc"] for r in records(run) if "lr" in r}
    assert client.get_run(run_id).data.metrics["test/acc"] == summary["test"]["test/acc"]


def test_replay_writes_a_run_once(tmp_path, train):
    from dl_cli.loggers import LoggerError

    pytest.importorskip("tensorboard")
    pytest.importorskip("mlflow")
    assert train(tmp_path).exit_code == 0
    run = the_run(tmp_path)
    replay(run, "tensorboard")
    with pytest.raises(LoggerError, match="tensorboard exists already"):
        replay(run, "tensorboard")
    uri = (tmp_path / "mlruns").as_uri()
    replay(run, "mlflow", uri=uri)
    with pytest.raises(LoggerError, match="holds this run already"):
        replay(run, "mlflow", uri=uri)


LRS = {"name": "lrs", "method": "grid", "params": {"optimizer.lr": {"values": [0.01, 0.1]}}}


@pytest.fixture(scope="session")
def write_sweep(write_config, logged):
    """``write_sweep(folder, *overrides)``: a grid over two learning rates of the logged
    config trained for 2 epochs, the overrides applied to it."""
    def write(folder: Path, *overrides: str) -> Path:
        base = write_config(folder, {**logged, "train": {"epochs": 2, "batch_size": 16}})
        spec = folder / "sweep.yaml"
        spec.write_text(yaml.safe_dump({"base": str(base), **LRS, "overrides": list(overrides)}))
        return spec
    return write


def sweep_runs(uri: str, sweep_dir: Path):
    """The sweep's parent MLflow run and its children, which each name it as parent."""
    client = mlflow_client(uri)
    runs = client.search_runs([client.get_experiment_by_name("lrs").experiment_id])
    (parent,) = [r for r in runs if "dl.sweep_dir" in r.data.tags]
    assert parent.data.tags["dl.sweep_dir"] == str(sweep_dir.resolve())
    children = [r for r in runs if r is not parent]
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in children)
    return parent, sorted(children, key=lambda r: r.data.tags["dl.run_dir"])


def check_sweep_in_mlflow(uri: str, sweep_dir: Path) -> None:
    parent, children = sweep_runs(uri, sweep_dir)
    assert parent.info.status == "FINISHED" and parent.info.run_name == sweep_dir.name
    assert parent.data.params["method"] == "grid" and parent.data.params["metric"] == \
        json.dumps({"name": "val/acc", "goal": "max"})
    assert json.loads(parent.data.params["params.optimizer.lr"]) == {"values": [0.01, 0.1]}
    results = list(csv.DictReader((sweep_dir / "results.csv").open()))
    assert parent.data.metrics["best/val/acc"] == pytest.approx(max(float(r["val/acc"]) for r in results))
    assert [r.data.tags["dl.run_dir"] for r in children] == [
        str((sweep_dir / f"trial-000{i}").resolve()) for i in (0, 1)]
    assert [r.data.params["optimizer.lr"] for r in children] == ["0.01", "0.1"]
    for child, result in zip(children, results):
        assert child.info.status == "FINISHED"
        assert child.data.metrics["best/val/acc"] == pytest.approx(float(result["val/acc"]))


def test_a_sweep_logs_its_trials_as_children_of_one_parent_run(tmp_path, write_sweep):
    pytest.importorskip("mlflow")
    uri = (tmp_path / "mlruns").as_uri()
    spec = write_sweep(tmp_path, "train.loggers=[mlflow]", f"train.mlflow.uri={uri}")
    result = runner.invoke(app, ["sweep", str(spec), "--sweep-dir", str(tmp_path / "sweep")])
    assert result.exit_code == 0, result.output
    check_sweep_in_mlflow(uri, tmp_path / "sweep")


def test_a_sweep_whose_tracking_server_is_unreachable_makes_no_folder(tmp_path, write_sweep):
    pytest.importorskip("mlflow")
    spec = write_sweep(tmp_path, "train.loggers=[mlflow]", "train.mlflow.uri=http://127.0.0.1:9")
    result = runner.invoke(app, ["sweep", str(spec), "--sweep-dir", str(tmp_path / "sweep")])
    assert result.exit_code == 2
    assert "train.loggers: mlflow cannot start a run at http://127.0.0.1:9" in result.output
    assert not (tmp_path / "sweep").exists()


def test_export_writes_each_trial_of_a_sweep_under_its_parent_run(tmp_path, write_sweep):
    pytest.importorskip("mlflow")
    spec = write_sweep(tmp_path)
    result = runner.invoke(app, ["sweep", str(spec), "--sweep-dir", str(tmp_path / "sweep")])
    assert result.exit_code == 0, result.output
    uri = (tmp_path / "mlruns").as_uri()
    written = export(tmp_path / "sweep", "mlflow", uri=uri)
    assert [p.name for p in written] == ["trial-0000", "trial-0001"]
    check_sweep_in_mlflow(uri, tmp_path / "sweep")


def exported(path: Path, capsys, to: str, uri: str | None = None) -> tuple[int, str]:
    """The exit code and the output (stdout, then stderr) of ``dl export PATH --to TO``."""
    result = runner.invoke(app, ["export", str(path), "--to", to,
                                 *(["--uri", uri] if uri is not None else [])])
    return result.exit_code, result.output


def test_dl_export_to_writes_a_run_to_tensorboard_and_to_mlflow(tmp_path, capsys, train):
    pytest.importorskip("tensorboard")
    pytest.importorskip("mlflow")
    assert train(tmp_path).exit_code == 0
    run = the_run(tmp_path)
    code, output = exported(run, capsys, "tensorboard")
    assert code == 0, output
    assert output.strip() == f"{run} → {run / 'tensorboard'}"
    assert event_scalars(run / "tensorboard")[records(run)[-1]["step"], "val/acc"] == \
        pytest.approx(records(run)[-1]["val/acc"])
    uri = (tmp_path / "mlruns").as_uri()
    code, output = exported(run, capsys, "mlflow", uri)
    assert code == 0, output
    run_id = output.split("→")[1].strip()
    assert mlflow_client(uri).get_run(run_id).data.tags["dl.run_dir"] == str(run.resolve())
    code, output = exported(run, capsys, "mlflow", uri)
    assert code == 2 and "holds this run already" in output


@pytest.mark.parametrize("args, message", [
    (["wandb"], "--to: unknown logger 'wandb'; allowed: tensorboard, mlflow"),
    (["tensorboard", "file:///x"], "--uri names an MLflow tracking store"),
])
def test_dl_export_to_refuses_what_it_cannot_write(tmp_path, capsys, args, message, train):
    assert train(tmp_path).exit_code == 0
    code, output = exported(the_run(tmp_path), capsys, *args)
    assert code == 2 and message in output, output


def test_dl_export_writes_either_a_model_or_records(tmp_path, train):
    assert train(tmp_path).exit_code == 0
    result = runner.invoke(app, ["export", str(the_run(tmp_path)), "--to", "tensorboard",
                                 "--format", "onnx"])
    assert result.exit_code == 2 and "give one or the other" in result.output
    result = runner.invoke(app, ["export", str(the_run(tmp_path)), "--uri", "file:///x"])
    assert result.exit_code == 2 and "--uri names an MLflow tracking store" in result.output


def test_dl_export_to_says_a_folder_holds_no_run(tmp_path, capsys):
    code, output = exported(tmp_path, capsys, "tensorboard")
    assert code == 2
    assert f"{tmp_path}: no run folder (config.yaml and metrics.jsonl) in it" in output


# -- the Solver's events --------------------------------------------------------------
def test_the_solver_tells_its_observers_each_event_in_order(tmp_path, logged, write_config):
    cfg = load_config(write_config(tmp_path, logged), ["train.epochs=2"])
    parts = training.assemble(cfg)
    heard = []
    solver = training.make_solver(cfg, parts, None, progress=False)
    solver.observers.append(lambda event, payload: heard.append((event, payload)))
    summary = solver.train()
    events = [event for event, _ in heard]
    assert events == ["start", *(["iteration"] * 4 + ["epoch"]) * 2, "end"]
    assert heard[0][1] == {"epoch": 0, "step": 0}
    epochs = [payload for event, payload in heard if event == "epoch"]
    assert [p["record"] for p in epochs] == solver.history
    assert epochs[-1]["params"] is parts.model.params
    assert set(epochs[-1]["grads"]) == set(parts.model.params)
    assert heard[-1][1]["summary"] is summary
