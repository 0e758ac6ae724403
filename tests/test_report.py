"""The tables: gradient checks, registries, runs and compare (k-fold runs), the sweep's
leaderboard."""

import io
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from dl_cli import components, crossval, data, nn, optim, schedules, training  # noqa: F401  (fill the registries)
from dl_cli.cli.app import app
from dl_cli.config import load_config
from dl_cli.gradcheck import ZERO, Check, check_model
from dl_cli.registry import (AUGMENTATIONS, DATASETS, INITIALIZERS, LAYERS, LOSSES, OPTIMIZERS,
                             PREPROCESSORS, SCHEDULES, Registry)
from dl_cli.sweep.ledger import TrialState
from dl_cli.sweep.results import leaderboard
from dl_cli.sweep.base_config import prepare
from dl_cli.listing import rows, runs_table
from dl_cli.tables import compare_table, gradcheck_summary, gradcheck_table, registry_table

runner = CliRunner()
REGISTRIES = (LAYERS, LOSSES, INITIALIZERS, OPTIMIZERS, SCHEDULES, DATASETS, PREPROCESSORS,
              AUGMENTATIONS)


def text(table) -> str:
    console = Console(width=240, record=True, color_system=None)
    console.print(table)
    return console.export_text()


@pytest.fixture(scope="session")
def write_model(tiny_config, write_config):
    """``write_model(folder, layers)``: a small config of these layers, trained 2 epochs."""
    def write(folder: Path, layers) -> Path:
        cfg = tiny_config(name="report-test", samples=30, model={"layers": layers},
                          train={"epochs": 2, "batch_size": 16})
        return write_config(folder, cfg, "model.yaml")
    return write


# -- gradient check ---------------------------------------------------------------------
W_OK = Check("0 conv2d", "W", (32, 1, 3, 3), 1.49e-9, largest=0.3)
B_ZERO = Check("0 conv2d", "b", (32,), 6.66e-2, largest=1e-10)  # batchnorm follows


def test_a_pass_by_zero_gradients_says_so_in_the_table():
    out = text(gradcheck_table([W_OK, B_ZERO]))
    (b_row,) = [line for line in out.splitlines() if "│ b " in line]
    assert "pass (both ≈ 0)" in b_row
    (w_row,) = [line for line in out.splitlines() if "│ W " in line]
    assert "both" not in w_row
    note = " ".join(out.split())  # the note under the table, wrapped to its width
    assert f"below {ZERO:.0e}, the rounding noise" in note and "batchnorm" in note


def test_a_table_of_ordinary_passes_has_no_note():
    table = gradcheck_table([W_OK])
    assert table.caption is None and "both" not in text(table)


def test_the_max_error_leaves_out_tensors_whose_gradients_are_both_zero():
    line = gradcheck_summary([W_OK, B_ZERO])
    assert "1.5e-09" in line and "6.7e-02" not in line
    assert line.startswith("all 2 tensors pass") and "1 with both gradients ≈ 0" in line
    assert gradcheck_summary([W_OK]) == "1 tensor passes (max error 1.5e-09)"
    assert "every gradient ≈ 0" in gradcheck_summary([B_ZERO])
    assert "FAIL" in gradcheck_summary([W_OK, Check("1 affine", "W", (2,), 0.5, largest=1.0)])


def test_the_bias_before_batchnorm_is_explained_on_a_real_model(tmp_path, write_model):
    path = write_model(tmp_path, [{"type": "affine", "units": 6}, {"type": "batchnorm"}, "tanh",
                            {"type": "affine", "units": 3}])
    result = runner.invoke(app, ["gradcheck", str(path)], terminal_width=200)
    assert result.exit_code == 0, result.output
    (row,) = [line for line in result.output.splitlines() if "0 affine" in line and "│ b " in line]
    assert "pass (both ≈ 0)" in row

    cfg = load_config(path)
    splits = data.load(cfg.data, seed=cfg.seed, dtype="float64")
    model = components.build_model(cfg, splits.in_shape, dtype="float64")
    checks = check_model(model, splits.train.X[:4], splits.train.y[:4], np.random.default_rng(0))
    (bias,) = [c for c in checks if c.layer == "0 affine" and c.param == "b"]
    worst = max(c.error for c in checks if c is not bias)
    assert f"max error {worst:.1e}" in gradcheck_summary(checks)


# -- dl layers ----------------------------------------------------------------------------
def test_every_registry_table_is_headed_by_its_plural():
    plurals = {"layer": "layers", "loss": "losses", "initializer": "initializers",
               "optimizer": "optimizers", "schedule": "schedules", "dataset": "datasets",
               "preprocessing step": "preprocessing steps", "augmentation": "augmentations"}
    assert {r.kind: registry_table(r).title for r in REGISTRIES} == plurals
    result = runner.invoke(app, ["layers"], terminal_width=400)
    assert "losses" in result.output and "losss" not in result.output


