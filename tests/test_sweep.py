"""`dl sweep` and `dl plot`: domains, sampling, faults, resume, k-fold, pruning, backends."""

import csv
import dataclasses
import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from dl_cli.cli.app import app
from dl_cli.config import config_to_dict, load_config
from dl_cli.data import load
from dl_cli.layout import find_runs
from dl_cli.sweep.asha import promote, rungs
from dl_cli.crossval import fold_splits
from dl_cli.sweep.ledger import Ledger
from dl_cli.sweep.sampling import (grid_configuration, grid_configurations, plan_round,
                                   sample_configuration)
from dl_cli.sweep.runner import SweepRunner
from dl_cli.sweep.spec import Domain, SpecError, load_spec, prepare

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

BASE = {
    "name": "spiral",
    "seed": 3,
    "data": {"dataset": {"type": "spiral", "classes": 3, "samples": 40, "noise": 0.2},
             "split": {"val": 0.25, "test": 0.25}, "preprocess": ["standardize"]},
    "model": {"layers": [{"type": "affine", "units": 16}, "relu", {"type": "affine", "units": 3}]},
    "optimizer": {"type": "adam", "lr": 0.01},
    "train": {"epochs": 3, "batch_size": 16},
}
RANDOM = {"method": "random", "trials": 4, "seed": 0,
          "params": {"optimizer.lr": {"loguniform": [1.0e-3, 1.0e-1]},
                     "model.layers.0.units": {"values": [4, 16]}}}


def write_sweep(folder: Path, spec: dict, base: dict = BASE) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "base.yaml").write_text(yaml.safe_dump({**base, "runs_dir": str(folder / "runs")}))
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump({"base": str(folder / "base.yaml"), "name": "t", **spec}))
    return path


def sweep(spec: Path, folder: Path, *args: str):
    return runner.invoke(app, ["sweep", str(spec), "--sweep-dir", str(folder), *args])


def rows(folder: Path) -> list[dict]:
    with open(folder / "results.csv") as f:
        return list(csv.DictReader(f))


def outcomes(folder: Path) -> list[tuple]:
    """What must not depend on scheduling: each trial's params, metric, status, epochs."""
    return [(r["trial"], r["optimizer.lr"], r["val/acc"], r["status"], r["epochs"]) for r in rows(folder)]


