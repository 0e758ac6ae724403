"""The inspection commands: summary, gradcheck, layers, runs, compare, eval."""

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dl_cli import training
from dl_cli.cli import app
from dl_cli.config import load_config
from dl_cli.registry import LAYERS

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def write(tmp_path, layers, name="model.yaml", **extra):
    cfg = {"name": "cli-test", "runs_dir": str(tmp_path / "runs"),
           "data": {"dataset": {"type": "spiral", "classes": 3, "samples": 30}},
           "model": {"layers": layers}, "train": {"epochs": 2, "batch_size": 16}, **extra}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_summary_of_vgg16_first_conv(tmp_path):
    path = write(tmp_path, [{"type": "conv2d", "filters": 64, "kernel": 3, "pad": 1}])
    result = runner.invoke(app, ["summary", str(path), "--input-shape", "3,224,224"])
    assert result.exit_code == 0, result.output
    assert "1,792" in result.output
    assert "86,704,128" in result.output and "86.7 M" in result.output
    assert "(64, 224, 224)" in result.output


def test_summary_of_a_4096_to_1000_affine(tmp_path):
    path = write(tmp_path, [{"type": "affine", "units": 1000}])
    result = runner.invoke(app, ["summary", str(path), "--input-shape", "4096"])
    assert result.exit_code == 0, result.output
    assert "4,097,000" in result.output


def test_summary_infers_the_input_shape_from_the_data(tmp_path):
    path = write(tmp_path, [{"type": "affine", "units": 5}, "relu", {"type": "affine", "units": 3}])
    result = runner.invoke(app, ["summary", str(path)])
    assert result.exit_code == 0, result.output
    assert "input (2,)" in result.output and "33" in result.output  # (2+1)·5 + (5+1)·3


def test_summary_names_the_layer_that_cannot_take_its_input(tmp_path):
    path = write(tmp_path, [{"type": "conv2d", "filters": 4, "kernel": 5}])
    result = runner.invoke(app, ["summary", str(path), "--input-shape", "1,3,3"])
    assert result.exit_code == 2
    assert "layer 0 (conv2d)" in result.output and "(1, 3, 3)" in result.output


def test_gradcheck_a_config_passes_and_prints_the_table(tmp_path):
    path = write(tmp_path, [{"type": "affine", "units": 6}, {"type": "batchnorm"}, "tanh",
                            {"type": "dropout", "drop_rate": 0.3}, {"type": "affine", "units": 3}],
                 regularization={"l1": 1e-3, "l2": 1e-2})
    result = runner.invoke(app, ["gradcheck", str(path)])
    assert result.exit_code == 0, result.output
    assert "pass" in result.output and "FAIL" not in result.output
    assert "0 affine" in result.output and "gamma" in result.output


@pytest.mark.parametrize("name", ["conv2d", "lstm", "residual"])
def test_gradcheck_one_layer(name):
    result = runner.invoke(app, ["gradcheck", "--layer", name])
    assert result.exit_code == 0, result.output
    assert name in result.output and "all" in result.output


def test_gradcheck_exits_1_when_a_backward_pass_is_wrong(monkeypatch):
    relu = LAYERS.get("relu")
    monkeypatch.setattr(relu, "backward", lambda self, dout: 2 * dout * self.cache)
    result = runner.invoke(app, ["gradcheck", "--layer", "relu"])
    assert result.exit_code == 1
    assert "FAIL relu" in result.output


def test_gradcheck_bad_input_exits_2(tmp_path):
    assert runner.invoke(app, ["gradcheck", "--layer", "rellu"]).exit_code == 2
    assert "did you mean 'relu'" in runner.invoke(app, ["gradcheck", "--layer", "rellu"]).output
    assert runner.invoke(app, ["gradcheck"]).exit_code == 2


def test_layers_lists_every_registry():
    result = runner.invoke(app, ["layers"], terminal_width=200)
    assert result.exit_code == 0
    for word in ("conv2d", "drop_rate", "softmax_cross_entropy", "he_normal", "adamw",
                 "cosine", "spiral", "standardize", "flip"):
        assert word in result.output


def test_layers_shows_index_brackets_in_formulas():
    result = runner.invoke(app, ["layers"], terminal_width=400)
    assert "W[x[n, t]]" in result.output  # embedding; Rich markup would eat "[x[n, t]"


def test_report_errors_are_printed_as_given(tmp_path):
    folder = tmp_path / "x[red]"
    folder.mkdir()
    result = runner.invoke(app, ["report", str(folder)], terminal_width=400)
    assert result.exit_code == 2
    assert "x[red]" in result.output and "x\\[red]" not in result.output


def test_runs_compare_and_eval(tmp_path):
    base = write(tmp_path, [{"type": "affine", "units": 8}, "relu", {"type": "affine", "units": 3}])
    dirs = []
    for lr in ("0.1", "0.01"):
        cfg = load_config(base, [f"optimizer.lr={lr}"])
        run = training.start(cfg)
        training.train(cfg, run, progress=False)
        dirs.append(run.path)
    listing = runner.invoke(app, ["runs", str(tmp_path / "runs")], terminal_width=200)
    assert listing.exit_code == 0 and listing.output.count("completed") == 2
    compared = runner.invoke(app, ["compare", *map(str, dirs)], terminal_width=200)
    assert compared.exit_code == 0
    assert "optimizer.lr" in compared.output and "0.01" in compared.output
    assert "seed" not in compared.output  # only keys that differ
    evaluated = runner.invoke(app, ["eval", str(dirs[0]), "--split", "val", "--checkpoint", "last"])
    assert evaluated.exit_code == 0, evaluated.output
    assert "val/acc" in evaluated.output
    assert runner.invoke(app, ["eval", str(tmp_path)]).exit_code == 2
    assert runner.invoke(app, ["eval", str(dirs[0]), "--split", "dev"]).exit_code == 2


def test_help_teaches_the_commands():
    result = runner.invoke(app, ["--help"])
    for command in ("train", "gradcheck", "summary", "layers", "eval", "runs", "compare"):
        assert command in result.output
    assert "key=value" in runner.invoke(app, ["train", "--help"]).output


def test_a_gradient_that_is_zero_on_both_sides_passes_but_a_wrong_one_does_not():
    from dl_cli.gradcheck import check

    assert check("affine", "b", (3,), [0.0, 0.0, 0.0], [1e-10, -2e-10, 0.0], 1e-6).passed
    assert not check("affine", "b", (3,), [0.0, 0.0, 0.0], [1e-3, 0.0, 0.0], 1e-6).passed
    assert not check("affine", "b", (3,), [1.0, 2.0, 3.0], [1.0, 2.0, 3.1], 1e-6).passed
