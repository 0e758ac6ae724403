"""Model-based search (method: tpe): Optuna's distributions of the domains, what the
ledger tells its study, rounds as in one go on any number of workers, and the median
rule across its rounds."""

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dl_cli.cli.app import app
from dl_cli.sweep.domains import Domain
from dl_cli.sweep.ledger import Ledger, TrialState
from dl_cli.sweep.pruning import above_median
from dl_cli.sweep.spec import SpecError, load_spec

optuna = pytest.importorskip("optuna")
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution  # noqa: E402
from optuna.trial import TrialState as OptunaState  # noqa: E402

from dl_cli.sweep.tpe import distribution, from_value, plan_tpe_round, to_value, told  # noqa: E402

runner = CliRunner()

# 16 configurations in rounds of 4: rounds 0-2 are TPE's random start (10 trials),
# round 3 is proposed by its model of the 12 scored before it.
TPE = {"method": "tpe", "trials": 16, "batch": 4, "seed": 0,
       "params": {"optimizer.lr": {"loguniform": [1.0e-3, 3.0e-1]},
                  "model.layers.0.units": {"values": [4, 16]},
                  "train.batch_size": {"range": [8, 32, 8]}}}


def tpe_outcomes(folder: Path) -> list[tuple]:
    """What must not depend on scheduling: each trial's params, metric, status, epochs."""
    with open(folder / "results.csv") as f:
        return [(r["trial"], r["round"], r["optimizer.lr"], r["model.layers.0.units"],
                 r["train.batch_size"], r["val/acc"], r["status"], r["epochs"])
                for r in csv.DictReader(f)]


# -- the sweep's domains as Optuna distributions -------------------------------------
def test_each_domain_maps_to_a_distribution_and_back():
    loguniform = Domain("loguniform", (1e-4, 1e-1))
    assert distribution(loguniform) == FloatDistribution(1e-4, 1e-1, log=True)
    assert distribution(Domain("uniform", (0, 1))) == FloatDistribution(0.0, 1.0)
    assert distribution(Domain("int_uniform", (1, 4))) == IntDistribution(1, 4)
    assert distribution(Domain("int_loguniform", (1, 64))) == IntDistribution(1, 64, log=True)
    assert to_value(loguniform, 0.01) == 0.01 and from_value(loguniform, 0.01) == 0.01
    assert to_value(Domain("int_uniform", (1, 4)), 3) == 3

    layers = Domain("values", ([{"type": "affine", "units": 8}], "relu", 0.5))
    assert distribution(layers) == CategoricalDistribution([0, 1, 2])
    assert to_value(layers, 0) == [{"type": "affine", "units": 8}] and to_value(layers, 1) == "relu"
    assert from_value(layers, [{"units": 8, "type": "affine"}]) == 0 and from_value(layers, 0.5) == 2

    steps = Domain("range", (0.0, 1.0, 0.25))     # points keep their order: a position
    assert distribution(steps) == IntDistribution(0, 4)
    assert to_value(steps, 2) == 0.5 and from_value(steps, 0.75) == 3
    gridded = Domain("loguniform", (1e-4, 1e-1), grid=4)
    assert distribution(gridded) == IntDistribution(0, 3)
    assert to_value(gridded, 1) == pytest.approx(1e-3) and from_value(gridded, gridded.point(3)) == 3


def test_the_ledger_is_told_by_configuration_mean_pruned_rungs_and_failures(tmp_path, write_sweep):
    spec = load_spec(write_sweep(tmp_path, {**TPE, "seeds": [0, 1]}))
    domains = spec.params
    params = {"optimizer.lr": 0.01, "model.layers.0.units": 16, "train.batch_size": 24}
    table = {0: TrialState(0, 0, 0, 0, params, "completed", 0.5),
             1: TrialState(1, 0, 0, 1, params, "completed", 0.7),
             2: TrialState(2, 0, 1, 0, params, "pruned", 0.3, rungs={1: 0.3}),
             3: TrialState(3, 0, 1, 1, params, "pruned", 0.4, rungs={1: 0.4}),
             4: TrialState(4, 0, 2, 0, params, "diverged", None),
             5: TrialState(5, 0, 2, 1, params, "completed", 0.9)}
    complete, pruned, failed = told(spec, domains, table)
    assert complete.state == OptunaState.COMPLETE and complete.value == pytest.approx(0.6)
    assert complete.params == {"optimizer.lr": 0.01, "model.layers.0.units": 1, "train.batch_size": 2}
    assert pruned.state == OptunaState.PRUNED and pruned.intermediate_values == {1: pytest.approx(0.35)}
    assert failed.state == OptunaState.FAIL  # a diverged seed fails its configuration


