"""The sweep driver: failed, diverged and interrupted trials, --fail-fast and
--retry-failed, checkpoints of outranked configurations, a killed driver resumed, and
the events it tells its observers."""

import io
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dl_cli.cli.app import app
from dl_cli.config import load_config
from dl_cli.sweep.ledger import Ledger
from dl_cli.sweep.base_config import prepare

runner = CliRunner()


def test_a_variant_sweep_records_each_trials_variant(tmp_path, tiny_config, write_sweep, variants,
                                                     sweep, rows, events):
    spec = write_sweep(tmp_path, {"method": "grid", "variants": variants})  # no params needed
    folder = tmp_path / "sweep"
    result = sweep(spec, folder)
    assert result.exit_code == 0, result.output
    assert "variant relu" in result.output and "variant tanh" in result.output
    assert [(r["trial"], r["variant"]) for r in rows(folder)] == [("0", "relu"), ("1", "tanh")]
    assert [e["variant"] for e in events(folder, "trial")] == ["relu", "tanh"]
    relu, tanh = (load_config(folder / f"trial-{i:04d}" / "config.yaml") for i in (0, 1))
    base_init = tiny_config()["model"].get("init", "he_normal")
    assert (relu.model.layers[1], relu.model.init) == ("relu", base_init)
    assert (tanh.model.layers[1], tanh.model.init) == ("tanh", "xavier_normal")
    best = (folder / "best.yaml").read_text()
    assert "# variant " in best.splitlines()[2]
    assert Ledger(folder / "ledger.jsonl").table()[1].variant == "tanh"
    result = runner.invoke(app, ["sweep", "--resume", str(folder)])
    assert result.exit_code == 0 and len(events(folder, "start")) == 2  # nothing re-run
    pytest.importorskip("matplotlib")
    result = runner.invoke(app, ["plot", str(folder), "--out", str(tmp_path / "plots")])
    assert result.exit_code == 0, result.output  # the metric against the variants
    assert (tmp_path / "plots" / "metric_vs_params.png").read_bytes()[:4] == b"\x89PNG"


FAILING = {"method": "grid", "params": {"model.layers.0": {"values": [
    {"type": "affine", "units": 8}, {"type": "conv2d", "filters": 2, "kernel": 3},
    {"type": "affine", "units": 4}]}}}


def test_a_second_ctrl_c_stops_an_in_process_trial_saving_its_state(tmp_path, write_sweep,
                                                                    tiny_config, observe_sweeps,
                                                                    sweep, events):
    from dl_cli.runs import Run

    def ctrl_c_twice_as_the_trial_trains(sweep_runner, event, payload):
        if event == "submitted":
            sweep_runner.request_stop()
            sweep_runner.request_stop()

    long = tiny_config(train={"epochs": 3000, "batch_size": 16})
    spec = write_sweep(tmp_path, {"method": "grid", "params": {"optimizer.lr": {"values": [0.01]}}},
                       long)
    folder = tmp_path / "sweep"
    with observe_sweeps(ctrl_c_twice_as_the_trial_trains):
        result = sweep(spec, folder)
    assert result.exit_code == 130, result.output
    assert [e["status"] for e in events(folder, "result")] == ["interrupted"]
    trial = folder / "trial-0000"
    saved = Run(trial).load_checkpoint("last")["meta"]["epoch"]
    assert saved < 3000 and saved == len(Run(trial).read_metrics())  # stopped, state saved
    assert not (trial / "run.lock").exists()


def test_a_trial_that_raises_is_failed_and_the_sweep_goes_on(tmp_path, write_sweep, sweep, rows):
    dry = runner.invoke(app, ["sweep", str(write_sweep(tmp_path, FAILING)), "--dry-run"])
    assert dry.exit_code == 2 and "trial 1: " in dry.output and "conv2d" in dry.output
    result = sweep(write_sweep(tmp_path, FAILING), tmp_path / "sweep")
    assert result.exit_code == 0, result.output
    assert [r["status"] for r in rows(tmp_path / "sweep")] == ["completed", "failed", "completed"]
    error = (tmp_path / "sweep" / "trial-0001" / "error.txt").read_text()
    assert error.startswith("Traceback") and "ShapeError" in error
    assert "trial 1 failed" in result.output


