"""The sweep folder: a resume refuses a changed spec or base, and a sweep another
driver runs."""

import subprocess
import sys

import yaml
from typer.testing import CliRunner

from dl_cli.cli.app import app

runner = CliRunner()


def test_resume_refuses_a_changed_spec_or_base(tmp_path, tiny_config, write_sweep, random_spec,
                                               sweep, events):
    spec = write_sweep(tmp_path, random_spec)
    folder = tmp_path / "sweep"
    assert sweep(spec, folder).exit_code == 0
    result = runner.invoke(app, ["sweep", str(spec), "--resume", str(folder)])
    assert result.exit_code == 0, result.output
    assert len(events(folder, "start")) == 4  # all done already

    result = runner.invoke(app, ["sweep", str(spec), "--resume", str(folder), "sweep.trials=5"])
    assert result.exit_code == 2
    assert "the spec changed" in result.output and "trials: 4 → 5" in result.output
    result = runner.invoke(app, ["sweep", "--resume", str(folder), "sweep.trials=5"])
    assert result.exit_code == 2  # without SPEC the override is still an override
    assert "the spec changed" in result.output and "trials: 4 → 5" in result.output
    write_sweep(tmp_path, random_spec, tiny_config(optimizer={"type": "sgd", "lr": 0.01}))
    result = runner.invoke(app, ["sweep", "--resume", str(folder)])
    assert result.exit_code == 2
    assert "base config" in result.output and "optimizer.type: adam → sgd" in result.output
    assert len(events(folder, "start")) == 4


def test_resume_ignores_the_key_order_of_the_base_but_not_of_params(tmp_path, write_sweep,
                                                                    tiny_config, sweep):
    spec = write_sweep(tmp_path, {"method": "grid", "params": {
        "model.layers.0.units": {"values": [4]}, "optimizer.lr": {"values": [0.01, 0.03]}}})
    folder = tmp_path / "sweep"

    base = tiny_config()

    def write_base(dataset: dict) -> None:
        text = yaml.safe_dump({**base, "data": {**base["data"], "dataset": dataset},
                               "runs_dir": str(tmp_path / "runs")}, sort_keys=False)
        (tmp_path / "base.yaml").write_text(text)

    dataset = base["data"]["dataset"]
    write_base(dataset)
    assert sweep(spec, folder).exit_code == 0
    write_base(dict(reversed(dataset.items())))  # the same content, keys in another order
    result = runner.invoke(app, ["sweep", "--resume", str(folder)])
    assert result.exit_code == 0, result.output

    saved = yaml.safe_load((folder / "spec.yaml").read_text())
    saved["params"] = dict(reversed(saved["params"].items()))
    spec.write_text(yaml.safe_dump(saved, sort_keys=False))
    result = runner.invoke(app, ["sweep", str(spec), "--resume", str(folder)])
    assert result.exit_code == 2
    assert "the spec changed" in result.output
    assert "params order: model.layers.0.units, optimizer.lr → optimizer.lr, model.layers.0.units" \
        in result.output


def test_a_second_resume_of_a_running_sweep_leaves_its_ledger_alone(tmp_path, write_sweep, sweep):
    spec = write_sweep(tmp_path, {"method": "grid", "params": {"model.layers.0.units": {"values": [4]}}})
    folder = tmp_path / "sweep"
    assert sweep(spec, folder).exit_code == 0
    before = (folder / "ledger.jsonl").read_bytes()
    driver = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (folder / "driver.lock").write_text(str(driver.pid))  # another driver runs it
        result = runner.invoke(app, ["sweep", "--resume", str(folder)])
    finally:
        driver.kill()
        driver.wait()
    assert result.exit_code == 2 and f"being run by process {driver.pid}" in result.output
    assert (folder / "ledger.jsonl").read_bytes() == before