@pytest.mark.parametrize("registry, name", [(r, n) for r in REGISTRIES for n in r.names()],
                         ids=lambda v: v if isinstance(v, str) else v.kind)
def test_every_description_is_whole_sentences(registry, name):
    summary = registry.summary(name)
    assert summary and "\n" not in summary and "  " not in summary
    assert summary.endswith("."), summary


@pytest.mark.parametrize("registry, name, tail", [pytest.param(*case, id=case[1]) for case in [
    (OPTIMIZERS, "adagrad", "w ← w − lr·g/(√s + ε)`."),
    (OPTIMIZERS, "adamw", "with `wd = weight_decay`."),
    (LAYERS, "prelu", "starting at `alpha`."),
    (DATASETS, "xor", "one hidden layer does."),
    (PREPROCESSORS, "minmax", "(other splits may fall slightly outside)."),
    (AUGMENTATIONS, "crop", "`pad: 0` changes nothing."),
    (SCHEDULES, "plateau", "`lr = max(lr₀·factorʳ, min_lr)`."),
    (SCHEDULES, "warmup", "or lr₀ when `after` is none."),
]])
def test_a_description_is_the_whole_first_paragraph(registry, name, tail):
    assert registry.summary(name).endswith(tail)


def test_a_paragraph_that_introduces_a_formula_loses_its_colon_and_keeps_its_brackets():
    things = Registry("thing")

    @things.register("gather")
    class Gather:
        """Row ``x[n, t]`` of a table, picked for
        every [bold]step[/]:

            out[n, t] = W[x[n, t]]

        More detail."""

    # reST literals in single backticks, as a terminal reader expects them
    assert things.summary("gather") == "Row `x[n, t]` of a table, picked for every [bold]step[/]."
    assert "every [bold]step[/]." in text(registry_table(things))  # markup shown, not applied


# -- dl runs, dl compare: k-fold runs ------------------------------------------------------
@pytest.fixture(scope="module")
def kfold_and_plain(tmp_path_factory, write_model):
    tmp = tmp_path_factory.mktemp("runs")
    path = write_model(tmp, [{"type": "affine", "units": 8}, "relu", {"type": "affine", "units": 3}])
    kfold = crossval.train_folds(load_config(path, ["validation.kfold=3", "name=kf"]),
                                 progress=False)
    cfg = load_config(path, ["name=plain"])
    run = training.start(cfg)
    plain = training.train(cfg, run, progress=False)
    return tmp / "runs", kfold, plain


def test_compare_shows_the_kfold_mean_and_says_it_is_one(kfold_and_plain):
    root, kfold, plain = kfold_and_plain
    assert "best" not in kfold  # what a k-fold summary holds: the mean, no best epoch
    result = runner.invoke(app, ["compare", kfold["run_dir"], plain["run_dir"]], terminal_width=200)
    assert result.exit_code == 0, result.output
    (row,) = [line for line in result.output.splitlines() if "best val/acc" in line]
    mean, std = f"{kfold['best_value']:.4g}", f"{kfold['best_std']:.4g}"
    assert f"{mean} ± {std}" in row and f"{plain['best_value']:.4g}" in row
    (status,) = [line for line in result.output.splitlines() if "status" in line]
    assert "completed (3-fold mean)" in status and status.count("fold") == 1


def test_runs_marks_the_kfold_mean(kfold_and_plain):
    root, kfold, plain = kfold_and_plain
    out = text(runs_table(rows(root), root))
    lines = {line.split("│")[1].strip(): line for line in out.splitlines() if line.startswith("│")}
    parent = str(Path(kfold["run_dir"]).relative_to(root))
    assert "completed (3-fold mean)" in lines[parent]
    assert f"{kfold['best_value']:.4f} ± {kfold['best_std']:.4f}" in lines[parent]
    assert "fold mean" not in lines[str(Path(plain["run_dir"]).relative_to(root))]
    assert "fold mean" not in lines[f"{parent}/fold-0"]  # a fold is an ordinary run


def test_compare_table_of_a_kfold_run_without_the_mean_shows_a_dash(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.json").write_text(
        '{"status": "diverged", "kfold": 2, "monitor": "val/acc", "best_value": null, '
        '"best_std": null, "test": {}}')
    out = text(compare_table([run], [{}]))
    assert "diverged (2-fold mean)" in out
    assert [line for line in out.splitlines() if "best val/acc" in line][0].rstrip(" │").endswith("-")


# -- dl sweep: the leaderboard ---------------------------------------------------------------
GRID = {"method": "grid", "params": {"optimizer.lr": {"values": [0.1, 0.03, 0.01, 0.003]}}}