def test_fail_fast_starts_nothing_after_a_failure(tmp_path, write_sweep, sweep, events):
    result = sweep(write_sweep(tmp_path, FAILING), tmp_path / "sweep", "--fail-fast")
    assert result.exit_code == 1
    assert [e["trial"] for e in events(tmp_path / "sweep", "start")] == [0, 1]


def test_a_diverged_trial_is_a_result(tmp_path, write_sweep, sweep, rows):
    spec = write_sweep(tmp_path, {"method": "grid", "params": {"optimizer": {"values": [
        {"type": "sgd", "lr": 1.0e+12}, {"type": "adam", "lr": 0.01}]}}})
    result = sweep(spec, tmp_path / "sweep")
    assert result.exit_code == 0, result.output
    assert [r["status"] for r in rows(tmp_path / "sweep")] == ["diverged", "completed"]
    best = load_config(tmp_path / "sweep" / "best.yaml")
    assert best.optimizer == {"type": "adam", "lr": 0.01}


def test_retry_failed_reruns_only_the_failed_trials(tmp_path, tiny_config, write_sweep, sweep,
                                                    events, rows):
    data = tmp_path / "data.npz"
    spec = write_sweep(tmp_path, {"method": "grid", "params": {"data.dataset": {"values": [
        tiny_config()["data"]["dataset"], {"type": "npz", "path": str(data)}]}}})
    folder = tmp_path / "sweep"
    assert sweep(spec, folder).exit_code == 0
    assert [r["status"] for r in rows(folder)] == ["completed", "failed"]
    result = runner.invoke(app, ["sweep", "--resume", str(folder)])
    assert result.exit_code == 0, result.output
    assert len(events(folder, "start")) == 2  # nothing re-run
    rng = np.random.default_rng(0)
    np.savez(data, X=rng.normal(size=(60, 2)), y=np.arange(60) % 3)
    result = runner.invoke(app, ["sweep", "--resume", str(folder), "--retry-failed"])
    assert result.exit_code == 0, result.output
    assert [e["trial"] for e in events(folder, "start")] == [0, 1, 1]
    assert [r["status"] for r in rows(folder)] == ["completed", "completed"]


def with_checkpoints(folder: Path) -> set[str]:
    return {p.parent.parent.name for p in folder.rglob("checkpoints/*.npz")}


def test_checkpoints_go_once_outranked_and_stay_while_a_failed_trial_may_still_win(
        tmp_path, monkeypatch, write_sweep, sweep, rows):
    from dl_cli.sweep import runner as sweep_runner

    folder = tmp_path / "sweep"
    seen_by_last = []
    original = sweep_runner.run_trial

    def run_trial(config, trial_dir, **options):
        if trial_dir.endswith("trial-0005"):  # the last trial: what is left by then, then fail
            seen_by_last.append(with_checkpoints(folder))
            raise RuntimeError("out of luck")
        return original(config, trial_dir, **options)

    monkeypatch.setattr(sweep_runner, "run_trial", run_trial)
    spec = write_sweep(tmp_path, {"method": "grid", "seeds": [0, 1], "params": {
        "optimizer.lr": {"values": [1.0e-7, 0.01, 0.03]}}})
    result = sweep(spec, folder)
    assert result.exit_code == 0, result.output
    table = rows(folder)
    assert [r["status"] for r in table] == ["completed"] * 5 + ["failed"]
    means = {c: np.mean([float(r["val/acc"]) for r in table if r["config"] == c]) for c in "01"}
    leader, other = ("0", "1") if means["0"] >= means["1"] else ("1", "0")  # ties: lower index
    trials = {"0": {"trial-0000", "trial-0001"}, "1": {"trial-0002", "trial-0003"}}
    # both ended before the last trial started: the one outranked was already gone
    assert not seen_by_last[0] & trials[other] and trials[leader] <= seen_by_last[0]
    # config 2's completed seed stays: a retry of its failed seed may make it the best
    assert with_checkpoints(folder) == trials[leader] | {"trial-0004"}
    gone = min(trials[other])
    evaluated = runner.invoke(app, ["eval", str(folder / gone)], terminal_width=400)
    assert evaluated.exit_code == 2  # and the message says why
    assert "keeps its checkpoints only while it may be the sweep's best" in evaluated.output


