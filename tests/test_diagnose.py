"""`diagnose` on hand-made metric records: each rule fires on its symptom, cites its
figures, and stays quiet on a healthy run."""

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dl_cli.cli.app import app
from dl_cli.advice import diagnose, read_run

ROOT = Path(__file__).resolve().parents[1]

runner = CliRunner()


def epochs(n, **series):
    return [{"epoch": i + 1, **{k.replace("_", "/", 1): v[i] for k, v in series.items()}}
            for i in range(n)]


def titles(findings):
    return [f.title for f in findings]


def test_healthy_run_has_no_findings():
    records = epochs(4, train_loss=[1.0, 0.5, 0.3, 0.2], train_objective=[1.1, 0.6, 0.35, 0.25],
                     train_acc=[0.6, 0.8, 0.9, 0.95], val_acc=[0.6, 0.78, 0.88, 0.93])
    assert diagnose(records, {"status": "completed"}) == []


def test_high_variance_cites_both_accuracies():
    records = epochs(3, train_loss=[0.5, 0.1, 0.01], train_acc=[0.8, 0.95, 1.0],
                     val_acc=[0.7, 0.72, 0.71])
    (finding,) = [f for f in diagnose(records, {}) if "variance" in f.title]
    assert "1.000" in finding.evidence and "0.710" in finding.evidence
    assert "dropout" in finding.advice


def test_high_bias_when_both_are_poor_and_close():
    records = epochs(3, train_loss=[1.0, 0.9, 0.85], train_objective=[1.0, 0.8, 0.6],
                     train_acc=[0.5, 0.55, 0.6], val_acc=[0.5, 0.56, 0.58])
    assert "high bias (underfitting)" in titles(diagnose(records, {}))


def test_regression_variance_from_losses():
    records = epochs(3, train_loss=[1.0, 0.1, 0.001], val_loss=[1.0, 0.5, 0.4])
    assert "high variance (overfitting)" in titles(diagnose(records, {}))


def test_vanishing_and_exploding_gradients_across_depth():
    layers = [{"index": 0, "layer": "affine", "grad_norm": 1e-7},
              {"index": 1, "layer": "sigmoid"},
              {"index": 2, "layer": "affine", "grad_norm": 1e-2}]
    records = epochs(3, train_loss=[1.0, 0.9, 0.8])
    records[-1]["layers"] = layers
    (finding,) = [f for f in diagnose(records, {}) if "gradients" in f.title]
    assert finding.title == "vanishing gradients"
    assert "1.00e-07" in finding.evidence and "layer 0" in finding.evidence
    layers[0]["grad_norm"], layers[2]["grad_norm"] = 1e4, 1e-1
    assert "exploding gradients" in titles(diagnose(records, {}))


def test_divergence_points_at_the_learning_rate_and_clipping():
    records = epochs(2, train_loss=[1.0, 2.0]) + [
        {"epoch": 3, "status": "diverged", "error": "loss became nan at epoch 3, iteration 4"}]
    (finding,) = diagnose(records, {"status": "diverged"})
    assert "nan" in finding.evidence and "clipping" in finding.advice


def test_dead_units():
    records = epochs(3, train_loss=[1.0, 0.9, 0.8])
    records[-1]["layers"] = [{"index": 1, "layer": "relu", "dead": 0.75}]
    (finding,) = [f for f in diagnose(records, {}) if "dead" in f.title]
    assert "75%" in finding.evidence


def test_learning_rate_too_high_or_too_low():
    rising = epochs(6, train_objective=[1.0, 1.3, 0.9, 1.4, 1.2, 1.5], train_loss=[1.0] * 6)
    assert "learning rate too high" in titles(diagnose(rising, {}))
    flat = epochs(5, train_objective=[1.0, 0.999, 0.998, 0.997, 0.996], train_loss=[1.0] * 5)
    (finding,) = [f for f in diagnose(flat, {}) if "too low" in f.title]
    assert "0.40%" in finding.evidence


