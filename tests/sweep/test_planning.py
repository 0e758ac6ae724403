"""Refinement: later rounds narrow the continuous ranges around the best, as the ledger
records them."""

from typer.testing import CliRunner

from dl_cli.cli.app import app

runner = CliRunner()


def test_refine_narrows_continuous_ranges_around_the_best(tmp_path, write_sweep, random_spec, sweep,
                                                          rows, events):
    spec = write_sweep(tmp_path, {**random_spec, "refine": {"rounds": 1, "top": 2}})
    folder = tmp_path / "sweep"
    assert sweep(spec, folder).exit_code == 0
    table = rows(folder)
    assert len(table) == 8 and {r["round"] for r in table} == {"0", "1"}
    (round_event,) = events(folder, "round")
    lo, hi = round_event["domains"]["optimizer.lr"]["loguniform"]
    assert round_event["domains"]["model.layers.0.units"] == {"values": [4, 16]}
    first = sorted(table[:4], key=lambda r: -float(r["val/acc"]))
    top = [float(r["optimizer.lr"]) for r in first[:2]]
    assert 1e-3 <= lo <= min(top) and max(top) <= hi <= 1e-1
    assert hi / lo < 100  # narrower than the two decades searched first
    assert all(lo <= float(r["optimizer.lr"]) <= hi for r in table[4:])


def test_retried_trial_keeps_the_refined_rounds_the_ledger_recorded(reference, tmp_path,
                                                                    monkeypatch, write_sweep,
                                                                    random_spec, sweep, rows,
                                                                    events):
    """The best trial of round 0 fails, so rounds 1 and 2 narrow around the others; once
    --retry-failed completes it, the recorded rounds stay as they were."""
    import dl_cli.sweep.runner as runner_module

    best = max(rows(reference), key=lambda r: float(r["val/acc"]))["trial"]
    spec = write_sweep(tmp_path, {**random_spec, "refine": {"rounds": 2, "top": 1}})
    folder = tmp_path / "sweep"
    real = runner_module.run_trial

    def fail_the_best(config, trial_dir, **options):
        if trial_dir.endswith(f"trial-{int(best):04d}"):
            return {"status": "failed", "metric": None, "epochs": 0, "error": "injected"}
        return real(config, trial_dir, **options)

    with monkeypatch.context() as patch:
        patch.setattr(runner_module, "run_trial", fail_the_best)
        assert sweep(spec, folder).exit_code == 0
    declared = {e["trial"]: e["params"] for e in events(folder, "trial")}
    rounds = events(folder, "round")
    assert len(declared) == 12 and len(rounds) == 2
    for args in (["--retry-failed"], []):
        result = runner.invoke(app, ["sweep", "--resume", str(folder), *args])
        assert result.exit_code == 0, result.output
    assert [r["status"] for r in rows(folder)] == ["completed"] * 12
    assert events(folder, "round") == rounds
    assert {e["trial"]: e["params"] for e in events(folder, "trial")} == declared