def test_killed_sweep_resumes_without_touching_completed_trials(tmp_path, write_sweep, tiny_config,
                                                                random_spec, events, rows, sweep,
                                                                outcomes, metric_lines):
    slow = tiny_config(samples=100, train={"epochs": 30, "batch_size": 16})
    spec = write_sweep(tmp_path, {**random_spec, "keep_checkpoints": "all"}, slow)
    folder = tmp_path / "sweep"
    process = subprocess.Popen([sys.executable, "-m", "dl_cli", "sweep", str(spec), "--sweep-dir",
                                str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(events(folder, "result")) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = {e["trial"] for e in events(folder, "result") if e["status"] == "completed"}
    assert 2 <= len(done) < 4
    before = {p: (p.stat().st_mtime_ns, p.read_bytes())
              for t in done for p in (folder / f"trial-{t:04d}").rglob("*") if p.is_file()}

    result = runner.invoke(app, ["sweep", "--resume", str(folder)])
    assert result.exit_code == 0, result.output
    after = {p: (p.stat().st_mtime_ns, p.read_bytes())
             for t in done for p in (folder / f"trial-{t:04d}").rglob("*") if p.is_file()}
    assert after == before
    resumed_at = max(i for i, e in enumerate(Ledger(folder / "ledger.jsonl").events())
                     if e["event"] == "sweep")
    restarted = {e["trial"] for e in Ledger(folder / "ledger.jsonl").events()[resumed_at:]
                 if e["event"] == "start"}
    assert restarted == set(range(4)) - done
    assert all(r["status"] == "completed" for r in rows(folder))

    straight = tmp_path / "straight"
    assert sweep(spec, straight).exit_code == 0
    assert outcomes(straight) == outcomes(folder)
    for t in range(4):
        assert metric_lines(straight / f"trial-{t:04d}") == metric_lines(folder / f"trial-{t:04d}")


def test_observers_hear_each_submission_result_and_verdict_in_order(tmp_path, write_sweep,
                                                                    tiny_config, events):
    """SHA over 4 configurations: rung 1 for all, the best half to rung 2, the best of
    them to the end (4 epochs); each trial is submitted, then recorded, and each rung's
    verdict names the configurations it keeps and prunes, as the ledger has them."""
    from rich.console import Console

    from dl_cli.sweep.executors import make_backend
    from dl_cli.sweep.folder import open_sweep
    from dl_cli.sweep.runner import SweepRunner

    sha = {"method": "grid", "prune": {"rule": "sha", "min_epochs": 1, "eta": 2},
           "params": {"optimizer.lr": {"values": [1.0e-7, 0.01, 0.03, 0.1]}}}
    four_epochs = tiny_config(schedule={"type": "cosine"}, train={"epochs": 4, "batch_size": 16})
    spec, base = prepare(write_sweep(tmp_path, sha, four_epochs))
    folder = open_sweep(spec, base, tmp_path / "sweep")
    heard = []
    driver = SweepRunner(spec, base, folder, make_backend("local", 1),
                         console=Console(file=io.StringIO()),
                         observers=[lambda event, payload: heard.append((event, payload))])
    assert driver.run().exit_code == 0
    submitted = [(p["trial"], p["until"]) for e, p in heard if e == "submitted"]
    recorded = [(p["trial"], p["until"], p["state"].status) for e, p in heard if e == "recorded"]
    assert [e for e, _ in heard] == ["submitted", "recorded"] * 4 + ["pruned"] + \
        ["submitted", "recorded"] * 2 + ["pruned"] + ["submitted", "recorded"]
    assert submitted == [(t, u) for t, u, _ in recorded]
    assert submitted == [(e["trial"], e["until"]) for e in events(folder, "start")]
    assert [u for _, u in submitted] == [1] * 4 + [2] * 2 + [4]
    assert recorded[-1][2] == "completed"
    verdicts = [p for e, p in heard if e == "pruned"]
    assert [v["rung"] for v in verdicts] == [1, 2]
    assert [sorted(v["kept"] + v["pruned"]) for v in verdicts] == [[0, 1, 2, 3],
                                                                   sorted(verdicts[0]["kept"])]
    pruned = [(t, v["rung"]) for v in verdicts for t in v["pruned"]]
    assert pruned == [(e["trial"], e["rung"]) for e in events(folder, "prune")]  # one seed each
