"""Search plots of `dl plot SWEEP`: permutation importance and the partial dependence of
the two most important parameters, from a random forest over the completed trials."""

import math

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from dl_cli.cli.app import app
from dl_cli.sweep.folder import trial_table
from dl_cli.sweep.importance import (MIN_TRIALS, fit, importances, most_important_pair,
                                     partial_dependence)
from dl_cli.sweep.ledger import TrialState
from dl_cli.sweep.spec import load_spec

pytest.importorskip("matplotlib")
from dl_cli.plot_trials import plot_contour, plot_importance  # noqa: E402

runner = CliRunner()

PARAMS = {"optimizer.lr": {"loguniform": [1.0e-4, 1.0e-1]},
          "model.layers.0.units": {"values": [4, 16, 64]},
          "model.layers.1": {"values": ["relu", "tanh"]}}


@pytest.fixture(scope="session")
def write_spec(tiny_config, write_config):
    """``write_spec(folder)``: a random search of 24 trials over PARAMS, on a small config
    of 60 spiral points per class."""
    def write(folder):
        write_config(folder, tiny_config(samples=60), "base.yaml")
        spec = folder / "sweep.yaml"
        spec.write_text(yaml.safe_dump({"base": "base.yaml", "name": "search", "method": "random",
                                        "trials": 24, "params": PARAMS}, sort_keys=False))
        return spec
    return write


@pytest.fixture(scope="session")
def the_spec(write_spec):
    """``the_spec(folder)``: the search, loaded as ``dl sweep`` settles it."""
    def load(folder):
        spec = load_spec(write_spec(folder))
        spec.metric, spec.goal = "val/acc", "max"  # as dl sweep settles them from the base config
        return spec
    return load


def synthetic_table(n: int = 40, status=lambda i: "completed") -> dict[int, TrialState]:
    """Trials whose metric depends on the learning rate alone: best at 10⁻², falling off
    with the distance in decades; units and activation drawn at random, ignored."""
    rng = np.random.default_rng(0)
    table = {}
    for i in range(n):
        lr = float(10 ** rng.uniform(-4, -1))
        params = {"optimizer.lr": lr, "model.layers.0.units": int(rng.choice([4, 16, 64])),
                  "model.layers.1": str(rng.choice(["relu", "tanh"]))}
        metric = 0.9 - 0.2 * (math.log10(lr) + 2) ** 2
        table[i] = TrialState(i, 0, i, None, params, status=status(i), metric=metric)
    return table


def test_the_parameter_the_metric_depends_on_is_the_most_important(tmp_path, the_spec):
    spec = the_spec(tmp_path)
    model = fit(spec, synthetic_table())
    assert [c.name for c in model.columns] == list(PARAMS)
    assert [c.kind for c in model.columns] == ["log", "number", "category"]
    shares, spread = importances(model)
    assert shares.sum() == pytest.approx(1.0)
    assert shares[0] > 0.9 and shares[1] < 0.1 and shares[2] < 0.1
    assert np.all(spread >= 0)
    assert most_important_pair(model, shares)[0] == 0
    again = importances(fit(spec, synthetic_table()))  # seeded: the same each time
    assert np.array_equal(again[0], shares)


def test_partial_dependence_is_the_forests_mean_prediction_over_the_trials(tmp_path, the_spec):
    spec = the_spec(tmp_path)
    model = fit(spec, synthetic_table())
    a, b, depend = partial_dependence(model, 0, 2)
    assert len(a) == 30 and list(b) == [0.0, 1.0]  # log10(lr) from lowest to highest; 2 labels
    assert a[0] == model.X[:, 0].min() and a[-1] == model.X[:, 0].max()
    assert depend.shape == (2, 30)
    for p, q in ((0, 0), (17, 1), (29, 0)):
        X = model.X.copy()
        X[:, 0], X[:, 2] = a[p], b[q]
        assert depend[q, p] == pytest.approx(model.forest.predict(X).mean())
    # it follows the metric: highest near lr = 10⁻², lower at both ends
    peak = a[np.argmax(depend[0])]
    assert -2.5 < peak < -1.5 and depend[0].max() > depend[0][0] and depend[0].max() > depend[0][-1]


def test_only_completed_trials_are_fitted_and_too_few_fit_nothing(tmp_path, the_spec):
    spec = the_spec(tmp_path)
    pruned_every_third = synthetic_table(status=lambda i: "pruned" if i % 3 == 0 else "completed")
    model = fit(spec, pruned_every_third)
    assert len(model.y) == len([s for s in pruned_every_third.values() if s.status == "completed"])
    assert fit(spec, synthetic_table(n=MIN_TRIALS - 1)) is None
    same = synthetic_table()
    for state in same.values():
        state.metric = 0.5
    assert fit(spec, same) is None  # nothing to explain


def test_dl_plot_draws_importance_and_contour_titled_with_the_metric_and_trial_count(
        tmp_path, the_spec, write_spec):
    result = runner.invoke(app, ["sweep", str(write_spec(tmp_path)), "--sweep-dir",
                                 str(tmp_path / "sweep")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["plot", str(tmp_path / "sweep")], terminal_width=300)
    assert result.exit_code == 0, result.output
    plots = tmp_path / "sweep" / "plots"
    assert result.output.split() == [str(plots / name) for name in (
        "metric_vs_params.png", "top_curves.png", "importance.png", "contour.png")]
    assert all(path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for path in plots.iterdir())

    spec = the_spec(tmp_path)
    table = trial_table(tmp_path / "sweep", spec)
    completed = sum(s.status == "completed" for s in table.values())
    model = fit(spec, table)
    shares, spread = importances(model)
    figure = plot_importance(spec, model, shares, spread, tmp_path / "importance.png")
    assert figure.get_suptitle() == f"search: parameter importance for val/acc\n({completed} completed trials)"
    i, j = most_important_pair(model, shares)
    figure = plot_contour(spec, model, i, j, tmp_path / "contour.png")
    names = model.columns[i].name, model.columns[j].name
    assert figure.get_suptitle() == (f"search: val/acc over {names[0]} and {names[1]}\n"
                                     f"({completed} completed trials)")