def metric_lines(run_dir: Path) -> list[dict]:
    lines = [json.loads(s) for s in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for line in lines:
        line.pop("time", None)
    return lines


def events(folder: Path, kind: str) -> list[dict]:
    return [e for e in Ledger(folder / "ledger.jsonl").events() if e["event"] == kind]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A finished 4-trial random sweep run in process (workers 1)."""
    tmp = tmp_path_factory.mktemp("reference")
    spec = write_sweep(tmp, RANDOM)
    result = sweep(spec, tmp / "sweep")
    assert result.exit_code == 0, result.output
    return tmp / "sweep"


# -- domains, grids, sampling ---------------------------------------------------------
def test_grid_sizes_and_log_spaced_points():
    domains = {"a": Domain("values", ("x", "y", "z")), "b": Domain("range", (0.0, 1.0, 0.25)),
               "c": Domain("int_uniform", (1, 4)), "d": Domain("loguniform", (1e-4, 1e-1), grid=4)}
    assert domains["b"].points() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert domains["d"].points() == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1], rel=1e-12)
    assert Domain("int_loguniform", (1, 1000), grid=4).points() == [1, 10, 100, 1000]
    assert Domain("uniform", (0.0, 1.0), grid=3).points() == [0.0, 0.5, 1.0]
    assert Domain("range", (32, 128, 32)).points() == [32, 64, 96, 128]
    everything = grid_configurations(domains)
    assert len(everything) == 3 * 5 * 4 * 4
    assert all(grid_configuration(domains, i) == c for i, c in enumerate(everything))
    assert len({json.dumps(c, sort_keys=True) for c in everything}) == len(everything)


def test_dry_run_lists_the_grid_and_refuses_trials_on_a_grid(tmp_path):
    spec = write_sweep(tmp_path, {"method": "grid", "params": {
        "model.layers.0.units": {"values": [4, 8, 16]},
        "optimizer.lr": {"loguniform": [1.0e-4, 1.0e-1], "grid": 4}}})
    result = runner.invoke(app, ["sweep", str(spec), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "grid of 3 × 4 = 12 configurations" in result.output
    assert "all 12 trial configs are valid" in result.output
    assert not (tmp_path / "runs").exists()
    result = runner.invoke(app, ["sweep", str(spec), "--dry-run", "sweep.trials=5"])
    assert result.exit_code == 2
    assert "a grid's size is the product of its points (3 × 4)" in result.output


def test_random_parameters_depend_only_on_seed_and_index():
    domains = {"lr": Domain("loguniform", (1e-4, 1e-1)), "units": Domain("values", (64, 128)),
               "n": Domain("int_loguniform", (1, 64))}
    draws = [sample_configuration(domains, 0, i) for i in range(300)]
    assert sample_configuration(domains, 0, 17) == draws[17]
    assert [sample_configuration(domains, 1, i) for i in range(300)] != draws
    lrs = np.array([d["lr"] for d in draws])
    assert lrs.min() >= 1e-4 and lrs.max() <= 1e-1
    per_decade = np.histogram(np.log10(lrs), bins=[-4, -3, -2, -1])[0]
    assert per_decade.min() > 70  # each decade about a third of 300 draws
    assert {d["units"] for d in draws} == {64, 128}
    assert all(1 <= d["n"] <= 64 and isinstance(d["n"], int) for d in draws)


def test_repeat_seeds_share_a_configuration(tmp_path):
    spec = load_spec(write_sweep(tmp_path, {**RANDOM, "seeds": [5, 6]}))
    plans = plan_round(spec, spec.params, 0)
    assert [(p.index, p.config, p.seed) for p in plans[:4]] == [(0, 0, 5), (1, 0, 6), (2, 1, 5), (3, 1, 6)]
    assert plans[0].params == plans[1].params != plans[2].params


# -- variants -------------------------------------------------------------------------
VARIANTS = {"relu": {"model.layers.1": "relu"},
            "tanh": {"model.layers.1": "tanh", "model.init": "xavier_normal"}}


def test_variants_cross_the_params_and_the_seeds(tmp_path):
    spec = load_spec(write_sweep(tmp_path, {"method": "grid", "variants": VARIANTS, "seeds": [0, 1],
                                            "params": {"optimizer.lr": {"values": [0.01, 0.1]}}}))
    plans = plan_round(spec, spec.params, 0)
    assert [(p.index, p.config, p.variant, p.params["optimizer.lr"], p.seed) for p in plans] == [
        (0, 0, "relu", 0.01, 0), (1, 0, "relu", 0.01, 1), (2, 1, "relu", 0.1, 0), (3, 1, "relu", 0.1, 1),
        (4, 2, "tanh", 0.01, 0), (5, 2, "tanh", 0.01, 1), (6, 3, "tanh", 0.1, 0), (7, 3, "tanh", 0.1, 1)]
    drawn = load_spec(write_sweep(tmp_path / "random", {**RANDOM, "variants": VARIANTS}))
    plans = plan_round(drawn, drawn.params, 0)
    assert len(plans) == 2 * RANDOM["trials"]
    assert [p.params for p in plans[:4]] == [p.params for p in plans[4:]]  # the same draws
    assert [p.params for p in plans[:4]] == [sample_configuration(drawn.params, 0, i) for i in range(4)]
    second = plan_round(drawn, drawn.params, 1)  # a refined round continues the numbering
    assert [p.config for p in second] == list(range(8, 16))
    assert second[0].params == second[4].params == sample_configuration(drawn.params, 0, 4)


def test_a_variant_sweep_records_each_trials_variant(tmp_path):
    spec = write_sweep(tmp_path, {"method": "grid", "variants": VARIANTS})  # no params needed
    folder = tmp_path / "sweep"
    result = sweep(spec, folder)
    assert result.exit_code == 0, result.output
    assert "variant relu" in result.output and "variant tanh" in result.output
    assert [(r["trial"], r["variant"]) for r in rows(folder)] == [("0", "relu"), ("1", "tanh")]
    assert [e["variant"] for e in events(folder, "trial")] == ["relu", "tanh"]
    relu, tanh = (load_config(folder / f"trial-{i:04d}" / "config.yaml") for i in (0, 1))
    assert (relu.model.layers[1], relu.model.init) == ("relu", BASE["model"].get("init", "he_normal"))
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


def test_variant_mistakes_are_found_before_any_trial(tmp_path):
    spec = write_sweep(tmp_path, {"method": "grid", "variants": {
        "ok": {"model.layers.1": "tanh"},
        "typo": {"model.layers.1": "tahn", "optimizer.lrr": 0.1},
        "bad name!": {"seed": 1},
        "empty": {},
        "twice": {"optimizer.lr": 0.1}},
        "params": {"optimizer.lr": {"values": [0.01]}}})
    with pytest.raises(SpecError) as caught:
        load_spec(spec)
    text = str(caught.value)
    assert "variants: 'bad name!' is not a name of letters, digits and ._-" in text
    assert "variants.empty: expected a mapping of dotted config keys to values" in text
    assert "variants.twice.optimizer.lr: also swept in params" in text
    spec = write_sweep(tmp_path, {"method": "grid", "variants": {
        "ok": {"model.layers.1": "tanh"}, "typo": {"model.layers.1": "tahn", "optimizer.lrr": 0.1}}})
    result = sweep(spec, tmp_path / "sweep")
    assert result.exit_code == 2
    assert "variants.typo.model.layers.1" in result.output and "did you mean 'tanh'?" in result.output
    assert "variants.typo.optimizer.lrr" in result.output and "did you mean 'lr'?" in result.output
    assert not (tmp_path / "sweep").exists()
    with pytest.raises(SpecError, match="a random sweep draws from params, and there are none"):
        load_spec(write_sweep(tmp_path, {"method": "random", "trials": 2, "variants": VARIANTS}))
    with pytest.raises(SpecError, match="report.studdy: unknown key"):
        load_spec(write_sweep(tmp_path, {"method": "grid", "variants": VARIANTS,
                                         "report": {"studdy": "init"}}))


# -- mistakes found before anything runs ----------------------------------------------
def test_typo_in_a_parameter_path_fails_before_any_trial(tmp_path):
    spec = write_sweep(tmp_path, {"method": "grid", "params": {
        "train.batchsize": {"values": [8, 16]}, "optimizer.lrr": {"values": [0.1]},
        "model.layers.5.units": {"values": [3]}}})
    result = sweep(spec, tmp_path / "sweep")
    assert result.exit_code == 2
    assert "params.train.batchsize: unknown key (did you mean 'batch_size'?)" in result.output
    assert "did you mean 'lr'?" in result.output
    assert "params.model.layers.5: index 5 is out of range" in result.output
    assert not (tmp_path / "sweep").exists() and not (tmp_path / "runs").exists()


def test_spec_mistakes_are_reported_together(tmp_path):
    path = write_sweep(tmp_path, {"trails": 3, "method": "random", "params": {
        "optimizer.lr": {"logunifrm": [0, 1]}, "regularization.l2": {"loguniform": [0.0, 1.0]},
        "train.epochs": {"int_uniform": [5, 2]}}, "prune": {"rule": "asah"}})
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    text = str(caught.value)
    for expected in ("trails: unknown key (did you mean 'trials'?)",
                     "params.optimizer.lr.logunifrm: unknown domain (did you mean 'loguniform'?)",
                     "params.regularization.l2.loguniform: a log domain needs lo > 0",
                     "params.train.epochs.int_uniform: lo must be below hi",
                     "prune.rule: must be one of asha (did you mean 'asha'?), got 'asah' (string)",
                     "trials: a random sweep needs the number of trials"):
        assert expected in text


def test_overrides_reach_the_base_and_sweep_keys_the_spec(tmp_path):
    spec, base = prepare(write_sweep(tmp_path, RANDOM), ["train.epochs=2", "sweep.trials=7"])
    assert spec.trials == 7 and base["train"]["epochs"] == 2
    assert spec.raw["overrides"] == ["train.epochs=2"]
    assert (spec.metric, spec.goal) == ("val/acc", "max")  # the base's checkpoint monitor (auto)


def test_the_metric_must_be_one_the_model_reports(tmp_path):
    regression = {**BASE, "data": {"dataset": {"type": "polynomial"}, "split": {"val": 0.2}},
                  "model": {"layers": [{"type": "affine", "units": 1}], "loss": "mse"}}
    spec, _ = prepare(write_sweep(tmp_path, RANDOM | {"params": {"optimizer.lr": {"values": [0.1]}}},
                                  regression))
    assert (spec.metric, spec.goal) == ("val/loss", "min")
    with pytest.raises(SpecError, match="a regression model does not report val/acc"):
        prepare(tmp_path / "sweep.yaml", ["sweep.metric=val/acc"])
    with pytest.raises(SpecError, match="needs a validation split"):
        prepare(tmp_path / "sweep.yaml", ["data.split.val=0.0"])


# -- faults ---------------------------------------------------------------------------
FAILING = {"method": "grid", "params": {"model.layers.0": {"values": [
    {"type": "affine", "units": 8}, {"type": "conv2d", "filters": 2, "kernel": 3},
    {"type": "affine", "units": 4}]}}}


def test_a_dry_run_checks_the_folds_of_a_kfold_sweep(tmp_path):
    spec = write_sweep(tmp_path, {**RANDOM, "validation": {"kfold": 500}})
    dry = runner.invoke(app, ["sweep", str(spec), "--dry-run"], terminal_width=300)
    assert dry.exit_code == 2, dry.output
    assert "trial 0: validation.kfold: must be at most 90 (the samples" in dry.output


def test_a_second_ctrl_c_stops_an_in_process_trial_saving_its_state(tmp_path, monkeypatch):
    from dl_cli.runs import Run

    original = SweepRunner._submit

    def submit_then_ctrl_c_twice(self, index, until):
        future = original(self, index, until)
        self.interrupts = 2  # as two Ctrl-Cs while the trial trains
        return future

    monkeypatch.setattr(SweepRunner, "_submit", submit_then_ctrl_c_twice)
    long = {**BASE, "train": {"epochs": 3000, "batch_size": 16}}
    spec = write_sweep(tmp_path, {"method": "grid", "params": {"optimizer.lr": {"values": [0.01]}}},
                       long)
    folder = tmp_path / "sweep"
    result = sweep(spec, folder)
    assert result.exit_code == 130, result.output
    assert [e["status"] for e in events(folder, "result")] == ["interrupted"]
    trial = folder / "trial-0000"
    saved = Run(trial).load_checkpoint("last")["meta"]["epoch"]
    assert saved < 3000 and saved == len(Run(trial).read_metrics())  # stopped, state saved
    assert not (trial / "run.lock").exists()


def test_a_trial_that_raises_is_failed_and_the_sweep_goes_on(tmp_path):
    dry = runner.invoke(app, ["sweep", str(write_sweep(tmp_path, FAILING)), "--dry-run"])
    assert dry.exit_code == 2 and "trial 1: " in dry.output and "conv2d" in dry.output
    result = sweep(write_sweep(tmp_path, FAILING), tmp_path / "sweep")
    assert result.exit_code == 0, result.output
    assert [r["status"] for r in rows(tmp_path / "sweep")] == ["completed", "failed", "completed"]
    error = (tmp_path / "sweep" / "trial-0001" / "error.txt").read_text()
    assert error.startswith("Traceback") and "ShapeError" in error
    assert "trial 1 failed" in result.output


def test_fail_fast_starts_nothing_after_a_failure(tmp_path):
    result = sweep(write_sweep(tmp_path, FAILING), tmp_path / "sweep", "--fail-fast")
    assert result.exit_code == 1
    assert [e["trial"] for e in events(tmp_path / "sweep", "start")] == [0, 1]


def test_a_diverged_trial_is_a_result(tmp_path):
    spec = write_sweep(tmp_path, {"method": "grid", "params": {"optimizer": {"values": [
        {"type": "sgd", "lr": 1.0e+12}, {"type": "adam", "lr": 0.01}]}}})
    result = sweep(spec, tmp_path / "sweep")
    assert result.exit_code == 0, result.output
    assert [r["status"] for r in rows(tmp_path / "sweep")] == ["diverged", "completed"]
    best = load_config(tmp_path / "sweep" / "best.yaml")
    assert best.optimizer == {"type": "adam", "lr": 0.01}


def test_retry_failed_reruns_only_the_failed_trials(tmp_path):
    data = tmp_path / "data.npz"
    spec = write_sweep(tmp_path, {"method": "grid", "params": {"data.dataset": {"values": [
        BASE["data"]["dataset"], {"type": "npz", "path": str(data)}]}}})
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
        tmp_path, monkeypatch):
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


def test_kfold_preprocessing_that_does_not_fit_names_its_key_path(tmp_path):
    from dl_cli.data import DataError

    (tmp_path / "c.yaml").write_text(yaml.safe_dump(BASE))
    cfg = load_config(tmp_path / "c.yaml", ["data.preprocess=[center, {type: pca, components: 5}]"])
    with pytest.raises(DataError, match=r"^data\.preprocess\.1: "):
        fold_splits(cfg, 2, 0)


def test_killed_sweep_resumes_without_touching_completed_trials(tmp_path):
    slow = {**BASE, "data": {**BASE["data"], "dataset": {"type": "spiral", "samples": 100}},
            "train": {"epochs": 30, "batch_size": 16}}
    spec = write_sweep(tmp_path, {**RANDOM, "keep_checkpoints": "all"}, slow)
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


def test_resume_refuses_a_changed_spec_or_base(tmp_path):
    spec = write_sweep(tmp_path, RANDOM)
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
    write_sweep(tmp_path, RANDOM, {**BASE, "optimizer": {"type": "sgd", "lr": 0.01}})
    result = runner.invoke(app, ["sweep", "--resume", str(folder)])
    assert result.exit_code == 2
    assert "base config" in result.output and "optimizer.type: adam → sgd" in result.output
    assert len(events(folder, "start")) == 4


# -- scoring: seeds, k-fold, pruning, refinement ---------------------------------------
def test_seeds_rank_by_the_mean_and_only_the_best_keeps_checkpoints(tmp_path):
    spec = write_sweep(tmp_path, {"method": "grid", "seeds": [0, 1],
                                  "params": {"model.layers.0.units": {"values": [2, 16]}}})
    folder = tmp_path / "sweep"
    result = sweep(spec, folder)
    assert result.exit_code == 0, result.output
    table = rows(folder)
    assert [(r["config"], r["seed"]) for r in table] == [("0", "0"), ("0", "1"), ("1", "0"), ("1", "1")]
    means = [np.mean([float(r["val/acc"]) for r in table if r["config"] == c]) for c in "01"]
    best_config = int(np.argmax(means))
    best = load_config(folder / "best.yaml")
    assert best.model.layers[0]["units"] == [2, 16][best_config]
    assert best.name == "t-best" and best.seed == 0
    with_checkpoints = {p.parent.parent.name for p in folder.rglob("checkpoints/*.npz")}
    assert with_checkpoints == {f"trial-{2 * best_config:04d}", f"trial-{2 * best_config + 1:04d}"}
    assert len(find_runs(folder)) == 4  # dl runs / dl compare see the trial folders


def test_kfold_scores_the_mean_over_folds(tmp_path):
    spec = write_sweep(tmp_path, {"method": "grid", "validation": {"kfold": 3},
                                  "params": {"model.layers.0.units": {"values": [8]}}})
    folder = tmp_path / "sweep"
    assert sweep(spec, folder).exit_code == 0
    trial = folder / "trial-0000"
    best = [max(r["val/acc"] for r in metric_lines(trial / f"fold-{i}")) for i in range(3)]
    (result,) = events(folder, "result")
    assert result["fold_metrics"] == pytest.approx(best)
    assert result["metric"] == pytest.approx(np.mean(best))


def test_a_kfold_sweep_needs_no_validation_split_and_its_best_config_trains(tmp_path):
    no_val = {**BASE, "data": {**BASE["data"], "split": {"val": 0.0, "test": 0.25}}}
    spec = write_sweep(tmp_path, {"method": "grid", "validation": {"kfold": 2},
                                  "params": {"model.layers.0.units": {"values": [8]}}}, base=no_val)
    folder = tmp_path / "sweep"
    result = sweep(spec, folder)
    assert result.exit_code == 0, result.output
    assert [r["status"] for r in rows(folder)] == ["completed"]
    best = load_config(folder / "best.yaml")  # scored by k-fold, and trains the same way
    assert best.validation.kfold == 2 and best.data.split.val == 0
    assert "2-fold cross-validation" in (folder / "best.yaml").read_text().splitlines()[3]


def test_kfold_of_the_base_config_applies_to_the_sweep(tmp_path):
    spec = write_sweep(tmp_path, {"method": "grid", "params": {"model.layers.0.units": {"values": [8]}}},
                       base={**BASE, "validation": {"kfold": 2}})
    folder = tmp_path / "sweep"
    assert sweep(spec, folder).exit_code == 0
    assert sorted(p.name for p in (folder / "trial-0000").glob("fold-*")) == ["fold-0", "fold-1"]
    (result,) = events(folder, "result")
    assert len(result["fold_metrics"]) == 2


def test_folds_partition_train_and_val_and_fit_preprocessing_on_the_fold(tmp_path):
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(BASE))
    cfg = load_config(tmp_path / "c.yaml")
    bare = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, preprocess=[]))
    normal = load(bare.data, cfg.seed)
    pooled = np.concatenate([normal.train.X, normal.val.X])
    validated = []
    for i in range(3):
        raw, scaled = fold_splits(bare, 3, i), fold_splits(cfg, 3, i)
        assert len(raw.train) + len(raw.val) == len(pooled)
        assert np.array_equal(rows_sorted(np.concatenate([raw.train.X, raw.val.X])), rows_sorted(pooled))
        assert np.array_equal(raw.test.X, normal.test.X)  # the test split is set aside as always
        validated.append(raw.val.X)
        # standardize is fitted on the fold's training part, applied to its validation part
        mean, std = raw.train.X.mean(axis=0), raw.train.X.std(axis=0)
        np.testing.assert_allclose(scaled.train.X.mean(axis=0), 0, atol=1e-5)
        np.testing.assert_allclose(scaled.val.X, (raw.val.X - mean) / std, atol=1e-5)
    # the validation folds are disjoint and cover the pooled train + val samples
    assert np.array_equal(rows_sorted(np.concatenate(validated)), rows_sorted(pooled))


def rows_sorted(X: np.ndarray) -> np.ndarray:
    return X[np.lexsort(X.T[::-1])]


ASHA_BASE = {**BASE, "schedule": {"type": "cosine"}, "train": {"epochs": 4, "batch_size": 16}}
ASHA = {"method": "grid", "prune": {"rule": "asha", "min_epochs": 1, "eta": 2},
        "params": {"optimizer.lr": {"values": [1.0e-7, 0.01, 0.03, 0.1]}}}


def test_asha_stops_a_clearly_bad_trial_early(tmp_path):
    base = ASHA_BASE
    spec = write_sweep(tmp_path, ASHA, base)
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
    def test_scores(trial):
        return (folder / f"trial-{trial:04d}" / "train.log").read_text().count("; test {'test/")
    assert test_scores(int(winner["trial"])) == 1 and test_scores(0) == 0
    summary = json.loads((folder / "trial-0000" / "summary.json").read_text())
    assert summary["status"] == "paused" and summary["epochs"] == 1  # `dl runs` says so


def test_asha_verdicts_survive_an_interruption(tmp_path, monkeypatch):
    spec = write_sweep(tmp_path, ASHA, ASHA_BASE)
    assert sweep(spec, tmp_path / "straight").exit_code == 0
    original = SweepRunner._prune

    def prune_then_interrupt(self, plans, epochs):
        original(self, plans, epochs)
        self.interrupts = 1  # as a Ctrl-C right after the first verdict: drain and stop

    with monkeypatch.context() as patch:
        patch.setattr(SweepRunner, "_prune", prune_then_interrupt)
        assert sweep(spec, tmp_path / "resumed").exit_code == 130
    assert {r["status"] for r in rows(tmp_path / "resumed")} == {"paused", "pruned"}
    result = runner.invoke(app, ["sweep", "--resume", str(tmp_path / "resumed")])
    assert result.exit_code == 0, result.output
    assert outcomes(tmp_path / "resumed") == outcomes(tmp_path / "straight")
    assert events(tmp_path / "resumed", "prune") == [
        {**e, "time": e2["time"]} for e, e2 in zip(events(tmp_path / "straight", "prune"),
                                                    events(tmp_path / "resumed", "prune"))]


def prune_events(folder: Path) -> list[tuple]:
    return [(e["trial"], e["rung"]) for e in events(folder, "prune")]


@pytest.mark.parametrize("left", ["interrupted", "running"])
def test_asha_verdicts_survive_a_trial_stopped_past_a_rung(tmp_path, monkeypatch, left):
    """A trial trained to epoch 2 whose result the ledger never got (Ctrl-C twice: the
    trial reports interrupted; a killed driver: the ledger still says running) is scored
    at rung 1 and rung 2 on resume exactly as in an uninterrupted sweep."""
    spec = write_sweep(tmp_path, ASHA, ASHA_BASE)
    assert sweep(spec, tmp_path / "straight").exit_code == 0
    original = SweepRunner._record

    def lose_the_rung_2_result(self, index, until, result):
        if until == 2:
            if left == "interrupted":
                original(self, index, until, {"status": "interrupted", "until": until,
                                              "error": "stopped"})
            self.interrupts = 3  # leave at once
        else:
            original(self, index, until, result)

    with monkeypatch.context() as patch:
        patch.setattr(SweepRunner, "_record", lose_the_rung_2_result)
        assert sweep(spec, tmp_path / "resumed").exit_code == 130
    assert left in {r["status"] for r in rows(tmp_path / "resumed")}
    result = runner.invoke(app, ["sweep", "--resume", str(tmp_path / "resumed")])
    assert result.exit_code == 0, result.output
    assert outcomes(tmp_path / "resumed") == outcomes(tmp_path / "straight")
    assert prune_events(tmp_path / "resumed") == prune_events(tmp_path / "straight")
    rung_scores = [(e["trial"], e["until"], e["metric"]) for e in events(tmp_path / "straight", "result")]
    resumed = [(e["trial"], e["until"], e["metric"]) for e in events(tmp_path / "resumed", "result")
               if e["status"] != "interrupted"]
    assert sorted(resumed) == sorted(rung_scores)


def test_a_rung_is_scored_at_its_epoch_even_from_a_later_checkpoint(tmp_path):
    from dl_cli.sweep.trial import run_trial

    (tmp_path / "c.yaml").write_text(yaml.safe_dump({**ASHA_BASE, "runs_dir": str(tmp_path)}))
    config = config_to_dict(load_config(tmp_path / "c.yaml"))
    trial = tmp_path / "trial"
    ahead = run_trial(config, str(trial), until=3, metric="val/loss", goal="min")
    assert ahead["status"] == "paused" and ahead["epochs"] == 3
    again = run_trial(config, str(trial), until=1, metric="val/loss", goal="min")
    assert again["metric"] == metric_lines(trial)[0]["val/loss"]  # epoch 1's, not a later one
    assert ahead["metric"] == min(r["val/loss"] for r in metric_lines(trial))


def test_a_diverged_seed_gets_its_configuration_pruned(tmp_path, monkeypatch):
    """Seed 0 of configuration 0 diverges: the configuration scores the worst at its rung
    and its other seed is pruned, instead of training to the end."""
    spec = write_sweep(tmp_path, {"method": "grid", "seeds": [0, 1],
                                  "prune": {"rule": "asha", "min_epochs": 1, "eta": 2},
                                  "params": {"optimizer.lr": {"values": [0.05, 0.01]}}}, ASHA_BASE)
    folder = tmp_path / "sweep"
    original = SweepRunner._record

    def diverge(self, index, until, result):
        if index == 0:
            result = {**result, "status": "diverged", "metric": 0.9}
        original(self, index, until, result)

    monkeypatch.setattr(SweepRunner, "_record", diverge)
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


def test_refine_narrows_continuous_ranges_around_the_best(tmp_path):
    spec = write_sweep(tmp_path, {**RANDOM, "refine": {"rounds": 1, "top": 2}})
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


def test_retried_trial_keeps_the_refined_rounds_the_ledger_recorded(reference, tmp_path, monkeypatch):
    """The best trial of round 0 fails, so rounds 1 and 2 narrow around the others; once
    --retry-failed completes it, the recorded rounds stay as they were."""
    import dl_cli.sweep.runner as runner_module

    best = max(rows(reference), key=lambda r: float(r["val/acc"]))["trial"]
    spec = write_sweep(tmp_path, {**RANDOM, "refine": {"rounds": 2, "top": 1}})
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


def test_resume_ignores_the_key_order_of_the_base_but_not_of_params(tmp_path):
    spec = write_sweep(tmp_path, {"method": "grid", "params": {
        "model.layers.0.units": {"values": [4]}, "optimizer.lr": {"values": [0.01, 0.03]}}})
    folder = tmp_path / "sweep"

    def write_base(dataset: dict) -> None:
        text = yaml.safe_dump({**BASE, "data": {**BASE["data"], "dataset": dataset},
                               "runs_dir": str(tmp_path / "runs")}, sort_keys=False)
        (tmp_path / "base.yaml").write_text(text)

    dataset = BASE["data"]["dataset"]
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


def test_huge_integer_domains_are_never_listed(tmp_path, monkeypatch):
    huge = {"seed": Domain("int_uniform", (0, 10**12)), "units": Domain("range", (1, 10**12, 1)),
            "lr": Domain("range", (0.0, 1.0, 1e-12))}
    expected = []
    for index in range(5):  # the draws the listing gave: lo + integers(size)
        rng = np.random.default_rng([0, index])
        expected.append({"seed": int(rng.integers(10**12 + 1)), "units": 1 + int(rng.integers(10**12)),
                         "lr": round(int(rng.integers(10**12 + 1)) * 1e-12, 12)})

    def never(self):
        raise AssertionError(f"{self.kind} listed its points")

    monkeypatch.setattr(Domain, "points", never)
    assert [sample_configuration(huge, 0, i) for i in range(5)] == expected
    assert grid_configuration(huge, 10**12 + 7) == {"seed": 0, "units": 2, "lr": 6e-12}
    path = write_sweep(tmp_path, {"method": "grid", "params": {
        "seed": {"int_uniform": [0, 10**12]}, "model.layers.0.units": {"range": [1, 10**12, 1]}}})
    with pytest.raises(SpecError) as caught:  # counted, not listed, and refused
        load_spec(path)
    assert caught.value.errors == [
        "params.seed: the sweep would plan 1,000,000,000,001,000,000,000,000 trials = "
        "1,000,000,000,000 (params.model.layers.0.units) × 1,000,000,000,001 (params.seed); "
        "at most 100,000"]
    path = write_sweep(tmp_path, {"method": "grid", "params": {
        "optimizer.lr": {"range": [0.001, 0.1, 1.0e-12]}}})
    with pytest.raises(SpecError, match=r"^params\.optimizer\.lr: the sweep would plan 99,000,000,001"):
        load_spec(path)


def test_a_cut_last_line_does_not_swallow_the_next_event(tmp_path):
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.append("sweep", spec_hash="a")
    with open(ledger.path, "a") as f:
        f.write('{"event": "result", "tri')  # a crash in the middle of a write
    ledger.append("sweep", spec_hash="b", resumed=True)
    assert [e["spec_hash"] for e in Ledger(ledger.path).events()] == ["a", "b"]
    assert ledger.path.read_text().splitlines()[1] == '{"event": "result", "tri'


def test_a_second_resume_of_a_running_sweep_leaves_its_ledger_alone(tmp_path):
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


def test_refined_ranges_stay_inside_the_original_domain():
    assert Domain("int_loguniform", (3, 10**7)).narrowed([10**7]).args[1] == 10**7
    assert Domain("loguniform", (1e-4, 1e-1)).narrowed([1e-1]).args[1] == 1e-1
    assert Domain("loguniform", (1e-4, 1e-1)).narrowed([1e-4]).args[0] == 1e-4
    assert Domain("int_loguniform", (3, 10**7)).narrowed([3]).args[0] == 3


# -- backends -------------------------------------------------------------------------
def test_two_workers_give_the_same_results(reference, tmp_path):
    spec = write_sweep(tmp_path, RANDOM)
    result = sweep(spec, tmp_path / "sweep", "--workers", "2")
    assert result.exit_code == 0, result.output
    assert outcomes(tmp_path / "sweep") == outcomes(reference)
    for t in range(4):
        assert metric_lines(tmp_path / "sweep" / f"trial-{t:04d}") == metric_lines(reference / f"trial-{t:04d}")


def test_dask_backend_gives_the_same_results(reference, tmp_path):
    distributed = pytest.importorskip("distributed")
    spec = write_sweep(tmp_path, RANDOM)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        result = sweep(spec, tmp_path / "sweep", "--backend", "dask", "--address",
                       cluster.scheduler_address)
    assert result.exit_code == 0, result.output
    assert "Dask, 2 worker threads" in result.output
    assert outcomes(tmp_path / "sweep") == outcomes(reference)
    for t in range(4):
        assert metric_lines(tmp_path / "sweep" / f"trial-{t:04d}") == metric_lines(reference / f"trial-{t:04d}")


def test_bad_backend_options_exit_2(tmp_path):
    spec = write_sweep(tmp_path, RANDOM)
    for args, message in ((["--backend", "daks"], "did you mean 'dask'"),
                          (["--address", "tcp://x:1"], "add --backend dask"),
                          (["--workers", "0"], "--workers"),
                          (["--retry-failed"], "goes with --resume")):
        result = sweep(spec, tmp_path / "sweep", *args)
        assert result.exit_code == 2 and message in result.output, args
    assert not (tmp_path / "sweep").exists()


# -- plots ----------------------------------------------------------------------------
def test_plot_writes_pngs_for_a_sweep_and_a_run(reference, tmp_path):
    pytest.importorskip("matplotlib")
    result = runner.invoke(app, ["plot", str(reference), "--out", str(tmp_path / "sweep")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["plot", str(reference / "trial-0001"), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    pngs = sorted(p.name for p in tmp_path.rglob("*.png"))
    assert pngs == ["curves.png", "metric_vs_params.png", "top_curves.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in tmp_path.rglob("*.png"))
    assert runner.invoke(app, ["plot", str(tmp_path)]).exit_code == 2


@pytest.mark.slow
def test_digits_sweep_is_the_same_on_one_and_two_workers(tmp_path):
    spec = ROOT / "configs" / "sweep_digits.yaml"
    args = ["sweep.trials=12", "train.epochs=2", f"runs_dir={tmp_path}"]
    one = runner.invoke(app, ["sweep", str(spec), *args, "--sweep-dir", str(tmp_path / "one")])
    assert one.exit_code == 0, one.output
    two = runner.invoke(app, ["sweep", str(spec), *args, "--sweep-dir", str(tmp_path / "two"),
                              "--workers", "2"])
    assert two.exit_code == 0, two.output
    assert outcomes(tmp_path / "one") == outcomes(tmp_path / "two")
    assert math.isfinite(float(rows(tmp_path / "one")[0]["val/acc"]))


@pytest.mark.slow
def test_ray_backend_gives_the_same_results(reference, tmp_path):
    pytest.importorskip("ray")
    spec = write_sweep(tmp_path, RANDOM)
    result = sweep(spec, tmp_path / "sweep", "--backend", "ray", "--workers", "2")
    assert result.exit_code == 0, result.output
    assert outcomes(tmp_path / "sweep") == outcomes(reference)


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads the server's /proc entries")
def test_local_workers_fork_from_a_server_that_has_already_imported_numpy():
    import os

    from dl_cli.sweep import executors

    backend = executors.make_backend("local", 2)
    try:
        parent = backend.executor.submit(os.getppid).result(timeout=120)
    finally:
        backend.close()
    assert parent != os.getpid()  # not spawned by the driver: forked by the server
    assert "multiprocessing.forkserver" in Path(f"/proc/{parent}/cmdline").read_text()
    assert "_multiarray_umath" in Path(f"/proc/{parent}/maps").read_text()


def loaded_in_worker(module: str) -> bool:
    import sys

    return module in sys.modules


def test_the_worker_server_leaves_without_the_garbage_collectors_last_passes():
    """The server holds the driver's output pipe until it exits, so it exits quickly."""
    from dl_cli.sweep import executors

    backend = executors.make_backend("local", 2)
    try:
        inherited = backend.executor.submit(loaded_in_worker, "dl_cli.quick_exit").result(timeout=120)
    finally:
        backend.close()
    assert inherited  # imported by the server, so its exit handler is registered there


def test_workers_that_die_as_they_start_stop_the_sweep_instead_of_looping(tmp_path, monkeypatch):
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    from dl_cli.sweep import executors

    def dying_backend(name, workers, address=None, threads=1):
        def pool():  # every worker exits in its initializer, before it takes a trial
            return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                       initializer=os._exit, initargs=(3,))
        return executors.Backend("local", pool(), workers, "dying workers", renew=pool)

    monkeypatch.setattr(executors, "make_backend", dying_backend)
    spec = write_sweep(tmp_path, RANDOM)
    folder = tmp_path / "sweep"
    result = sweep(spec, folder, "--workers", "2")
    assert result.exit_code == 2
    assert "died 3 times in a row" in result.output and f"--resume {folder}" in result.output
    assert not events(folder, "result") or all(
        e["status"] == "interrupted" for e in events(folder, "result"))
    monkeypatch.undo()  # the workers can start again: the sweep continues where it stopped
    result = runner.invoke(app, ["sweep", "--resume", str(folder)])
    assert result.exit_code == 0, result.output
    assert [r["status"] for r in rows(folder)] == ["completed"] * 4


