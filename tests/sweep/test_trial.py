"""A trial: one run, or k folds scored by their mean, trained to a rung or to the end."""

import numpy as np
import pytest
import yaml

from dl_cli.config import config_to_dict, load_config


def test_kfold_scores_the_mean_over_folds(tmp_path, write_sweep, sweep, metric_lines, events):
    spec = write_sweep(tmp_path, {"method": "grid", "validation": {"kfold": 3},
                                  "params": {"model.layers.0.units": {"values": [8]}}})
    folder = tmp_path / "sweep"
    assert sweep(spec, folder).exit_code == 0
    trial = folder / "trial-0000"
    best = [max(r["val/acc"] for r in metric_lines(trial / f"fold-{i}")) for i in range(3)]
    (result,) = events(folder, "result")
    assert result["fold_metrics"] == pytest.approx(best)
    assert result["metric"] == pytest.approx(np.mean(best))


def test_a_kfold_sweep_needs_no_validation_split_and_its_best_config_trains(tmp_path, write_sweep,
                                                                            tiny_config, sweep,
                                                                            rows):
    base = tiny_config()
    no_val = {**base, "data": {**base["data"], "split": {"val": 0.0, "test": 0.25}}}
    spec = write_sweep(tmp_path, {"method": "grid", "validation": {"kfold": 2},
                                  "params": {"model.layers.0.units": {"values": [8]}}}, base=no_val)
    folder = tmp_path / "sweep"
    result = sweep(spec, folder)
    assert result.exit_code == 0, result.output
    assert [r["status"] for r in rows(folder)] == ["completed"]
    best = load_config(folder / "best.yaml")  # scored by k-fold, and trains the same way
    assert best.validation.kfold == 2 and best.data.split.val == 0
    assert "2-fold cross-validation" in (folder / "best.yaml").read_text().splitlines()[3]


def test_kfold_of_the_base_config_applies_to_the_sweep(tmp_path, tiny_config, write_sweep, sweep,
                                                       events):
    spec = write_sweep(tmp_path, {"method": "grid", "params": {"model.layers.0.units": {"values": [8]}}},
                       base=tiny_config(validation={"kfold": 2}))
    folder = tmp_path / "sweep"
    assert sweep(spec, folder).exit_code == 0
    assert sorted(p.name for p in (folder / "trial-0000").glob("fold-*")) == ["fold-0", "fold-1"]
    (result,) = events(folder, "result")
    assert len(result["fold_metrics"]) == 2


def test_a_rung_is_scored_at_its_epoch_even_from_a_later_checkpoint(tmp_path, tiny_config,
                                                                    metric_lines):
    from dl_cli.sweep.trial import run_trial

    four_epochs = tiny_config(schedule={"type": "cosine"}, train={"epochs": 4, "batch_size": 16},
                              runs_dir=str(tmp_path))
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(four_epochs))
    config = config_to_dict(load_config(tmp_path / "c.yaml"))
    trial = tmp_path / "trial"
    ahead = run_trial(config, str(trial), until=3, metric="val/loss", goal="min")
    assert ahead["status"] == "paused" and ahead["epochs"] == 3
    again = run_trial(config, str(trial), until=1, metric="val/loss", goal="min")
    assert again["metric"] == metric_lines(trial)[0]["val/loss"]  # epoch 1's, not a later one
    assert ahead["metric"] == min(r["val/loss"] for r in metric_lines(trial))
