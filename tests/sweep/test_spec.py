"""The sweep spec: every mistake found before any trial runs (the dry run too), overrides,
nulls and limits."""

import pytest
from typer.testing import CliRunner

from dl_cli.cli.app import app
from dl_cli.sweep.base_config import prepare
from dl_cli.sweep.spec import SpecError, load_spec

runner = CliRunner()


def test_dry_run_lists_the_grid_and_refuses_trials_on_a_grid(tmp_path, write_sweep):
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


def test_variant_mistakes_are_found_before_any_trial(tmp_path, write_sweep, sweep, variants):
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
        load_spec(write_sweep(tmp_path, {"method": "random", "trials": 2, "variants": variants}))
    with pytest.raises(SpecError, match="report.studdy: unknown key"):
        load_spec(write_sweep(tmp_path, {"method": "grid", "variants": variants,
                                         "report": {"studdy": "init"}}))


def test_typo_in_a_parameter_path_fails_before_any_trial(tmp_path, write_sweep, sweep):
    spec = write_sweep(tmp_path, {"method": "grid", "params": {
        "train.batchsize": {"values": [8, 16]}, "optimizer.lrr": {"values": [0.1]},
        "model.layers.5.units": {"values": [3]}}})
    result = sweep(spec, tmp_path / "sweep")
    assert result.exit_code == 2
    assert "params.train.batchsize: unknown key (did you mean 'batch_size'?)" in result.output
    assert "did you mean 'lr'?" in result.output
    assert "params.model.layers.5: index 5 is out of range" in result.output
    assert not (tmp_path / "sweep").exists() and not (tmp_path / "runs").exists()


def test_spec_mistakes_are_reported_together(tmp_path, write_sweep):
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
                     "prune.rule: must be one of sha, median, got 'asah' (string)",
                     "trials: a random sweep needs the number of trials"):
        assert expected in text


def test_overrides_reach_the_base_and_sweep_keys_the_spec(tmp_path, write_sweep, random_spec):
    spec, base = prepare(write_sweep(tmp_path, random_spec), ["train.epochs=2", "sweep.trials=7"])
    assert spec.trials == 7 and base["train"]["epochs"] == 2
    assert spec.raw["overrides"] == ["train.epochs=2"]
    assert (spec.metric, spec.goal) == ("val/acc", "max")  # the base's checkpoint monitor (auto)


def test_the_metric_must_be_one_the_model_reports(tmp_path, tiny_config, write_sweep, random_spec):
    regression = tiny_config(data={"dataset": {"type": "polynomial"}, "split": {"val": 0.2}},
                             model={"layers": [{"type": "affine", "units": 1}], "loss": "mse"})
    one_rate = random_spec | {"params": {"optimizer.lr": {"values": [0.1]}}}
    spec, _ = prepare(write_sweep(tmp_path, one_rate, regression))
    assert (spec.metric, spec.goal) == ("val/loss", "min")
    with pytest.raises(SpecError, match="a regression model does not report val/acc"):
        prepare(tmp_path / "sweep.yaml", ["sweep.metric=val/acc"])
    with pytest.raises(SpecError, match="needs a validation split"):
        prepare(tmp_path / "sweep.yaml", ["data.split.val=0.0"])


def test_a_dry_run_checks_the_folds_of_a_kfold_sweep(tmp_path, write_sweep, random_spec):
    spec = write_sweep(tmp_path, {**random_spec, "validation": {"kfold": 500}})
    dry = runner.invoke(app, ["sweep", str(spec), "--dry-run"], terminal_width=300)
    assert dry.exit_code == 2, dry.output
    assert "trial 0: validation.kfold: must be at most 90 (the samples" in dry.output


def test_a_parameter_domain_is_overridden_by_its_dotted_path(tmp_path, write_sweep, random_spec):
    spec = write_sweep(tmp_path, random_spec)
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


