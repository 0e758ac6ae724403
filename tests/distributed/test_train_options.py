"""dl train --backend dask --workers K [--address A]: what they put in the config's
parallel section, and the mistakes they refuse (exit 2, nothing written)."""

import pytest
import yaml
from typer.testing import CliRunner

from dl_cli.cli.app import app

runner = CliRunner()


@pytest.fixture
def printed_parallel(digits_mlp):
    """``printed_parallel(*args)``: the parallel section ``dl train digits_mlp ARGS
    --print-config`` prints."""
    def printed(*args):
        result = runner.invoke(app, ["train", str(digits_mlp), *args, "--print-config"])
        assert result.exit_code == 0, result.output
        return yaml.safe_load(result.output)["parallel"]
    return printed


def test_backend_and_workers_fill_the_parallel_section(printed_parallel):
    assert printed_parallel() is None
    assert printed_parallel("--backend", "dask") == {"mode": "sync", "workers": 2, "wait": 60.0}
    assert printed_parallel("--backend", "dask", "--workers", "3")["workers"] == 3
    assert printed_parallel("parallel.mode=async", "--backend", "dask", "--workers", "4") == \
        {"mode": "async", "workers": 4, "wait": 60.0}  # dask keeps the config's mode
    assert printed_parallel("parallel.mode=async", "--workers", "4")["workers"] == 4
    assert printed_parallel("parallel.mode=async", "--backend", "local") is None


@pytest.fixture
def refused(digits_mlp, tmp_path):
    """``refused(args, message)``: ``dl train digits_mlp ARGS`` exits 2 saying ``message``
    and writes no run."""
    def check(args, message):
        result = runner.invoke(app, ["train", str(digits_mlp), *map(str, args),
                                     f"runs_dir={tmp_path / 'runs'}"])
        assert result.exit_code == 2, result.output
        assert message in " ".join(result.output.split())
        assert not (tmp_path / "runs").exists()
    return check


def test_options_that_do_not_fit_are_refused_before_anything_is_written(refused, tmp_path):
    refused(["--workers", "2"], "--workers 2 trains on Dask workers: add --backend dask")
    refused(["--backend", "local", "--workers", "2"], "add --backend dask")
    refused(["--backend", "daks"], "--backend: expected local or dask, got 'daks'")
    refused(["--backend", "dask", "--workers", "0"], "--workers: expected an integer >= 1, got 0")
    refused(["--address", "tcp://host:8786"], "--address names the Dask cluster to train on: "
                                              "add --backend dask")
    refused(["--backend", "dask", "validation.kfold=3"], "parallel: k-fold runs train in this "
                                                         "process")
    refused(["--backend", "dask", "train.diagnostics=true"], "parallel: train.diagnostics")
    not_a_scheduler_file = tmp_path / "scheduler.json"
    not_a_scheduler_file.write_text("tcp://host:8786")
    refused(["--backend", "dask", "--address", not_a_scheduler_file],
            f"--address {not_a_scheduler_file}: not a Dask scheduler file")


def test_a_resumed_run_keeps_its_parallel_section(tmp_path):
    result = runner.invoke(app, ["train", "--resume", str(tmp_path), "--workers", "2"])
    assert result.exit_code == 2
    assert "--backend and --workers do not go with --resume" in " ".join(result.output.split())