def test_a_worker_stopped_outside_training_releases_its_run_lock_first(tmp_path):
    from dl_cli.runs import Run
    from dl_cli.solver import Interrupted
    from dl_cli.sweep.executors import stop_worker

    run = Run(tmp_path / "trial-0000")
    run.acquire()  # a trial between taking its lock and the Solver's own signal handling
    assert run.layout.lock.exists()
    with pytest.raises(Interrupted):
        stop_worker(signal.SIGTERM, None)
    assert not run.layout.lock.exists()  # so the driver does not take it for a killed worker
    run.acquire()
    run.release()
    assert not run.layout.lock.exists()


def test_a_parameter_domain_is_overridden_by_its_dotted_path(tmp_path):
    spec = write_sweep(tmp_path, RANDOM)
    domain = "sweep.params.optimizer.lr={values: [0.05]}"
    result = runner.invoke(app, ["sweep", str(spec), domain, "--dry-run"])
    assert result.exit_code == 0, result.output
    loaded = load_spec(spec, [domain])
    assert loaded.params["optimizer.lr"].to_yaml() == {"values": [0.05]}
    assert set(loaded.params) == {"optimizer.lr", "model.layers.0.units"}  # the others kept


def test_zero_trials_is_one_error():
    from dl_cli.sweep.spec import parse_spec

    with pytest.raises(SpecError) as caught:
        parse_spec({"base": "b.yaml", "method": "random", "trials": 0,
                    "params": {"optimizer.lr": {"values": [0.1]}}})
    assert caught.value.errors == ["trials: must be an integer >= 1, got 0 (integer)"]