def test_a_sweep_plans_at_most_100000_trials_counted_before_any_is_listed(tmp_path, write_sweep,
                                                                          spec_errors, random_spec):
    most = {**random_spec, "trials": 50_000, "seeds": [0, 1]}
    assert load_spec(write_sweep(tmp_path, most)).trial_count == 100_000
    assert spec_errors(tmp_path, {**random_spec, "trials": 50_001, "seeds": [0, 1]}) == [
        "trials: the sweep would plan 100,002 trials = 50,001 (trials) × 2 (seeds); at most 100,000"]
    (error,) = spec_errors(tmp_path, random_spec, ["sweep.trials=100000000"])
    assert error.startswith("trials: the sweep would plan 100,000,000 trials")
    (error,) = spec_errors(tmp_path, {**random_spec, "refine": {"rounds": 10**9}})
    assert error == ("refine.rounds: the sweep would plan 4,000,000,004 trials = 4 (trials) × "
                     "1,000,000,001 (1 + refine.rounds); at most 100,000")


def test_a_dry_run_reports_a_model_too_large_for_memory_as_that_trials_error(tmp_path, write_sweep):
    spec = write_sweep(tmp_path, {"method": "grid", "params": {
        "model.layers.0.units": {"values": [16, 10**15, 4 * 10**18]}}})
    result = runner.invoke(app, ["sweep", str(spec), "--dry-run"], terminal_width=300)
    assert result.exit_code == 2, result.output
    assert "trial 1: out of memory: Unable to allocate" in result.output
    assert "trial 2: out of memory: array is too big" in result.output  # NumPy's ValueError
    assert "trial 0" not in result.output


NULL_REFUSED = {"seed": "must be an integer >= 0", "method": "must be one of grid, random, tpe",
                "batch": "must be an integer >= 1",
                "name": "must be a name of letters, digits and ._-",
                "threads": "must be an integer from 1 to 2,147,483,647",
                "keep_checkpoints": "must be best or all",
                "prune": {"eta": "must be an integer >= 2", "min_epochs": "must be an integer >= 1",
                          "rule": "must be one of sha, median"},
                "refine": {"rounds": "must be an integer >= 1", "top": "must be an integer >= 1"},
                "validation": {"kfold": "must be an integer >= 2"}}


@pytest.mark.parametrize("key, inner", [(key, inner) for key, value in NULL_REFUSED.items()
                                        for inner in (value if isinstance(value, dict) else [None])])
def test_null_is_refused_where_a_key_has_a_default(tmp_path, key, inner, spec_errors, random_spec):
    value, path, allowed = ((None, key, NULL_REFUSED[key]) if inner is None else
                            ({inner: None}, f"{key}.{inner}", NULL_REFUSED[key][inner]))
    (error,) = spec_errors(tmp_path, {**random_spec, key: value})
    assert error.startswith(f"{path}: {allowed}") and error.endswith("null"), error


def test_null_means_none_where_leaving_a_key_out_does(tmp_path, write_sweep, random_spec):
    spec = load_spec(write_sweep(tmp_path, {**random_spec, "seeds": None, "claim": None, "refine": None,
                                            "prune": None, "validation": None, "metric": None,
                                            "report": None, "variants": None}))
    assert (spec.seeds, spec.claim, spec.refine, spec.prune, spec.kfold, spec.metric,
            spec.report, spec.variants) == (None, None, None, None, None, None, {}, None)
    grid = load_spec(write_sweep(tmp_path, random_spec), ["sweep.method=grid", "sweep.trials=null",
                                                     "sweep.params.optimizer.lr=[0.01]"])
    assert grid.trial_count == 2
    # an overrides: whose items are all commented out is null: none, and the command
    # line's base overrides still apply
    spec = load_spec(write_sweep(tmp_path, {**random_spec, "overrides": None}), ["train.epochs=2"])
    assert spec.overrides == ["train.epochs=2"]