# -- deterministic rounds -------------------------------------------------------------
@pytest.fixture(scope="module")
def straight(tmp_path_factory, write_sweep, sweep):
    """A finished tpe sweep, in process."""
    tmp = tmp_path_factory.mktemp("tpe")
    spec = write_sweep(tmp, TPE)
    result = sweep(spec, tmp / "sweep")
    assert result.exit_code == 0, result.output
    assert "t: 16 trials on 1 worker" in result.output
    return tmp / "sweep"


def test_rounds_of_batch_continue_the_configuration_indices(straight):
    trials = Ledger(straight / "ledger.jsonl").table()
    assert [(s.index, s.round, s.config) for s in trials.values()] == \
        [(i, i // 4, i) for i in range(16)]
    assert len({json.dumps(s.params, sort_keys=True) for s in trials.values()}) == 16
    assert all(s.status == "completed" for s in trials.values())


def test_two_workers_give_the_same_trials_and_metrics(straight, tmp_path, write_sweep, sweep,
                                                      metric_lines):
    result = sweep(write_sweep(tmp_path, TPE), tmp_path / "sweep", "--workers", "2")
    assert result.exit_code == 0, result.output
    assert tpe_outcomes(tmp_path / "sweep") == tpe_outcomes(straight)
    for t in range(16):
        assert metric_lines(tmp_path / "sweep" / f"trial-{t:04d}") == \
            metric_lines(straight / f"trial-{t:04d}")


def test_a_resumed_sweep_asks_the_same_trials(straight, tmp_path, write_sweep, observe_sweeps,
                                              sweep):
    """Stopped in round 1 (two of its four trials done), resumed: round 1 comes from the
    ledger, rounds 2 and 3 from a fresh study told the ledger, as in one go."""
    spec = write_sweep(tmp_path, TPE)

    def ctrl_c_after_trial_5(sweep_runner, event, payload):  # the running trials finish, no new ones
        if event == "recorded" and payload["trial"] == 5:
            sweep_runner.request_stop()

    with observe_sweeps(ctrl_c_after_trial_5):
        assert sweep(spec, tmp_path / "sweep").exit_code == 130
    table = Ledger(tmp_path / "sweep" / "ledger.jsonl").table()
    assert sorted(table) == list(range(8)) and table[6].status == "pending"
    result = runner.invoke(app, ["sweep", "--resume", str(tmp_path / "sweep")])
    assert result.exit_code == 0, result.output
    assert tpe_outcomes(tmp_path / "sweep") == tpe_outcomes(straight)


def test_the_model_reads_the_scores_it_is_told(straight):
    """Round 3 depends on the scores of rounds 0-2: change one and it is asked otherwise."""
    spec = load_spec(straight / "spec.yaml")
    table = {i: s for i, s in Ledger(straight / "ledger.jsonl").table().items() if s.round < 3}
    asked = plan_tpe_round(spec, spec.params, 3, table)
    assert [p.params for p in asked] == [s.params for s in Ledger(straight / "ledger.jsonl").table().values()
                                         if s.round == 3]
    worst = min(table.values(), key=lambda s: s.metric)
    table[worst.index] = TrialState(worst.index, worst.round, worst.config, worst.seed,
                                    worst.params, "completed", 1.0)
    assert [p.params for p in plan_tpe_round(spec, spec.params, 3, table)] != [p.params for p in asked]


# -- the spec -------------------------------------------------------------------------
def test_tpe_spec_keys(tmp_path, write_sweep):
    spec = load_spec(write_sweep(tmp_path, {**TPE, "trials": 10, "seeds": [0, 1]}))
    assert (spec.rounds, spec.trial_count, spec.batch) == (3, 20, 4)
    assert load_spec(write_sweep(tmp_path, {k: v for k, v in TPE.items() if k != "batch"})).batch == 4
    with pytest.raises(SpecError) as caught:
        load_spec(write_sweep(tmp_path, {k: v for k, v in TPE.items() if k != "trials"}))
    assert "trials: a tpe sweep needs the number of trials" in str(caught.value)
    with pytest.raises(SpecError) as caught:
        load_spec(write_sweep(tmp_path, {**TPE, "method": "random", "batch": 2}))
    assert "batch: only for method tpe" in str(caught.value)
    with pytest.raises(SpecError) as caught:
        load_spec(write_sweep(tmp_path, {**TPE, "refine": {"rounds": 1}}))
    assert "refine: coarse-to-fine refinement follows a random round" in str(caught.value)


def test_the_dry_run_of_a_tpe_sweep_lists_its_first_round(tmp_path, write_sweep):
    result = runner.invoke(app, ["sweep", str(write_sweep(tmp_path, TPE)), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "TPE search (Optuna): 16 configurations in 4 rounds of 4" in result.output
    assert "all 4 trial configs are valid" in result.output


# -- pruning rules --------------------------------------------------------------------
FOUR_EPOCHS = {"schedule": {"type": "cosine"}, "train": {"epochs": 4, "batch_size": 16}}  # of tiny_config
def test_the_tpe_benchmark_tables_both_methods_per_seed(tmp_path, capsys):
    from benchmarks import tpe_vs_random

    tpe_vs_random.main(["--trials", "3", "--seeds", "0,1", "--out", str(tmp_path),
                        "train.epochs=1"])
    results = json.loads((tmp_path / "results.json").read_text())
    assert [(r["method"], r["seed"]) for r in results] == [
        ("random", 0), ("tpe", 0), ("random", 1), ("tpe", 1)]
    assert all(len(r["values"]) == 3 and r["best"] == max(r["values"]) for r in results)
    rows = (tmp_path / "table.md").read_text().splitlines()
    assert rows[0].startswith("| sweep seed | random: best val/acc | TPE: best val/acc |")
    assert [row.split("|")[1].strip() for row in rows[2:]] == ["0", "1", "mean"]
    assert "table.md" in capsys.readouterr().out


def test_each_variant_is_searched_by_a_study_of_its_own(tmp_path, write_sweep, tiny_config, sweep):
    spec = write_sweep(tmp_path, {**TPE, "trials": 3, "batch": 2, "seeds": [0, 1],
                                  "variants": {"relu": {"model.layers.1": "relu"},
                                               "tanh": {"model.layers.1": "tanh"}}},
                       tiny_config(train={"epochs": 1, "batch_size": 16}))
    result = sweep(spec, tmp_path / "sweep")
    assert result.exit_code == 0, result.output
    trials = Ledger(tmp_path / "sweep" / "ledger.jsonl").table().values()
    # round 0: configurations 0-1 under relu, 2-3 under tanh; round 1: 4 relu, 5 tanh
    assert [(s.index, s.round, s.config, s.seed, s.variant) for s in trials] == [
        (2 * c + j, 0 if c < 4 else 1, c, j, "relu" if c in (0, 1, 4) else "tanh")
        for c in range(6) for j in (0, 1)]
    params = {s.config: json.dumps(s.params, sort_keys=True) for s in trials}
    assert len(set(params.values())) == 6  # the studies are seeded apart


def test_the_median_rule_of_a_later_round_reads_the_earlier_rounds(tmp_path, write_sweep,
                                                                   tiny_config, sweep):
    """Each rung of rounds 1 and 2 is decided against the median of every score at that
    rung so far: both of round 2's configurations are below the median of rung 1 once the
    better scores of rounds 0 and 1 count, though one of them is the better of the pair."""
    spec = write_sweep(tmp_path, {**TPE, "trials": 6, "batch": 2,
                                  "prune": {"rule": "median", "min_epochs": 1, "eta": 2}},
                       tiny_config(**FOUR_EPOCHS))
    result = sweep(spec, tmp_path / "sweep")
    assert result.exit_code == 0, result.output
    ledger = Ledger(tmp_path / "sweep" / "ledger.jsonl")
    trials = ledger.table().values()
    for rung in (1, 2):
        pruned = {e["trial"] for e in ledger.events() if e["event"] == "prune" and e["rung"] == rung}
        for round_index in (0, 1, 2):
            scores = {s.index: s.rungs[rung] for s in trials if s.round == round_index and rung in s.rungs}
            earlier = {s.index: s.rungs[rung] for s in trials if s.round < round_index and rung in s.rungs}
            assert pruned & set(scores) == set(scores) - above_median(scores, earlier, "max")
    round_2 = {s.index: s.rungs[1] for s in trials if s.round == 2}
    assert len(set(round_2.values())) == 2 and len(above_median(round_2, {}, "max")) == 1
    assert {e["trial"] for e in ledger.events() if e["event"] == "prune" and e["rung"] == 1} \
        >= set(round_2)