# -- limits and nulls in the spec -----------------------------------------------------
def spec_errors(tmp_path: Path, spec: dict, overrides: list[str] = ()) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_spec(write_sweep(tmp_path, spec), list(overrides))
    return caught.value.errors


def test_a_sweep_plans_at_most_100000_trials_counted_before_any_is_listed(tmp_path):
    assert load_spec(write_sweep(tmp_path, {**RANDOM, "trials": 50_000, "seeds": [0, 1]})).trial_count \
        == 100_000
    assert spec_errors(tmp_path, {**RANDOM, "trials": 50_001, "seeds": [0, 1]}) == [
        "trials: the sweep would plan 100,002 trials = 50,001 (trials) × 2 (seeds); at most 100,000"]
    (error,) = spec_errors(tmp_path, RANDOM, ["sweep.trials=100000000"])
    assert error.startswith("trials: the sweep would plan 100,000,000 trials")
    (error,) = spec_errors(tmp_path, {**RANDOM, "refine": {"rounds": 10**9}})
    assert error == ("refine.rounds: the sweep would plan 4,000,000,004 trials = 4 (trials) × "
                     "1,000,000,001 (1 + refine.rounds); at most 100,000")


@pytest.mark.parametrize("domain, error", [
    ({"uniform": [0.001, 0.1], "grid": 10**9},
     "params.x.grid: must be an integer from 2 to 10000 (points of the grid), got 1000000000 (integer)"),
    ({"range": [1.0e-300, 1.0e+300, 1.0e-300]},
     "params.x.range: [lo, hi, step] = [1e-300, 1e+300, 1e-300] has inf points; at most 1e+18: "
     "take a larger step"),
    ({"range": [1, 10**23, 1]}, "params.x.range: integers must lie within ±10**18, got [1, "
                                "100000000000000000000000, 1]"),
    ({"range": [1, 1.0e+23, 1]}, "params.x.range: [lo, hi, step] = [1, 1e+23, 1] has 1e+23 points; "
                                 "at most 1e+18: take a larger step"),
    ({"int_uniform": [1, 10**24]}, "params.x.int_uniform: integers must lie within ±10**18, got "
                                   "[1, 1000000000000000000000000]"),
    ({"range": [0, 10**400, 0.5]}, "params.x.range: expected [lo, hi, step] of finite numbers, got "
                                   "[0, 1000000"),
    ({"uniform": [-1.0e+308, 1.0e+308]},
     "params.x.uniform: hi - lo must be a finite number, got [lo, hi] = [-1e+308, 1e+308]"),
])
def test_domains_too_large_to_draw_from_are_refused_as_read(tmp_path, domain, error):
    (message,) = spec_errors(tmp_path, {**RANDOM, "params": {"x": domain}})
    assert message.startswith(error), message


