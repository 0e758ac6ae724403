"""Fixtures of the sweep tests: `dl sweep` itself, and readers of what a sweep folder
holds (results.csv, the ledger's events, a trial's metrics)."""

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dl_cli.cli.app import app
from dl_cli.sweep.ledger import Ledger
from dl_cli.sweep.spec import SpecError, load_spec


@pytest.fixture(scope="session")
def sweep():
    """``sweep(spec, folder, *args)``: ``dl sweep SPEC --sweep-dir FOLDER ARGS``."""
    runner = CliRunner()

    def run(spec: Path, folder: Path, *args: str):
        return runner.invoke(app, ["sweep", str(spec), "--sweep-dir", str(folder), *args])
    return run


@pytest.fixture(scope="session")
def rows():
    """``rows(folder)``: the rows of the sweep's results.csv."""
    def read(folder: Path) -> list[dict]:
        with open(folder / "results.csv") as f:
            return list(csv.DictReader(f))
    return read


@pytest.fixture(scope="session")
def outcomes(rows):
    """``outcomes(folder)``: what must not depend on scheduling: each trial's params,
    metric, status, epochs."""
    def read(folder: Path) -> list[tuple]:
        return [(r["trial"], r["optimizer.lr"], r["val/acc"], r["status"], r["epochs"])
                for r in rows(folder)]
    return read


@pytest.fixture(scope="session")
def metric_lines():
    """``metric_lines(run_dir)``: the run's metrics.jsonl records, without their times."""
    def read(run_dir: Path) -> list[dict]:
        lines = [json.loads(s) for s in (run_dir / "metrics.jsonl").read_text().splitlines()]
        for line in lines:
            line.pop("time", None)
        return lines
    return read


@pytest.fixture(scope="session")
def events():
    """``events(folder, kind)``: the ledger's events of that kind, in order."""
    def read(folder: Path, kind: str) -> list[dict]:
        return [e for e in Ledger(folder / "ledger.jsonl").events() if e["event"] == kind]
    return read


@pytest.fixture(scope="session")
def spec_errors(write_sweep):
    """``spec_errors(folder, spec, overrides=())``: the mistakes ``load_spec`` finds in ``spec``."""
    def errors(folder: Path, spec: dict, overrides: list[str] = ()) -> list[str]:
        with pytest.raises(SpecError) as caught:
            load_spec(write_sweep(folder, spec), list(overrides))
        return caught.value.errors
    return errors


@pytest.fixture
def variants() -> dict:
    """Two variants of ``tiny_config()``: its relu, and tanh with Xavier's initializer."""
    return {"relu": {"model.layers.1": "relu"},
            "tanh": {"model.layers.1": "tanh", "model.init": "xavier_normal"}}