def test_an_interrupted_sweep_ranks_only_the_configurations_with_a_result(tmp_path, write_sweep,
                                                                          observe_sweeps):
    def ctrl_c_after_the_second_trial(sweep_runner, event, payload):  # drain and stop
        completed = sum(s.status == "completed" for s in sweep_runner.table.values())
        if event == "recorded" and completed == 2 and not sweep_runner.draining:
            sweep_runner.request_stop()

    spec = write_sweep(tmp_path, GRID)
    with observe_sweeps(ctrl_c_after_the_second_trial):
        result = runner.invoke(app, ["sweep", str(spec), "--sweep-dir", str(tmp_path / "sweep")],
                               terminal_width=240)
    assert result.exit_code == 130, result.output
    words = " ".join(result.output.split())  # the title, wrapped to the terminal
    assert "best 2 of 2 scored configurations by val/acc (max); not scored: 2 pending" in words
    ranks = [line for line in result.output.splitlines() if "│ pending" in line]
    assert ranks == []  # no rows for configurations without a result


def test_a_configuration_scored_on_some_of_its_seeds_says_how_many(tmp_path, write_sweep):
    spec, _ = prepare(write_sweep(tmp_path, {**GRID, "seeds": [0, 1]}))
    params = [{"optimizer.lr": lr} for lr in (0.1, 0.03)]
    table = {0: TrialState(0, 0, 0, 0, params[0], status="completed", metric=0.9, epochs=2),
             1: TrialState(1, 0, 0, 1, params[0], status="pending"),
             2: TrialState(2, 0, 1, 0, params[1], status="completed", metric=0.8, epochs=2),
             3: TrialState(3, 0, 1, 1, params[1], status="completed", metric=0.7, epochs=2),
             4: TrialState(4, 0, 2, 0, {"optimizer.lr": 0.01}, status="failed"),
             5: TrialState(5, 0, 2, 1, {"optimizer.lr": 0.01}, status="failed")}
    out = text(leaderboard(table, spec))
    assert "best 2 of 2 scored configurations" in out and "not scored: 1 failed" in out
    (partial,) = [line for line in out.splitlines() if "0.9000" in line]
    assert "(1 of 2 seeds)" in partial
    (full,) = [line for line in out.splitlines() if "0.7500" in line]
    assert "seeds)" not in full


def test_a_sweep_with_no_result_yet_says_so(tmp_path, write_sweep):
    spec, _ = prepare(write_sweep(tmp_path, GRID))
    table = {i: TrialState(i, 0, i, None, {"optimizer.lr": 0.1}) for i in range(2)}
    assert leaderboard(table, spec).title == (
        "t: no configuration scored by val/acc (max) yet; not scored: 2 pending")


def test_names_in_table_titles_and_cells_are_printed_as_given(tmp_path):
    from dl_cli.cli.output import AS_IS
    from dl_cli.tables import compare_table, folds_title, summary_title

    def text(table, **options):
        console = Console(width=400, record=True, file=io.StringIO())
        console.print(table, **options)
        return console.export_text()

    summary = {"name": "n[red]x", "status": "completed", "monitor": "val/acc", "best_value": 0.5,
               "best_epoch": 1, "epochs": 1, "best": {"val/acc": 0.5}, "test": {}}
    assert "n[red]x" in text(summary_title(summary), **AS_IS)
    folds = {**summary, "kfold": 2, "best_std": 0.0,
             "folds": [{"fold": 0, "status": "completed", "best_epoch": 1, "best_value": 0.5,
                        "test": {}}]}
    assert "n[red]x" in text(folds_title(folds), **AS_IS)
    runs = [tmp_path / "a[red]", tmp_path / "b"]
    table = compare_table(runs, [{"data": {"preprocess": ["[bold]"]}}, {"data": {"preprocess": []}}])
    assert "a[red]" in text(table) and "[bold]" in text(table)


def test_a_study_names_long_and_continuous_domains_instead_of_listing_them(tmp_path, write_sweep):
    pytest.importorskip("matplotlib")
    from dl_cli.studies.report import how_it_ran
    from dl_cli.studies.study import Study

    spec, _ = prepare(write_sweep(tmp_path, {
        "method": "random", "trials": 2,
        "params": {"model.layers.0.units": {"int_uniform": [1, 10**7]},
                   "optimizer.lr": {"loguniform": [1.0e-4, 0.1]},
                   "regularization.l2": {"values": [0.0, 1.0e-4]}}}))
    study = Study(tmp_path, spec, [])
    described = how_it_ran(study)  # not ten million points
    assert "model.layers.0.units: int_uniform [1, 10000000]" in described
    assert "optimizer.lr: loguniform [0.0001, 0.1]" in described  # not a set {0.0001, 0.1}
    assert "regularization.l2 ∈ {0, 0.0001}" in described
    assert study.swept_param() == "model.layers.0.units"
