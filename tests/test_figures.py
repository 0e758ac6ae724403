"""What the figures of `dl plot` and `dl report` show: axes that fit the values (symlog,
categories, short labels), variants by colour, error bars and every seed, smoothed noisy
curves, legends beside the data, a note on a curve hidden by another, no absolute path."""

from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.container import ErrorbarContainer  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from typer.testing import CliRunner  # noqa: E402
import yaml  # noqa: E402

from dl_cli.cli.app import app  # noqa: E402
from dl_cli.plot_parts import hidden_by, place_values  # noqa: E402
from dl_cli.plot_trials import plot_metric_vs_params  # noqa: E402
from dl_cli.studies.figures import (by_param_figure, learning_curves, moving_average,  # noqa: E402
                                    noisy)
from dl_cli.studies.study import metric_of  # noqa: E402
from dl_cli.sweep.folder import saved_spec, trial_table  # noqa: E402


runner = CliRunner()


def axis(values, **options):
    ax = Figure().subplots()
    return ax, place_values(ax, values, **options)


def ticks(ax) -> list[str]:
    return [t.get_text() for t in ax.get_xticklabels()]


def test_each_kind_of_value_gets_its_axis():
    ax, xs = axis([0, 1e-5, 1e-4, 0, 1e-5, 1e-4])  # l2: a zero among decades
    assert ax.get_xscale() == "symlog" and xs == [0, 1e-5, 1e-4, 0, 1e-5, 1e-4]
    ax, xs = axis([64, 32, 64])  # batch sizes: categories, in order
    assert ax.get_xscale() == "linear" and ticks(ax) == ["32", "64"] and xs == [1, 0, 1]
    ax, _ = axis([1e-3, 1e-2, 1e-1], log=True)
    assert ax.get_xscale() == "log"
    ax, xs = axis([1.0, 2.0, 3.0, 4.0, 5.0])
    assert ax.get_xscale() == "linear" and xs == [1.0, 2.0, 3.0, 4.0, 5.0]
    ax, xs = axis(["zeros", {"type": "normal", "std": 0.01}])
    assert ticks(ax) == ["normal(std=0.01)", "zeros"] and xs == [1, 0]  # never raw JSON


def legend_beside_data(fig: Figure, ax) -> bool:
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    return ax.get_legend().get_window_extent(renderer).x0 >= ax.get_window_extent(renderer).x1


def test_a_variant_sweep_is_coloured_by_variant_with_short_ticks(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump({
        "seed": 0, "runs_dir": str(tmp_path / "runs"),
        "data": {"dataset": {"type": "spiral", "classes": 3, "samples": 40}},
        "model": {"layers": [{"type": "affine", "units": 8}, "relu", {"type": "affine", "units": 3}]},
        "train": {"epochs": 1, "batch_size": 16}}))
    spec = tmp_path / "sweep.yaml"
    spec.write_text(yaml.safe_dump({
        "base": str(base), "name": "v", "method": "grid",
        "variants": {"relu-net": {"model.layers.1": "relu"}, "tanh-net": {"model.layers.1": "tanh"}},
        "params": {"model.init": {"values": ["he_normal", {"type": "normal", "std": 0.01}]}}}))
    folder = tmp_path / "sweep"
    assert runner.invoke(app, ["sweep", str(spec), "--sweep-dir", str(folder)]).exit_code == 0
    sweep_spec = saved_spec(folder)
    fig = plot_metric_vs_params(sweep_spec, trial_table(folder, sweep_spec), tmp_path / "m.png")
    variant_ax, init_ax = fig.axes
    assert ticks(variant_ax) == ["relu-net", "tanh-net"]
    assert ticks(init_ax) == ["he_normal", "normal(std=0.01)"]
    legend = init_ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["relu-net", "tanh-net"]
    assert legend_beside_data(fig, init_ax)


def test_curves_smooth_noise_and_say_when_one_hides_another():
    assert moving_average([1.0, 3.0, 2.0, 4.0])[0] == [2.0, 2.0, 3.0, 3.0]
    zigzag = [0.5 + 0.1 * (-1) ** i for i in range(12)]
    assert noisy(zigzag) and not noisy([0.1 * i for i in range(12)]) and not noisy(zigzag[:6])
    drawn = {"a": ([1, 2], [0.5, 0.6])}
    assert hidden_by(([1, 2], [0.5, 0.6000001]), drawn) == "a"
    assert hidden_by(([1, 2], [0.5, 0.7]), drawn) is None


@pytest.fixture(scope="module")
def seeded_study(tmp_path_factory, run_study):
    """The clipping study on two learning rates and two seeds, a few epochs."""
    return run_study("clipping", tmp_path_factory.mktemp("clipping"), seeds=[0, 1],
                     params={"optimizer.lr": {"values": [0.1, 0.5]}},
                     overrides=["train.epochs=2"])


def test_several_seeds_give_error_bars_and_every_seed_s_point(seeded_study):
    samples = {g.label: g.values(metric_of) for g in seeded_study.groups}
    fig = by_param_figure(seeded_study, samples, "val/acc", "title")
    ax = fig.axes[0]
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert bars and all(c.has_yerr for c in bars)
    seeds = sum(len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection))
    assert seeds == sum(len(v) for v in samples.values())
    assert "mean ± std" in ax.get_title() and legend_beside_data(fig, ax)


def test_the_learning_curves_have_their_legend_beside_them(seeded_study):
    fig = learning_curves(seeded_study)
    loss_ax, metric_ax = fig.axes[:2]
    assert legend_beside_data(fig, metric_ax)
    assert all(ax.xaxis.get_major_locator()._integer for ax in (loss_ax, metric_ax))


def test_the_report_names_no_absolute_path(seeded_study, tmp_path, monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[1])  # the project, where dl runs
    result = runner.invoke(app, ["report", str(seeded_study.folder), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "report.md").read_text()
    assert str(seeded_study.folder) not in text and "`/" not in text
    assert "base config `experiments/configs/" in text
