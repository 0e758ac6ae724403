"""`dl runs`: a row per run and per sweep, with its start and duration; --name, --sort,
--last and --trials."""

import json
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dl_cli.cli.app import app
from dl_cli.layout import named_runs
from dl_cli.listing import driver_seconds, duration

runner = CliRunner()
TWO_EPOCHS = {"seed": 0, "train": {"epochs": 2, "batch_size": 16}}  # of tiny_config


def dl(*args):
    return runner.invoke(app, [str(a) for a in args], terminal_width=400)


@pytest.fixture(scope="module")
def root(tmp_path_factory, tiny_config) -> Path:
    """Runs named alpha (two) and beta, and a sweep of two trials, started in this order."""
    folder = tmp_path_factory.mktemp("listing")
    runs = folder / "runs"
    for name, lr, stamp in (("alpha", 0.001, "20250101-120000-aaaaaa"),
                            ("beta", 0.05, "20250102-120000-bbbbbb"),
                            ("alpha", 0.03, "20250103-120000-cccccc")):
        config = folder / f"{name}.yaml"
        cfg = tiny_config(**TWO_EPOCHS, name=name, optimizer={"type": "adam", "lr": lr})
        config.write_text(yaml.safe_dump(cfg))
        assert dl("train", config, "--run-dir", runs / name / stamp, "-q").exit_code == 0
    (folder / "base.yaml").write_text(yaml.safe_dump(tiny_config(**TWO_EPOCHS, name="gamma")))
    spec = folder / "sweep.yaml"
    spec.write_text(yaml.safe_dump({"base": str(folder / "base.yaml"), "name": "gamma",
                                    "method": "grid",
                                    "params": {"optimizer.lr": {"values": [0.01, 0.1]}}}))
    sweep = dl("sweep", spec, "--sweep-dir", runs / "gamma" / "20250104-090000-dddddd")
    assert sweep.exit_code == 0, sweep.output
    return runs


def table_rows(output: str) -> list[str]:
    return [line.split("│")[1].strip() for line in output.splitlines()
            if line.startswith("│") and line.split("│")[1].strip()]


def best_of(run_dir: Path) -> float:
    return json.loads((run_dir / "summary.json").read_text())["best_value"]


def test_a_sweep_is_one_row_and_every_row_says_when_it_started(root):
    result = dl("runs", root)
    assert result.exit_code == 0, result.output
    assert table_rows(result.output) == [
        "alpha/20250101-120000-aaaaaa", "alpha/20250103-120000-cccccc",
        "beta/20250102-120000-bbbbbb", "gamma/20250104-090000-dddddd"]
    (sweep,) = [line for line in result.output.splitlines() if "gamma/" in line]
    assert "2025-01-04 09:00" in sweep and "sweep: 2 of 2 trials done" in sweep
    trials = [root / "gamma" / "20250104-090000-dddddd" / f"trial-000{i}" for i in (0, 1)]
    best = max(best_of(t) for t in trials)
    assert f"{best:.4f}"[:5] in sweep  # its best trial's score
    (first,) = [line for line in result.output.splitlines() if "aaaaaa" in line]
    assert "2025-01-01 12:00" in first and re.search(r"│ \d+s +│", first)


def test_trials_are_listed_on_request_or_for_a_sweep_folder(root):
    sweep = root / "gamma" / "20250104-090000-dddddd"
    with_trials = table_rows(dl("runs", root, "--trials").output)
    assert "gamma/20250104-090000-dddddd/trial-0000" in with_trials and len(with_trials) == 5
    assert table_rows(dl("runs", sweep).output) == ["trial-0000", "trial-0001"]


def test_name_last_and_sort_choose_and_order_the_rows(root):
    assert table_rows(dl("runs", root, "--name", "alph").output) == [
        "alpha/20250101-120000-aaaaaa", "alpha/20250103-120000-cccccc"]
    assert table_rows(dl("runs", root, "--last", "2").output) == [
        "alpha/20250103-120000-cccccc", "gamma/20250104-090000-dddddd"]
    ordered = table_rows(dl("runs", root, "--sort", "val/acc", "--trials").output)
    values = [best_of(root / row) for row in ordered]
    assert values == sorted(values, reverse=True) and len(values) == 5
    by_loss = table_rows(dl("runs", root, "--sort", "val/loss", "--name", "alpha").output)
    losses = [json.loads((root / r / "summary.json").read_text())["best"]["val/loss"] for r in by_loss]
    assert losses == sorted(losses)  # a loss sorts lowest first
    refused = dl("runs", root, "--sort", "val/f1")
    assert refused.exit_code == 2 and "--sort: no run under" in refused.output
    assert "val/acc" in refused.output
    assert dl("runs", root, "--last", "0").exit_code == 2


def test_durations_read_as_time():
    assert [duration(s) for s in (None, 4.4, 125, 3 * 3600 + 120)] == ["-", "4s", "2m05s", "3h02m"]
    events = [{"event": "sweep", "time": 0.0}, {"event": "result", "time": 10.0},
              {"event": "sweep", "time": 100.0}, {"event": "result", "time": 105.0}]
    assert driver_seconds(events) == 15.0  # the pause between the drivers does not count


def test_the_latest_link_of_a_name_folder_is_no_row_of_its_own(tmp_path, tiny_config):
    runs = tmp_path / "runs"
    config = tmp_path / "delta.yaml"
    config.write_text(yaml.safe_dump(tiny_config(**TWO_EPOCHS, name="delta", runs_dir=str(runs))))
    for _ in range(2):
        assert dl("train", config, "-q").exit_code == 0
    assert (runs / "delta" / "latest").resolve() == named_runs(runs / "delta")[-1].resolve()
    trained = sorted(p for p in (runs / "delta").iterdir() if p.name != "latest")
    assert len(trained) == 2
    assert table_rows(dl("runs", runs).output) == [f"delta/{p.name}" for p in trained]
    assert table_rows(dl("runs", runs / "delta").output) == [p.name for p in trained]