# -- on real runs, through `dl diagnose` ------------------------------------------------
def train_and_diagnose(tmp_path, cfg):
    import yaml

    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump({"name": "diag", "runs_dir": str(tmp_path / "runs"), **cfg}))
    trained = runner.invoke(app, ["train", str(path), "-q"])
    assert trained.exit_code == 0, trained.output
    (run_dir,) = [p for p in (tmp_path / "runs" / "diag").iterdir() if p.name != "latest"]
    result = runner.invoke(app, ["diagnose", str(run_dir)], terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.output


def test_diagnose_names_high_variance_on_a_tiny_training_set(tmp_path):
    output = train_and_diagnose(tmp_path, {
        "data": {"dataset": {"type": "spiral", "classes": 3, "samples": 40, "noise": 0.4},
                 "split": {"val": 0.7, "test": 0.1}},
        "model": {"layers": [{"type": "affine", "units": 256}, "relu",
                             {"type": "affine", "units": 256}, "relu", {"type": "affine", "units": 3}]},
        "optimizer": {"type": "adam", "lr": 0.01},
        "train": {"epochs": 150, "batch_size": 32, "diagnostics": True},
    })
    assert "high variance" in output and "dropout" in output


def test_diagnose_names_vanishing_gradients_in_a_20_layer_sigmoid_network(tmp_path):
    layers = []
    for _ in range(20):
        layers += [{"type": "affine", "units": 16}, "sigmoid"]
    output = train_and_diagnose(tmp_path, {
        "data": {"dataset": {"type": "spiral", "classes": 3, "samples": 30}},
        "model": {"init": "xavier_normal", "layers": layers + [{"type": "affine", "units": 3}]},
        "optimizer": {"type": "sgd", "lr": 0.1},
        "train": {"epochs": 3, "batch_size": 16, "diagnostics": True},
    })
    assert "vanishing gradients" in output and "layer 0 (affine)" in output
    assert "residual" in output


def test_diagnose_names_a_divergence_in_the_first_epoch_and_nothing_else(tmp_path):
    trained = runner.invoke(app, ["train", "configs/quickstart.yaml", "-q", "optimizer.type=sgd",
                                  "optimizer.lr=1e6", "--run-dir", str(tmp_path / "run")])
    assert trained.exit_code == 3 and "there is no best checkpoint" in trained.output
    result = runner.invoke(app, ["diagnose", str(tmp_path / "run")], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "divergence" in result.output
    assert "high bias" not in result.output and "nothing stands out" not in result.output


def test_diagnose_reads_a_run_whose_last_metrics_line_was_cut_short(tmp_path):
    run_dir = tmp_path / "run"
    assert runner.invoke(app, ["train", "configs/quickstart.yaml", "-q", "train.epochs=3",
                               "--run-dir", str(run_dir)]).exit_code == 0
    with open(run_dir / "metrics.jsonl", "a") as metrics:
        metrics.write('{"epoch": 4, "train/lo')  # a writer killed mid-line
    result = runner.invoke(app, ["diagnose", str(run_dir)], terminal_width=200)
    assert result.exit_code == 0 and result.exception is None, result.output


@pytest.mark.parametrize("line, message", [
    ("not json", "line 4 is not JSON"),
    ("[1, 2]", "line 4 is a JSON list, not a record (an object)"),
])
def test_diagnose_names_a_metrics_line_that_is_not_a_record(tmp_path, line, message):
    run_dir = tmp_path / "run"
    assert runner.invoke(app, ["train", "configs/quickstart.yaml", "-q", "train.epochs=3",
                               "--run-dir", str(run_dir)]).exit_code == 0
    with open(run_dir / "metrics.jsonl", "a") as metrics:
        metrics.write(line + "\n")
    result = runner.invoke(app, ["diagnose", str(run_dir)], terminal_width=300)
    assert result.exit_code == 2, result.output
    assert f"{run_dir / 'metrics.jsonl'}: {message}" in result.output


def test_diagnose_says_when_there_is_nothing_to_judge(tmp_path):
    run_dir = tmp_path / "run"
    assert runner.invoke(app, ["train", "configs/quickstart.yaml", "-q", "train.epochs=2",
                               "train.eval_train_samples=0", "--run-dir", str(run_dir)]).exit_code == 0
    result = runner.invoke(app, ["diagnose", str(run_dir)], terminal_width=300)
    assert result.exit_code == 2, result.output
    assert "nothing to diagnose: metrics.jsonl has no epoch with training figures" in result.output
    (run_dir / "metrics.jsonl").write_text("")
    assert runner.invoke(app, ["diagnose", str(run_dir)]).exit_code == 2


def test_a_blown_up_loss_is_a_learning_rate_too_high_not_underfitting():
    records = epochs(3, train_loss=[8e8, 5e6, 7.2e3], train_acc=[0.76, 0.30, 0.125],
                     val_loss=[9e8, 6e6, 8e3], val_acc=[0.75, 0.32, 0.125])
    findings = diagnose(records, {"status": "completed", "data": {"num_classes": 10}})
    assert [f.title for f in findings] == ["learning rate too high"]
    assert ("reached 8e+08 at epoch 1, 347,435,586× the 2.3 of guessing uniformly among 10 "
            "classes") in findings[0].evidence


def test_a_loss_that_blew_up_midway_counts_though_the_last_epoch_looks_tame():
    records = epochs(3, train_loss=[2.0, 5e3, 1.9], train_acc=[0.3, 0.2, 0.31],
                     val_acc=[0.3, 0.2, 0.3])
    findings = diagnose(records, {"status": "completed", "data": {"num_classes": 10}})
    assert [f.title for f in findings] == ["learning rate too high"]
    assert "reached 5000 at epoch 2" in findings[0].evidence


def test_a_loss_that_wobbles_by_less_than_noise_is_not_a_rate_too_high():
    wobbling = epochs(5, train_objective=[3.368, 3.303, 3.339, 3.312, 3.356],
                      train_loss=[2.67, 2.86, 2.90, 2.89, 2.87], train_acc=[0.04] * 5,
                      val_acc=[0.05] * 5)  # digits with lr 1e-5: dropout's noise, no learning
    assert titles(diagnose(wobbling, {})) == ["learning rate too low"]


# -- the verdicts on real short runs --------------------------------------------------
SPIRAL = {"dataset": {"type": "spiral", "classes": 3, "samples": 100, "noise": 0.2},
          "preprocess": ["standardize"]}


def mlp(units: int, activation: str = "relu", depth: int = 1) -> list:
    return [layer for _ in range(depth) for layer in ({"type": "affine", "units": units},
                                                      activation)] + [{"type": "affine", "units": 3}]


def spiral_run(layers, optimizer, epochs, data=SPIRAL, diagnostics=False, init="he_normal",
               batch_size=32) -> dict:
    return {"data": data, "model": {"layers": layers, "init": init}, "optimizer": optimizer,
            "train": {"epochs": epochs, "batch_size": batch_size, "diagnostics": diagnostics}}


def digits_run(lr: float) -> list[str]:
    return [str(ROOT / "configs" / "digits_mlp.yaml"), f"optimizer.lr={lr}", "train.epochs=5"]


RUNS = {
    "too low": (spiral_run(mlp(32), {"type": "sgd", "lr": 1e-5}, 5), ["learning rate too low"]),
    "too high": (spiral_run(mlp(32), {"type": "adam", "lr": 50}, 5), ["learning rate too high"]),
    "overfitting": (spiral_run(mlp(128, depth=2), {"type": "adam", "lr": 0.01}, 60, batch_size=16,
                               data={**SPIRAL, "dataset": {**SPIRAL["dataset"], "samples": 40,
                                                           "noise": 0.5},
                                     "split": {"val": 0.4, "test": 0.1}}),
                    ["high variance (overfitting)"]),
    "underfitting": (spiral_run([{"type": "affine", "units": 3}], {"type": "adam", "lr": 0.05}, 10),
                     ["high bias (underfitting)"]),
    "dead ReLUs": (spiral_run(mlp(32), {"type": "adam", "lr": 0.01}, 3, diagnostics=True,
                              data={**SPIRAL, "preprocess": ["minmax"]},  # inputs ≥ 0, weights < 0
                              init={"type": "constant", "value": -1.0}),
                   ["dead ReLU units"]),
    "sigmoid stack": (spiral_run(mlp(32, "sigmoid", depth=8), {"type": "sgd", "lr": 0.1}, 3,
                                 diagnostics=True, init="xavier_normal"),
                      ["vanishing gradients"]),
    "healthy": ({"data": {"dataset": {"type": "blobs", "classes": 3, "samples": 150},
                          "preprocess": ["standardize"]},
                 "model": {"layers": mlp(16)}, "optimizer": {"type": "adam", "lr": 0.01},
                 "train": {"epochs": 8, "batch_size": 32}}, []),
}


@pytest.mark.parametrize("case", RUNS)
def test_each_verdict_on_a_real_short_run(tmp_path, case):
    cfg, expected = RUNS[case]
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"name": "case", "seed": 0, **cfg,
                                      "runs_dir": str(tmp_path / "runs")}))
    assert runner.invoke(app, ["train", str(config), "-q"]).exit_code == 0
    (run_dir,) = [p for p in (tmp_path / "runs" / "case").iterdir() if p.name != "latest"]
    assert titles(diagnose(*read_run(run_dir))) == expected


@pytest.mark.slow
@pytest.mark.parametrize("lr, verdict", [(1e-5, "learning rate too low"),
                                         (50, "learning rate too high")])
def test_the_digits_mlp_with_a_rate_far_off_is_told_which_way(tmp_path, lr, verdict):
    args = [*digits_run(lr), f"runs_dir={tmp_path}", "-q"]
    assert runner.invoke(app, ["train", *args]).exit_code == 0
    (run_dir,) = [p for p in (tmp_path / "digits-mlp").iterdir() if p.name != "latest"]
    result = runner.invoke(app, ["diagnose", str(run_dir)])
    assert result.exit_code == 0, result.output
    said = [line.split(":")[0] for line in result.output.splitlines() if not line.startswith(("(", " "))]
    assert said == [verdict]
