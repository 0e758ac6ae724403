"""Pruning: the rungs of successive halving and the configurations each promotes,
verdicts that survive an interruption, a diverged seed, the median rule."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dl_cli.cli.app import app
from dl_cli.sweep.ledger import Ledger
from dl_cli.sweep.pruning import above_median, promote, rungs
from dl_cli.sweep.spec import load_spec

runner = CliRunner()

FOUR_EPOCHS = {"schedule": {"type": "cosine"}, "train": {"epochs": 4, "batch_size": 16}}  # of tiny_config
LRS = {"optimizer.lr": {"values": [1.0e-7, 0.01, 0.03, 0.1]}}
SHA = {"method": "grid", "prune": {"rule": "sha", "min_epochs": 1, "eta": 2}, "params": LRS}


def test_sha_stops_a_clearly_bad_trial_early(tmp_path, write_sweep, tiny_config, rows, events,
                                             sweep, metric_lines):
    base = tiny_config(**FOUR_EPOCHS)
    spec = write_sweep(tmp_path, SHA, base)
    folder = tmp_path / "sweep"
    result = sweep(spec, folder)
    assert result.exit_code == 0, result.output
    table = rows(folder)
    assert table[0]["status"] == "pruned" and table[0]["epochs"] == "1"
    assert len(metric_lines(folder / "trial-0000")) == 1
    assert [e["rung"] for e in events(folder, "prune")] == [1, 1, 2]
    (winner,) = [r for r in table if r["status"] == "completed"]
    assert winner["epochs"] == "4"
    # The winner, trained rung by rung, ends exactly as one uninterrupted run.
    straight = write_sweep(tmp_path / "straight", {"method": "grid", "params": {
        "optimizer.lr": {"values": [float(winner["optimizer.lr"])]}}}, base)
    assert sweep(straight, tmp_path / "straight" / "sweep").exit_code == 0
    assert metric_lines(folder / f"trial-{int(winner['trial']):04d}") == \
        metric_lines(tmp_path / "straight" / "sweep" / "trial-0000")
    # The test split is scored once per trial, when it ends: never for a pruned one.
    def times_test_scored(trial):
        return (folder / f"trial-{trial:04d}" / "train.log").read_text().count("; test/")
    assert times_test_scored(int(winner["trial"])) == 1 and times_test_scored(0) == 0
    summary = json.loads((folder / "trial-0000" / "summary.json").read_text())
    assert summary["status"] == "paused" and summary["epochs"] == 1  # `dl runs` says so


def test_sha_verdicts_survive_an_interruption(tmp_path, write_sweep, tiny_config, observe_sweeps,
                                              sweep, rows, outcomes, events):
    spec = write_sweep(tmp_path, SHA, tiny_config(**FOUR_EPOCHS))
    assert sweep(spec, tmp_path / "straight").exit_code == 0

    def ctrl_c_after_the_first_verdict(sweep_runner, event, payload):  # drain and stop
        if event == "pruned" and not sweep_runner.draining:
            sweep_runner.request_stop()

    with observe_sweeps(ctrl_c_after_the_first_verdict):
        assert sweep(spec, tmp_path / "resumed").exit_code == 130
    assert {r["status"] for r in rows(tmp_path / "resumed")} == {"paused", "pruned"}
    result = runner.invoke(app, ["sweep", "--resume", str(tmp_path / "resumed")])
    assert result.exit_code == 0, result.output
    assert outcomes(tmp_path / "resumed") == outcomes(tmp_path / "straight")
    assert events(tmp_path / "resumed", "prune") == [
        {**e, "time": e2["time"]} for e, e2 in zip(events(tmp_path / "straight", "prune"),
                                                    events(tmp_path / "resumed", "prune"))]


@pytest.fixture(scope="session")
def prune_events(events):
    """``prune_events(folder)``: (trial, rung) of each verdict that pruned a trial."""
    def read(folder: Path) -> list[tuple]:
        return [(e["trial"], e["rung"]) for e in events(folder, "prune")]
    return read


@pytest.mark.parametrize("left", ["interrupted", "running"])
def test_sha_verdicts_survive_a_trial_stopped_past_a_rung(tmp_path, monkeypatch, left, write_sweep,
                                                          tiny_config, observe_sweeps, sweep,
                                                          outcomes, events, prune_events):
    """A trial trained to epoch 2 whose result the ledger never got (Ctrl-C twice: the
    trial reports interrupted; a killed driver: the ledger still says running) is scored
    at rung 1 and rung 2 on resume exactly as in an uninterrupted sweep."""
    from dl_cli.sweep import runner as sweep_runner

    spec = write_sweep(tmp_path, SHA, tiny_config(**FOUR_EPOCHS))
    assert sweep(spec, tmp_path / "straight").exit_code == 0
    original = sweep_runner.run_trial

    def lose_the_rung_2_result(config, trial_dir, **options):
        result = original(config, trial_dir, **options)  # trained to its rung
        if options["until"] != 2:
            return result
        if left == "running":  # the driver stops dead before it records the result
            raise KeyboardInterrupt
        return {"status": "interrupted", "until": 2, "error": "stopped"}

    def leave_at_once(sweep_runner, event, payload):  # Ctrl-C three times
        if event == "recorded" and payload["until"] == 2:
            for _ in range(3):
                sweep_runner.request_stop()

    with monkeypatch.context() as patch, observe_sweeps(leave_at_once):
        patch.setattr(sweep_runner, "run_trial", lose_the_rung_2_result)
        assert sweep(spec, tmp_path / "resumed").exit_code == 130
    table = Ledger(tmp_path / "resumed" / "ledger.jsonl").table()
    assert left in {state.status for state in table.values()}
    result = runner.invoke(app, ["sweep", "--resume", str(tmp_path / "resumed")])
    assert result.exit_code == 0, result.output
    assert outcomes(tmp_path / "resumed") == outcomes(tmp_path / "straight")
    assert prune_events(tmp_path / "resumed") == prune_events(tmp_path / "straight")
    rung_scores = [(e["trial"], e["until"], e["metric"]) for e in events(tmp_path / "straight", "result")]
    resumed = [(e["trial"], e["until"], e["metric"]) for e in events(tmp_path / "resumed", "result")
               if e["status"] != "interrupted"]
    assert sorted(resumed) == sorted(rung_scores)


def test_a_diverged_seed_gets_its_configuration_pruned(tmp_path, monkeypatch, write_sweep,
                                                       tiny_config, sweep, rows, prune_events):
    """Seed 0 of configuration 0 diverges: the configuration scores the worst at its rung
    and its other seed is pruned, instead of training to the end."""
    from dl_cli.sweep import runner as sweep_runner

    spec = write_sweep(tmp_path, {"method": "grid", "seeds": [0, 1],
                                  "prune": {"rule": "sha", "min_epochs": 1, "eta": 2},
                                  "params": {"optimizer.lr": {"values": [0.05, 0.01]}}},
                       tiny_config(**FOUR_EPOCHS))
    folder = tmp_path / "sweep"
    original = sweep_runner.run_trial

    def diverge(config, trial_dir, **options):
        result = original(config, trial_dir, **options)
        if trial_dir.endswith("trial-0000"):
            result = {**result, "status": "diverged", "metric": 0.9}
        return result

    monkeypatch.setattr(sweep_runner, "run_trial", diverge)
    result = sweep(spec, folder)
    assert result.exit_code == 0, result.output
    assert [r["status"] for r in rows(folder)] == ["diverged", "pruned", "completed", "completed"]
    assert prune_events(folder) == [(1, 1)]


def test_rungs_and_promotion():
    assert rungs(3, 3, 30) == [3, 9, 27, 30]
    assert rungs(1, 2, 4) == [1, 2, 4]
    assert rungs(5, 3, 5) == [5]
    assert promote({0: 0.3, 1: 0.9, 2: 0.8, 3: 0.1}, eta=2, goal="max") == {1, 2}
    assert promote({0: 0.3, 1: 0.9, 2: 0.8, 3: 0.1}, eta=2, goal="min") == {0, 3}
    assert promote({0: float("nan"), 1: None, 2: 0.5}, eta=3, goal="max") == {2}
    assert promote({0: 0.5, 1: 0.5}, eta=3, goal="max") == {0}  # ties: lower index


def test_the_median_rule():
    scores = {0: 0.3, 1: 0.9, 2: 0.8, 3: 0.1}
    assert above_median(scores, {}, "max") == {1, 2}
    assert above_median(scores, {}, "min") == {0, 3}
    assert above_median(scores, {7: 0.95, 8: 0.97, 9: 0.99}, "max") == {1}  # median of 7: 0.9
    assert above_median({0: float("nan"), 1: None, 2: 0.5}, {}, "max") == {2}
    assert above_median({0: 0.5, 1: 0.5}, {}, "max") == {0, 1}  # equal to the median goes on


def test_a_median_sweep_stops_what_falls_below_the_median(tmp_path, write_sweep, tiny_config,
                                                          sweep):
    spec = write_sweep(tmp_path, {"method": "grid", "params": LRS,
                                  "prune": {"rule": "median", "min_epochs": 1, "eta": 2}},
                       tiny_config(**FOUR_EPOCHS))
    result = sweep(spec, tmp_path / "sweep")
    assert result.exit_code == 0, result.output
    events = [e for e in Ledger(tmp_path / "sweep" / "ledger.jsonl").events()]
    rung_1 = {e["trial"]: e["metric"] for e in events if e["event"] == "result" and e["until"] == 1}
    middle = sorted(rung_1.values())[1:3]
    below = {t for t, m in rung_1.items() if m < sum(middle) / 2}
    assert 0 in below  # lr 1e-7 learns nothing
    assert {e["trial"] for e in events if e["event"] == "prune" and e["rung"] == 1} == below


def test_asha_is_read_as_sha_with_a_warning(tmp_path, write_sweep, tiny_config, sweep):
    spec = write_sweep(tmp_path, {"method": "grid", "params": LRS,
                                  "prune": {"rule": "asha", "min_epochs": 1, "eta": 2}},
                       tiny_config(**FOUR_EPOCHS))
    loaded = load_spec(spec)
    assert loaded.prune.rule == "sha"
    result = sweep(spec, tmp_path / "sweep")
    assert result.exit_code == 0, result.output
    assert "warning: prune.rule: asha is now called sha (synchronous successive halving); " \
           "write rule: sha" in " ".join(result.output.split())
    pruned = [e for e in Ledger(tmp_path / "sweep" / "ledger.jsonl").events() if e["event"] == "prune"]
    assert [e["rung"] for e in pruned] == [1, 1, 2]  # the best half of each rung goes on