def test_a_dry_run_checks_every_listed_value(tmp_path, write_sweep, random_spec):
    units = {"values": [4] * 50 + [-5]}  # more than the 50 points a domain lists for its checks
    spec = write_sweep(tmp_path, {**random_spec, "trials": 1, "refine": {"rounds": 1, "top": 1},
                                  "params": {"model.layers.0.units": units,
                                             "optimizer.lr": {"loguniform": [1e-4, 1e-1]}}})
    with pytest.raises(SpecError) as caught:
        prepare(spec)
    assert caught.value.errors == ["params.model.layers.0.units: units must be a positive integer, got -5"]


def test_a_goal_against_the_metrics_direction_is_refused(tmp_path, tiny_config, write_sweep,
                                                         spec_errors, random_spec):
    assert spec_errors(tmp_path, {**random_spec, "metric": {"name": "val/loss", "goal": "max"}}) == [
        "metric.goal: val/loss is minimized, so the goal is min (or leave it out), got 'max' (string)"]
    assert spec_errors(tmp_path, {**random_spec, "metric": {"name": "val/acc", "goal": "min"}}) == [
        "metric.goal: val/acc is maximized, so the goal is max (or leave it out), got 'min' (string)"]
    backwards = tiny_config(checkpoint={"monitor": "val/loss", "mode": "max"})
    with pytest.raises(SpecError, match="checkpoint.mode: val/loss is minimized, so the mode is min"):
        prepare(write_sweep(tmp_path, random_spec, backwards))
    spec, _ = prepare(write_sweep(tmp_path, random_spec), ["sweep.metric=val/loss"])
    assert (spec.metric, spec.goal) == ("val/loss", "min")


def test_the_report_study_is_one_dl_report_knows(tmp_path, spec_errors, random_spec):
    assert spec_errors(tmp_path, {**random_spec, "report": {"study": "inits"}}) == [
        "report.study: unknown study 'inits' (did you mean 'init'?); allowed: "
        "init, activations, regularization, batchnorm, optimizers, schedules, polynomial, "
        "weight_decay, depth_residual, clipping, cnn_vs_mlp, bottleneck, autoencoder_vs_pca, "
        "distributed"]
    pytest.importorskip("matplotlib")
    from dl_cli.studies.report import SECTIONS
    from dl_cli.schema import STUDIES

    assert set(STUDIES) == set(SECTIONS)


def test_a_date_among_the_values_or_in_a_variant_is_refused_as_read(tmp_path, spec_errors):
    import datetime

    day = datetime.date(2024, 1, 1)  # what YAML reads from an unquoted 2024-01-01
    assert spec_errors(tmp_path, {"method": "grid", "params": {"name": {"values": ["a", day]}},
                                  "variants": {"v": {"model.init": day}}}) == [
        "variants.v.model.init: expected numbers, strings, lists or mappings, got "
        "datetime.date(2024, 1, 1) (date); quote a date to make it a string",
        "params.name.values.1: expected numbers, strings, lists or mappings, got "
        "datetime.date(2024, 1, 1) (date); quote a date to make it a string"]


def test_threads_go_up_to_a_c_int_in_the_spec_and_to_what_blas_runs_in_a_local_sweep(
        tmp_path, write_sweep, spec_errors, random_spec, sweep):
    from dl_cli import threads

    (error,) = spec_errors(tmp_path, {**random_spec, "threads": 2**31})
    assert error == ("threads: must be an integer from 1 to 2,147,483,647 (BLAS takes a C int), "
                     "got 2147483648 (integer)")
    assert load_spec(write_sweep(tmp_path, {**random_spec, "threads": 2**31 - 1})).threads == 2**31 - 1
    most = threads.blas_most(1000)
    if most == 1000:
        pytest.skip("this BLAS runs 1000 threads")
    result = sweep(write_sweep(tmp_path, {**random_spec, "threads": 1000}), tmp_path / "s", "--dry-run")
    assert result.exit_code == 2 and not (tmp_path / "s").exists()
    assert result.output.strip() == (f"error: threads: expected an integer from 1 to {most}, the "
                                     f"most threads NumPy's BLAS runs here, got 1000")