def test_the_largest_domains_allowed_still_draw(tmp_path):
    spec = load_spec(write_sweep(tmp_path, {**RANDOM, "params": {
        "a": {"int_uniform": [-10**18, 10**18]}, "b": {"int_loguniform": [1, 10**18]},
        "c": {"range": [0.0, 1.0, 1.0e-18 * 1.01]}, "d": {"loguniform": [1e-300, 1e300], "grid": 10_000}}}))
    draws = [sample_configuration(spec.params, 0, i) for i in range(20)]
    assert all(-10**18 <= d["a"] <= 10**18 and 1 <= d["b"] <= 10**18 and 0 <= d["c"] <= 1
               for d in draws)
    assert len({d["d"] for d in draws}) > 10


def test_a_dry_run_reports_a_model_too_large_for_memory_as_that_trials_error(tmp_path):
    spec = write_sweep(tmp_path, {"method": "grid", "params": {
        "model.layers.0.units": {"values": [16, 10**15, 4 * 10**18]}}})
    result = runner.invoke(app, ["sweep", str(spec), "--dry-run"], terminal_width=300)
    assert result.exit_code == 2, result.output
    assert "trial 1: out of memory: Unable to allocate" in result.output
    assert "trial 2: out of memory: array is too big" in result.output  # NumPy's ValueError
    assert "trial 0" not in result.output


