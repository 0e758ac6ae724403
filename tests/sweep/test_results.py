"""What a finished sweep shows: configurations ranked by their mean over seeds, the
best one's config, and `dl plot` of a sweep and of a run."""

import numpy as np
import pytest
from typer.testing import CliRunner

from dl_cli.cli.app import app
from dl_cli.config import load_config
from dl_cli.layout import find_runs

runner = CliRunner()


def test_seeds_rank_by_the_mean_and_only_the_best_keeps_checkpoints(tmp_path, write_sweep, sweep,
                                                                    rows):
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
