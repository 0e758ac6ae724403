"""`dl train` end to end: run folder, determinism, resume, early stopping, divergence."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from dl_cli import training
from dl_cli.components import build_model
from dl_cli.cli.app import app
from dl_cli.checks import ConfigError
from dl_cli.config import load_config
from dl_cli.config.resolved import dump_resolved
from dl_cli.nn import ShapeError
from dl_cli.storage import load_npz

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture
def spiral(tiny_config):
    """A 3-class spiral of 60 points per class through batchnorm and dropout, with an L2
    penalty and a step schedule: 6 epochs of ceil(90 / 16) = 6 iterations."""
    return tiny_config(
        name="spiral-test", samples=60,
        model={"layers": [{"type": "affine", "units": 16}, {"type": "batchnorm"}, "relu",
                          {"type": "dropout", "drop_rate": 0.2}, {"type": "affine", "units": 3}]},
        regularization={"l2": 1.0e-3}, schedule={"type": "step", "every": 2, "gamma": 0.5},
        train={"epochs": 6, "batch_size": 16})


def run_dir_of(tmp_path, name="spiral-test"):
    (found,) = [p for p in (tmp_path / "runs" / name).iterdir() if p.name != "latest"]
    return found


def metric_lines(run_dir):
    lines = [json.loads(s) for s in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for line in lines:
        line.pop("time", None)
    return lines


def test_train_writes_the_run_folder(tmp_path, write_config, spiral):
    result = runner.invoke(app, ["train", str(write_config(tmp_path, spiral)), "--quiet"])
    assert result.exit_code == 0, result.output
    run = run_dir_of(tmp_path)
    for name in ("config.yaml", "metrics.jsonl", "summary.json", "train.log",
                 "checkpoints/best.npz", "checkpoints/last.npz"):
        assert (run / name).exists(), name
    assert not (run / "run.lock").exists()
    lines = metric_lines(run)
    assert [r["epoch"] for r in lines] == [1, 2, 3, 4, 5, 6]
    assert {"epoch", "step", "lr", "train/loss", "train/acc", "val/loss", "val/acc"} <= set(lines[0])
    assert [r["lr"] for r in lines] == pytest.approx([1e-2, 1e-2, 5e-3, 5e-3, 2.5e-3, 2.5e-3])
    assert lines[-1]["step"] == 6 * 6  # ceil(90 / 16) iterations per epoch
    summary = json.loads((run / "summary.json").read_text())
    best = max(lines, key=lambda r: r["val/acc"])
    assert summary["best_epoch"] == best["epoch"] and summary["best_value"] == best["val/acc"]
    assert summary["status"] == "completed" and "test/acc" in summary["test"]
    assert summary["environment"]["numpy"] == np.__version__
    # The resolved config reruns as it is.
    assert load_config(run / "config.yaml") == load_config(write_config(tmp_path, spiral))


def test_best_checkpoint_holds_the_best_epoch_parameters(tmp_path, write_config, spiral):
    cfg = load_config(write_config(tmp_path, spiral))
    run = training.start(cfg)
    summary = training.train(cfg, run, progress=False)
    best = run.load_checkpoint("best")
    assert best["meta"]["epoch"] == summary["best_epoch"]
    assert best["meta"]["best_value"] == summary["best_value"]
    # Evaluating the best checkpoint reproduces the recorded validation accuracy.
    result = runner.invoke(app, ["eval", str(run.path), "--split", "val"])
    assert result.exit_code == 0, result.output
    assert f"{summary['best_value']:.4g}" in result.output


def test_same_seed_gives_identical_metrics_and_checkpoints(tmp_path, write_config, spiral):
    for sub in ("a", "b"):
        config = write_config(tmp_path / sub, spiral)
        assert runner.invoke(app, ["train", str(config), "-q"]).exit_code == 0
    a, b = run_dir_of(tmp_path / "a"), run_dir_of(tmp_path / "b")
    assert metric_lines(a) == metric_lines(b)
    assert (a / "checkpoints/best.npz").read_bytes() == (b / "checkpoints/best.npz").read_bytes()


def test_overrides_and_print_config(tmp_path, write_config, spiral):
    path = write_config(tmp_path, spiral)
    result = runner.invoke(app, ["train", str(path), "optimizer.lr=1e-3",
                                 "model.layers.0.units=8", "--print-config"])
    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(result.output)
    assert printed["optimizer"]["lr"] == 0.001
    assert printed["model"]["layers"][0]["units"] == 8
    assert not (tmp_path / "runs").exists()  # nothing trained


def test_bad_config_exits_2_before_loading_anything(tmp_path, spiral, write_config):
    bad = {**spiral, "optimizer": {"type": "adma", "lr": -1}, "train": {"epochs": 2, "batchsize": 4}}
    result = runner.invoke(app, ["train", str(write_config(tmp_path, bad))])
    assert result.exit_code == 2
    assert "adma" in result.output and "did you mean 'adam'" in result.output
    assert "train.batchsize" in result.output and "batch_size" in result.output
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("changes,message", [
    # a monitor the run never reports: no best checkpoint, no test score
    ({"data": {"split": {"val": 0.0, "test": 0.25}}},
     "checkpoint.monitor: auto (val/acc for this model) needs a validation split"),
    ({"data": {"dataset": "polynomial"}, "model": {"layers": [{"type": "affine", "units": 1}],
                                                   "loss": "mse"},
      "checkpoint": {"monitor": "val/acc"}},
     "checkpoint.monitor: a regression model does not report val/acc"),
    # a misspelled initializer inside a block, which only building the model would look up
    ({"model": {"layers": [{"type": "residual", "layers": [
        {"type": "affine", "units": 4, "init": "he_nromal"}]}, {"type": "affine", "units": 3}]}},
     "model.layers.0.layers.0.init: unknown initializer 'he_nromal' (did you mean 'he_normal'?)"),
    ({"train": {"epochs": 6, "early_stopping": {"patience": 0}}},
     "train.early_stopping.patience: must be >= 1, got 0"),
])
def test_configs_that_would_train_for_nothing_exit_2(tmp_path, changes, message, spiral,
                                                     write_config):
    result = runner.invoke(app, ["train", str(write_config(tmp_path, {**spiral, **changes})), "-q"])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert message in " ".join(result.output.split())
    assert not (tmp_path / "runs").exists()


def test_more_scores_than_classes_trains_with_a_warning(tmp_path, write_config, spiral):
    result = runner.invoke(app, ["train", str(write_config(tmp_path, spiral)), "model.layers.4.units=5",
                                 "train.epochs=1", "-q"])
    assert result.exit_code == 0, result.output
    message = "the model gives 5 scores per sample but the data has 3 classes"
    assert message in " ".join(result.output.split())
    assert message in (run_dir_of(tmp_path) / "train.log").read_text()
    exact = runner.invoke(app, ["train", str(write_config(tmp_path, spiral, name="exact.yaml")),
                                "train.epochs=1", "-q"])
    assert exact.exit_code == 0 and "warning" not in exact.output


def test_interrupt_and_resume_match_an_uninterrupted_run(tmp_path, write_config, spiral,
                                                         interrupt_at):
    straight_config = write_config(tmp_path / "straight", spiral)
    assert runner.invoke(app, ["train", str(straight_config), "-q"]).exit_code == 0
    straight = run_dir_of(tmp_path / "straight")

    with interrupt_at(15):  # mid-epoch 3
        result = runner.invoke(app, ["train", str(write_config(tmp_path / "resumed", spiral)), "-q"])
    assert result.exit_code == 130
    resumed = run_dir_of(tmp_path / "resumed")
    assert "dl train --resume" in result.output
    assert len(metric_lines(resumed)) == 2
    result = runner.invoke(app, ["train", "--resume", str(resumed), "-q"])
    assert result.exit_code == 0, result.output
    assert metric_lines(resumed) == metric_lines(straight)
    for kind in ("best", "last"):
        a = load_npz(straight / f"checkpoints/{kind}.npz")
        b = load_npz(resumed / f"checkpoints/{kind}.npz")
        for key in a:
            if key.startswith("param/"):
                np.testing.assert_array_equal(a[key], b[key])
    s1 = json.loads((straight / "summary.json").read_text())
    s2 = json.loads((resumed / "summary.json").read_text())
    assert (s1["best_epoch"], s1["best_value"], s1["test"]) == (s2["best_epoch"], s2["best_value"], s2["test"])


def test_early_stopping_stops_after_patience(tmp_path, spiral, write_config):
    cfg = {**spiral, "optimizer": {"type": "sgd", "lr": 1.0e-6},
           "train": {"epochs": 30, "batch_size": 16,
                     "early_stopping": {"monitor": "val/loss", "patience": 2, "min_delta": 1.0}}}
    result = runner.invoke(app, ["train", str(write_config(tmp_path, cfg)), "-q"])
    assert result.exit_code == 0, result.output
    lines = metric_lines(run_dir_of(tmp_path))
    # The first epoch sets the reference; two more without a 1.0 improvement stop it.
    assert len(lines) == 3 and lines[-1]["status"] == "early_stopped"


def test_divergence_stops_with_exit_3_and_keeps_the_best_checkpoint(tmp_path, spiral, write_config):
    cfg = {**spiral, "optimizer": {"type": "sgd", "lr": 1.0e12},
           "model": {"layers": [{"type": "affine", "units": 16}, "relu", {"type": "affine", "units": 3}]},
           "train": {"epochs": 5, "batch_size": 16}}
    result = runner.invoke(app, ["train", str(write_config(tmp_path, cfg)), "-q"])
    assert result.exit_code == 3
    assert "diverged" in result.output and "epoch" in result.output and "iteration" in result.output
    run = run_dir_of(tmp_path)
    assert metric_lines(run)[-1]["status"] == "diverged"
    assert json.loads((run / "summary.json").read_text())["status"] == "diverged"


def test_full_batch_and_batch_size_one(tmp_path, spiral, write_config):
    plain = {**spiral, "model": {"layers": [{"type": "affine", "units": 8}, "relu",
                                            {"type": "affine", "units": 3}]}}
    for batch_size, steps in (("full", 1), (1, 90)):
        cfg = load_config(write_config(tmp_path, plain),
                          [f"train.batch_size={batch_size}", "train.epochs=1"])
        parts = training.assemble(cfg)
        solver = training.make_solver(cfg, parts, None, progress=False)
        solver.train()
        assert solver.step_count == steps


def test_a_lone_last_sample_joins_the_previous_batch(tmp_path, write_config, spiral):
    cfg = load_config(write_config(tmp_path, spiral), ["train.batch_size=89", "train.epochs=1"])
    solver = training.make_solver(cfg, training.assemble(cfg), None, progress=False)
    sizes = []
    original = solver.step
    solver.step = lambda idx: sizes.append(len(idx)) or original(idx)
    solver.train()
    assert sizes == [90]


def test_a_stop_request_ends_training_after_the_current_iteration(tmp_path, write_config, spiral):
    """As a first Ctrl-C: the iteration under way ends, then Interrupted; a second Ctrl-C
    (SIGINT) no longer waits, while another SIGTERM changes nothing."""
    from dl_cli.stopping import Interrupted

    cfg = load_config(write_config(tmp_path, spiral))
    solver = training.make_solver(cfg, training.assemble(cfg), None, progress=False)
    solver.observers.append(lambda event, payload: event == "start" and solver.request_stop())
    with pytest.raises(Interrupted, match="at epoch 1, iteration 1"):
        solver.train()
    assert (solver.step_count, solver.status) == (1, "interrupted")
    solver.request_stop(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        solver.request_stop(signal.SIGINT)


def test_regression_reports_mse_and_r2(tmp_path):
    cfg = load_config(ROOT / "configs/polynomial_fit.yaml", ["train.epochs=5", f"runs_dir={tmp_path}"])
    run = training.start(cfg)
    summary = training.train(cfg, run, progress=False)
    assert {"test/mse", "test/r2", "test/loss"} <= set(summary["test"])


def test_second_process_on_the_same_run_folder_is_refused(tmp_path, write_config, spiral):
    cfg = load_config(write_config(tmp_path, spiral))
    run = training.start(cfg)
    result = runner.invoke(app, ["train", "--resume", str(run.path)])
    assert result.exit_code == 2
    assert f"in use by process {os.getpid()}" in result.output
    run.release()


@pytest.mark.slow
def test_ctrl_c_in_a_real_process_saves_last_and_exits_130(tmp_path, spiral, write_config):
    cfg = {**spiral, "train": {"epochs": 100000, "batch_size": 16}}
    path = write_config(tmp_path, cfg)
    proc = subprocess.Popen([sys.executable, "-m", "dl_cli", "train", str(path), "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    metrics = None
    for _ in range(300):  # wait until an epoch has been logged
        runs = list((tmp_path / "runs").glob("*/*/metrics.jsonl"))
        if runs and runs[0].read_text().strip():
            metrics = runs[0]
            break
        proc.poll()
        assert proc.returncode is None, proc.stdout.read()
        time.sleep(0.1)
    assert metrics is not None
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, output
    assert "dl train --resume" in output
    assert (metrics.parent / "checkpoints/last.npz").exists()


def test_kfold_scores_the_config_by_the_mean_over_folds(tmp_path, write_config, spiral):
    result = runner.invoke(app, ["train", str(write_config(tmp_path, spiral)), "validation.kfold=3",
                                 "train.epochs=2"])
    assert result.exit_code == 0, result.output
    root = run_dir_of(tmp_path)
    summary = json.loads((root / "summary.json").read_text())
    fold_best = []
    for fold in range(3):
        lines = metric_lines(root / f"fold-{fold}")
        fold_best.append(max(r["val/acc"] for r in lines))
        # each fold validates on a third of the pooled train + val samples
        assert json.loads((root / f"fold-{fold}" / "summary.json").read_text())["data"]["sizes"]["val"] == 45
    assert summary["fold_values"] == fold_best
    assert summary["best_value"] == pytest.approx(np.mean(fold_best))
    assert summary["best_std"] == pytest.approx(np.std(fold_best, ddof=1))
    assert "3-fold cross-validation" in result.output
    assert "fold 1 of 3: 90 train / 45 val" in result.output  # each fold says where it goes
    assert not (root / "checkpoints").exists()  # the folds hold them


def test_an_interrupted_kfold_run_resumes_to_the_uninterrupted_result(tmp_path, write_config,
                                                                      spiral, interrupt_at):
    config = write_config(tmp_path, spiral)
    straight, run_dir = tmp_path / "straight", tmp_path / "run"
    args = ["validation.kfold=3", "train.epochs=3", "-q"]
    assert runner.invoke(app, ["train", str(config), *args, "--run-dir", str(straight)]).exit_code == 0
    with interrupt_at(3 * 6 + 8):  # Ctrl-C in the second fold's second epoch
        stopped = runner.invoke(app, ["train", str(config), *args, "--run-dir", str(run_dir)])
    assert stopped.exit_code == 130, stopped.output
    assert f"Resume with: dl train --resume {run_dir}" in stopped.output
    one_fold = runner.invoke(app, ["train", "--resume", str(run_dir / "fold-1")])
    assert one_fold.exit_code == 2
    assert f"resume the whole run, dl train --resume {run_dir}" in " ".join(one_fold.output.split())
    resumed = runner.invoke(app, ["train", "--resume", str(run_dir)])
    assert resumed.exit_code == 0, resumed.output
    assert "fold 2 of 3" in resumed.output and "(resumed)" in resumed.output
    for fold in range(3):
        assert metric_lines(run_dir / f"fold-{fold}") == metric_lines(straight / f"fold-{fold}")
    summaries = [json.loads((d / "summary.json").read_text()) for d in (straight, run_dir)]
    for key in ("status", "best_value", "best_std", "fold_values", "test"):
        assert summaries[0][key] == summaries[1][key], key


def test_kfold_larger_than_the_data_exits_2_before_making_a_folder(tmp_path, write_config, spiral):
    result = runner.invoke(app, ["train", str(write_config(tmp_path, spiral)), "validation.kfold=1000",
                                 "-q"], terminal_width=300)
    assert result.exit_code == 2, result.output
    assert ("validation.kfold: must be at most 135 (the samples of the train and val splits, "
            "which the folds share out), got 1000") in result.output
    assert not (tmp_path / "runs").exists()


def test_resume_says_what_does_not_go_with_it_and_prints_the_runs_config(tmp_path, spiral,
                                                                         write_config):
    run_dir = tmp_path / "run"
    assert runner.invoke(app, ["train", str(write_config(tmp_path, spiral)), "--run-dir", str(run_dir),
                               "-q"]).exit_code == 0
    cases = [(["optimizer.lr=9"], "optimizer.lr: a resumed run continues its own config.yaml; "
                                  "only train.epochs and train.early_stopping.patience may change"),
             (["--run-dir", str(tmp_path / "x")], "--run-dir names a new run's folder")]
    for extra, message in cases:
        result = runner.invoke(app, ["train", "--resume", str(run_dir), *extra], terminal_width=300)
        assert result.exit_code == 2 and message in result.output, result.output
    printed = runner.invoke(app, ["train", "--resume", str(run_dir), "--print-config"])
    assert printed.exit_code == 0
    assert printed.output == dump_resolved(load_config(run_dir / "config.yaml"))
    assert len(metric_lines(run_dir)) == spiral["train"]["epochs"]  # nothing trained


def test_threads_option_limits_blas(tmp_path, monkeypatch, write_config, spiral):
    from threadpoolctl import threadpool_info

    seen = []
    original = training.train

    def spy(*args, **kwargs):
        seen.extend(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")
        return original(*args, **kwargs)

    monkeypatch.setattr(training, "train", spy)
    result = runner.invoke(app, ["train", str(write_config(tmp_path, spiral)), "--threads", "1", "-q"])
    assert result.exit_code == 0, result.output
    assert seen and set(seen) == {1}
    config = write_config(tmp_path, spiral)
    assert runner.invoke(app, ["train", str(config), "--threads", "0"]).exit_code == 2


def test_a_validation_split_that_rounds_to_no_sample_is_refused(tmp_path, write_config):
    hello = {"name": "hello", "data": {"dataset": {"type": "hello", "samples": 1}},
             "model": {"layers": [{"type": "embedding", "vocab": 4, "dim": 4},
                                  {"type": "rnn", "hidden": 8},
                                  {"type": "temporal_affine", "units": 4}],
                       "loss": "temporal_softmax_cross_entropy"},
             "train": {"epochs": 2}, "runs_dir": str(tmp_path / "runs")}
    result = runner.invoke(app, ["train", str(write_config(tmp_path, hello)), "-q"])
    assert result.exit_code == 2, result.output
    assert "data.split.val: 0.2 of 1 sample rounds to none, and the run monitors val/acc" in \
        " ".join(result.output.split())


# -- a layer that does not fit its input is named by its config key ---------------------
MISFIT = {"type": "conv2d", "filters": 2, "kernel": 3}  # on the (4,) features of affine 4
MISFITS = [
    ([{"type": "affine", "units": 4}, MISFIT], "model.layers.1"),
    ([{"type": "affine", "units": 4}, {"type": "residual", "layers": ["relu", MISFIT]}],
     "model.layers.1.layers.1"),
    ([{"type": "affine", "units": 4}, {"type": "residual", "layers": [
        "relu", {"type": "concat", "branches": [[], [{"type": "residual", "layers": [MISFIT]}]]}]}],
     "model.layers.1.layers.1.branches.1.0.layers.0"),
]


@pytest.mark.parametrize("layers,key", MISFITS)
def test_build_model_names_a_misfit_layer_by_the_key_validation_uses(tmp_path, layers, key, spiral,
                                                                     write_config):
    path = write_config(tmp_path, {**spiral, "model": {"layers": layers}})
    with pytest.raises(ShapeError) as error:
        build_model(load_config(path), (2,))
    assert str(error.value).startswith(f"{key} (conv2d) with input shape (4): conv2d needs images")
    # a mistake in the options of the same layer is reported under the same key
    with pytest.raises(ConfigError) as invalid:
        load_config(path, [f"{key}.filters=0"])
    assert [e for e in invalid.value.errors if e.startswith(f"{key}.filters: ")]


def test_train_names_a_misfit_layer_in_nested_blocks_by_its_key(tmp_path, spiral, write_config):
    layers, key = MISFITS[-1]
    path = write_config(tmp_path, {**spiral, "model": {"layers": layers}})
    result = runner.invoke(app, ["train", str(path), "-q"])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert f"{key} (conv2d) with input shape (4): conv2d needs images" in " ".join(
        result.output.split())
    assert not (tmp_path / "runs").exists()