NULL_REFUSED = {"seed": "must be an integer >= 0", "method": "must be one of grid, random",
                "name": "must be a name of letters, digits and ._-",
                "threads": "must be an integer from 1 to 2,147,483,647",
                "keep_checkpoints": "must be best or all",
                "prune": {"eta": "must be an integer >= 2", "min_epochs": "must be an integer >= 1",
                          "rule": "must be one of asha"},
                "refine": {"rounds": "must be an integer >= 1", "top": "must be an integer >= 1"},
                "validation": {"kfold": "must be an integer >= 2"}}


@pytest.mark.parametrize("key, inner", [(key, inner) for key, value in NULL_REFUSED.items()
                                        for inner in (value if isinstance(value, dict) else [None])])
def test_null_is_refused_where_a_key_has_a_default(tmp_path, key, inner):
    value, path, allowed = ((None, key, NULL_REFUSED[key]) if inner is None else
                            ({inner: None}, f"{key}.{inner}", NULL_REFUSED[key][inner]))
    (error,) = spec_errors(tmp_path, {**RANDOM, key: value})
    assert error.startswith(f"{path}: {allowed}") and error.endswith("null"), error


def test_null_means_none_where_leaving_a_key_out_does(tmp_path):
    spec = load_spec(write_sweep(tmp_path, {**RANDOM, "seeds": None, "claim": None, "refine": None,
                                            "prune": None, "validation": None, "metric": None,
                                            "report": None, "variants": None}))
    assert (spec.seeds, spec.claim, spec.refine, spec.prune, spec.kfold, spec.metric,
            spec.report, spec.variants) == (None, None, None, None, None, None, {}, None)
    grid = load_spec(write_sweep(tmp_path, RANDOM), ["sweep.method=grid", "sweep.trials=null",
                                                     "sweep.params.optimizer.lr=[0.01]"])
    assert grid.trial_count == 2
    # an overrides: whose items are all commented out is null: none, and the command
    # line's base overrides still apply
    spec = load_spec(write_sweep(tmp_path, {**RANDOM, "overrides": None}), ["train.epochs=2"])
    assert spec.overrides == ["train.epochs=2"]


