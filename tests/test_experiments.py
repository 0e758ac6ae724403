"""The studies of experiments/: each claim checked on a small budget, and `dl report`.

Every test runs its study's own spec in process through the sweep API, with a few
changes that keep it to seconds: fewer variants, parameter values and seeds, fewer
epochs. The numbers it checks are the ones ``dl report`` prints (dl_cli/studies/).
"""

import json
import statistics
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from dl_cli.cli.app import app
from dl_cli.sweep.base_config import prepare

pytest.importorskip("matplotlib")
from dl_cli.studies.measures import (activation_std_at_init, epochs_to_target,  # noqa: E402
                                     first_weight, gradient_norms, learned_weights, model_costs,
                                     near_zero_fraction, spread_across, weight_norms)

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
runner = CliRunner()


def metric_lines(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def by_label(study) -> dict:
    return {g.label: g for g in study.groups}


def mean_metric(group) -> float:
    return statistics.fmean(t.state.metric for t in group.trials)


def test_every_study_has_a_claim_a_report_section_and_a_valid_plan():
    from dl_cli.studies.report import SECTIONS

    names = sorted(p.stem for p in EXPERIMENTS.glob("*.yaml"))
    assert names == sorted(SECTIONS)
    for name in names:
        spec, _ = prepare(EXPERIMENTS / f"{name}.yaml")  # checks every variant and value
        assert spec.claim and spec.report["study"] == name
        assert len(spec.repeats) >= 3, f"{name}: several seeds"
        assert f"dl sweep experiments/{name}.yaml" in (EXPERIMENTS / f"{name}.yaml").read_text()
    readme = (EXPERIMENTS / "README.md").read_text()
    assert all(f"dl sweep experiments/{name}.yaml" in readme for name in names)


def test_init_zeros_stay_at_chance_while_he_learns(tmp_path, run_study):
    study = run_study("init", tmp_path, variants=["relu-10"], overrides=["train.epochs=5"],
                      params={"model.init": {"values": ["zeros", {"type": "normal", "std": 0.01},
                                                        "he_normal"]}})
    groups = by_label(study)
    zeros, small, he = (groups[f"relu-10, init={x}"] for x in ("zeros", "normal(std=0.01)", "he_normal"))
    assert mean_metric(zeros) <= 0.12  # ten balanced classes: chance is 0.1
    assert mean_metric(he) >= 0.6
    stds = activation_std_at_init(study)
    assert all(s == 0 for _, s in stds[zeros.label])
    assert stds[small.label][-1][1] < 1e-6 * stds[small.label][0][1]  # the signal vanishes
    assert 0.2 < stds[he.label][-1][1] / stds[he.label][0][1] < 5     # it keeps its scale


def test_sigmoid_first_layer_gradient_is_far_below_relus(tmp_path, run_study):
    study = run_study("activations", tmp_path, variants=["sigmoid", "relu"],
                      overrides=["train.epochs=1"])
    norms, source = gradient_norms(study, "first")
    assert source.startswith("first epoch (train.diagnostics)")
    sigmoid, relu = norms["sigmoid"], norms["relu"]
    assert len(sigmoid) == len(relu) == 11
    assert sigmoid[0] < 1e-3 * relu[0]
    assert sigmoid[0] < 1e-3 * sigmoid[-1]  # it vanishes across the depth
    assert 0.1 < relu[0] / relu[-1] < 10


def test_l1_leaves_far_more_near_zero_weights_than_l2(tmp_path, run_study):
    study = run_study("regularization", tmp_path, variants=["l2", "l1"],
                      overrides=["train.epochs=150"])
    zeros = near_zero_fraction(study, study.spec.report["near_zero"])
    assert zeros["l1"][0] > 0.3
    assert zeros["l1"][0] > 5 * zeros["l2"][0]


def test_the_degree_19_fit_ends_with_a_higher_test_loss_than_the_cubic(tmp_path, run_study):
    # 20 training points instead of 100 make the overfitting quick and clear
    study = run_study("polynomial", tmp_path, variants=["degree-3", "degree-19"], seeds=[1, 4],
                      overrides=["data.dataset.train_samples=40", "train.epochs=700"])
    groups = by_label(study)

    def mean_test_loss(label):
        return statistics.fmean(groups[label].values(lambda t: t.test("test/loss")))

    assert mean_test_loss("degree-19") > 2 * mean_test_loss("degree-3")
    weights = learned_weights(study)
    assert weights["degree-19"].shape == (20,)
    np.testing.assert_allclose(weights["degree-3"], [5.0, 1.2, -3.4, 5.6], atol=0.3)


def test_weight_decay_shrinks_the_weights_and_the_test_loss(tmp_path, run_study):
    study = run_study("weight_decay", tmp_path)
    groups, norms = by_label(study), weight_norms(study)
    free, decayed = groups["l2=0"], groups["l2=3"]
    assert norms["l2=3"][0] < 0.1 * norms["l2=0"][0]
    assert decayed.trials[0].test("test/loss") < 0.01 * free.trials[0].test("test/loss")
    assert free.trials[0].final("train/loss") < 1e-3  # λ = 0 fits the 20 samples exactly


def test_batchnorm_reaches_the_target_where_the_plain_network_diverges(tmp_path, run_study):
    study = run_study("batchnorm", tmp_path, params={"optimizer.lr": {"values": [3.0]}},
                      overrides=["train.epochs=4"])
    reached = epochs_to_target(study, 0.9)
    plain, normalized = by_label(study)["plain, lr=3"], by_label(study)["batchnorm, lr=3"]
    assert plain.diverged == 1 and reached[plain.label] == [None]
    assert normalized.diverged == 0 and reached[normalized.label][0] is not None


def test_deep_residual_networks_train_where_plain_ones_do_not(tmp_path, run_study):
    study = run_study("depth_residual", tmp_path, variants=["plain-22", "residual-22"],
                      overrides=["train.epochs=4"])
    groups = by_label(study)
    assert mean_metric(groups["residual-22"]) > 0.8
    assert mean_metric(groups["plain-22"]) < 0.5


def test_adam_is_less_sensitive_to_the_learning_rate_than_sgd(tmp_path, run_study):
    study = run_study("optimizers", tmp_path, variants=["sgd", "adam"],
                      params={"optimizer.lr": {"values": [1.0e-4, 1.0e-2, 1.0e-1]}})
    spread = spread_across(study)  # ten epochs at each rate, as in the study
    assert spread["adam"] < 0.6 * spread["sgd"]


def test_decaying_the_rate_ends_with_a_lower_training_loss(tmp_path, run_study):
    study = run_study("schedules", tmp_path, variants=["constant", "cosine"],
                      overrides=["train.epochs=20"])
    groups = by_label(study)
    constant, cosine = (groups[v].trials[0].final("train/loss") for v in ("constant", "cosine"))
    assert cosine < 0.6 * constant


def test_clipping_keeps_the_rnn_from_diverging(tmp_path, run_study):
    study = run_study("clipping", tmp_path, params={"optimizer.lr": {"values": [0.5]}},
                      overrides=["train.epochs=3"])
    unclipped, clipped = by_label(study)["unclipped, lr=0.5"], by_label(study)["clipped, lr=0.5"]
    assert unclipped.diverged == 1
    assert clipped.diverged == 0 and clipped.trials[0].state.metric < 0.05


def test_the_cnn_shares_weights_fewer_parameters_more_multiply_adds(tmp_path, run_study):
    study = run_study("cnn_vs_mlp", tmp_path, overrides=["train.epochs=2"])
    costs = model_costs(study)
    assert costs["cnn"][0] < costs["mlp"][0] / 3 and costs["cnn"][1] > 4 * costs["mlp"][1]
    assert min(mean_metric(g) for g in study.groups) > 0.8


# -- dl report --------------------------------------------------------------------------
def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.mark.slow  # each trial starts a LocalCluster of its own
def test_distributed_sync_is_one_curve_whatever_k_and_async_records_its_staleness(
        tmp_path, run_study):
    pytest.importorskip("distributed")
    from dl_cli import training
    from dl_cli.config import load_config
    from dl_cli.studies.distributed import staleness, step_losses

    study = run_study("distributed", tmp_path, variants=["sync-2", "async-2"],
                      overrides=["train.epochs=1"])
    groups = by_label(study)
    cfg = load_config(EXPERIMENTS / "configs" / "digits_distributed.yaml",
                      ["parallel=null", "train.epochs=1"])  # the same in this process
    training.train(cfg, training.start(cfg, tmp_path / "local"), progress=False)
    local = [line["train/batch_loss"] for line in metric_lines(tmp_path / "local")
             if "train/batch_loss" in line]
    assert len(local) == 34  # 1079 samples in batches of 32
    np.testing.assert_allclose(step_losses(groups["sync-2"]), local, rtol=1e-10, atol=0)
    assert staleness(groups["sync-2"]) == [] and len(staleness(groups["async-2"])) == 34
    assert min(staleness(groups["async-2"])) >= 0
    result = runner.invoke(app, ["report", str(study.folder)])
    assert result.exit_code == 0, result.output
    text = (study.folder / "report" / "report.md").read_text()
    assert "| async-2 | async | 2 |" in text and "largest relative gap to sync-2" in text
    assert "](distributed.png)" in text and (study.folder / "report" / "distributed.png").exists()


def test_dl_report_writes_the_claim_a_table_and_legible_figures(tmp_path, run_study):
    study = run_study("clipping", tmp_path, params={"optimizer.lr": {"values": [0.1, 0.5]}},
                      overrides=["train.epochs=2"])
    result = runner.invoke(app, ["report", str(study.folder)])
    assert result.exit_code == 0, result.output
    report = study.folder / "report" / "report.md"
    text = report.read_text()
    assert text.startswith("# clipping\n") and study.spec.claim in text
    for label in ("unclipped, lr=0.1", "unclipped, lr=0.5", "clipped, lr=0.1", "clipped, lr=0.5"):
        assert f"| {label} |" in text
    assert "1 diverged" in text and "(1/1 diverged)" in text
    metric = study.spec.metric.split("/")[1]  # every split shown by the measure it ranks by
    assert f"| {study.spec.metric} (best epoch) | train/{metric} (last epoch) |" in text
    pngs = sorted(p.name for p in report.parent.glob("*.png"))
    assert pngs == ["by_learning_rate.png", "curves.png"]
    assert all(f"]({name})" in text for name in pngs)
    for name in pngs:
        width, height = png_size(report.parent / name)
        assert width >= 600 and height >= 400
        assert (report.parent / name).stat().st_size > 20_000  # drawn, not blank
    assert str(report) in result.output


def test_dl_report_refuses_what_is_not_a_study(tmp_path, run_study):
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "is not a sweep folder" in result.output
    study = run_study("weight_decay", tmp_path)
    spec = yaml.safe_load((study.folder / "spec.yaml").read_text())
    (study.folder / "spec.yaml").write_text(yaml.safe_dump({**spec, "report": {"study": "inits"}}))
    result = runner.invoke(app, ["report", str(study.folder), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "unknown study 'inits'" in result.output and "init" in result.output


def test_first_weight_is_in_layer_order_not_string_order():
    params = {name: np.zeros(1) for name in ("10.W", "10.b", "2.W", "2.b", "11.0.W")}
    assert first_weight(params) == "2.W"