def test_a_dry_run_checks_every_listed_value(tmp_path):
    units = {"values": [4] * 50 + [-5]}  # more than the 50 points a domain lists for its checks
    spec = write_sweep(tmp_path, {**RANDOM, "trials": 1, "refine": {"rounds": 1, "top": 1},
                                  "params": {"model.layers.0.units": units,
                                             "optimizer.lr": {"loguniform": [1e-4, 1e-1]}}})
    with pytest.raises(SpecError) as caught:
        prepare(spec)
    assert caught.value.errors == ["params.model.layers.0.units: units must be a positive integer, got -5"]


def test_a_goal_against_the_metrics_direction_is_refused(tmp_path):
    assert spec_errors(tmp_path, {**RANDOM, "metric": {"name": "val/loss", "goal": "max"}}) == [
        "metric.goal: val/loss is minimized, so the goal is min (or leave it out), got 'max' (string)"]
    assert spec_errors(tmp_path, {**RANDOM, "metric": {"name": "val/acc", "goal": "min"}}) == [
        "metric.goal: val/acc is maximized, so the goal is max (or leave it out), got 'min' (string)"]
    backwards = {**BASE, "checkpoint": {"monitor": "val/loss", "mode": "max"}}
    with pytest.raises(SpecError, match="checkpoint.mode: val/loss is minimized, so the mode is min"):
        prepare(write_sweep(tmp_path, RANDOM, backwards))
    spec, _ = prepare(write_sweep(tmp_path, RANDOM), ["sweep.metric=val/loss"])
    assert (spec.metric, spec.goal) == ("val/loss", "min")


def test_the_report_study_is_one_dl_report_knows(tmp_path):
    assert spec_errors(tmp_path, {**RANDOM, "report": {"study": "inits"}}) == [
        "report.study: unknown study 'inits' (did you mean 'init'?); allowed: "
        "init, activations, regularization, batchnorm, optimizers, schedules, polynomial, "
        "weight_decay, depth_residual, clipping, cnn_vs_mlp, distributed"]
    pytest.importorskip("matplotlib")
    from dl_cli.studies.report import SECTIONS
    from dl_cli.schema import STUDIES

    assert set(STUDIES) == set(SECTIONS)


def test_a_date_among_the_values_or_in_a_variant_is_refused_as_read(tmp_path):
    import datetime

    day = datetime.date(2024, 1, 1)  # what YAML reads from an unquoted 2024-01-01
    assert spec_errors(tmp_path, {"method": "grid", "params": {"name": {"values": ["a", day]}},
                                  "variants": {"v": {"model.init": day}}}) == [
        "variants.v.model.init: expected numbers, strings, lists or mappings, got "
        "datetime.date(2024, 1, 1) (date); quote a date to make it a string",
        "params.name.values.1: expected numbers, strings, lists or mappings, got "
        "datetime.date(2024, 1, 1) (date); quote a date to make it a string"]


def test_threads_go_up_to_a_c_int_in_the_spec_and_to_what_blas_runs_in_a_local_sweep(tmp_path):
    from dl_cli import threads

    (error,) = spec_errors(tmp_path, {**RANDOM, "threads": 2**31})
    assert error == ("threads: must be an integer from 1 to 2,147,483,647 (BLAS takes a C int), "
                     "got 2147483648 (integer)")
    assert load_spec(write_sweep(tmp_path, {**RANDOM, "threads": 2**31 - 1})).threads == 2**31 - 1
    most = threads.blas_most(1000)
    if most == 1000:
        pytest.skip("this BLAS runs 1000 threads")
    result = sweep(write_sweep(tmp_path, {**RANDOM, "threads": 1000}), tmp_path / "s", "--dry-run")
    assert result.exit_code == 2 and not (tmp_path / "s").exists()
    assert result.output.strip() == (f"error: threads: expected an integer from 1 to {most}, the "
                                     f"most threads NumPy's BLAS runs here, got 1000")


def test_more_blas_threads_than_cores_are_warned_of(tmp_path, monkeypatch):
    import dl_cli.threads

    monkeypatch.setattr(dl_cli.threads, "cores", lambda: 1)
    spec = write_sweep(tmp_path, {"method": "grid", "threads": 2,
                                  "params": {"optimizer.lr": {"values": [0.01]}}})
    result = sweep(spec, tmp_path / "s", "train.epochs=1")
    assert result.exit_code == 0, result.output
    assert ("warning: 1 worker × 2 BLAS threads exceed the 1 core: the threads will compete "
            "for them") in result.output
