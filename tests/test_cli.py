"""The inspection commands: summary, gradcheck, layers, runs, compare, eval."""

import json
import os
import re
import shutil
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
from dl_cli.cli.app import app
from dl_cli.config import dump_config, load_config
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


def test_an_empty_input_shape_is_refused_not_taken_as_the_default(tmp_path):
    path = write(tmp_path, [{"type": "affine", "units": 3}])
    result = runner.invoke(app, ["summary", str(path), "--input-shape", ""])
    assert result.exit_code == 2 and "--input-shape: expected positive integers" in result.output


def test_a_run_is_refused_in_a_sweep_folder(tmp_path):
    sweep_folder = tmp_path / "sweep"
    sweep_folder.mkdir()
    (sweep_folder / "ledger.jsonl").write_text("")
    path = write(tmp_path, [{"type": "affine", "units": 3}])
    result = runner.invoke(app, ["train", str(path), "-q", "--run-dir", str(sweep_folder)],
                           terminal_width=300)
    assert result.exit_code == 2 and "is a sweep folder" in result.output
    assert sorted(p.name for p in sweep_folder.iterdir()) == ["ledger.jsonl"]


def test_summary_names_the_layer_that_cannot_take_its_input(tmp_path):
    path = write(tmp_path, [{"type": "conv2d", "filters": 4, "kernel": 5}])
    result = runner.invoke(app, ["summary", str(path), "--input-shape", "1,3,3"])
    assert result.exit_code == 2
    assert "model.layers.0 (conv2d) with input shape (1, 3, 3)" in result.output


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
    result = runner.invoke(app, ["layers", "embedding"], terminal_width=400)
    assert "W[x[n, t]]" in result.output  # Rich markup would eat "[x[n, t]"


def test_layers_name_shows_one_entry_and_a_pipe_reads_at_100_columns():
    from rich.cells import cell_len

    every = runner.invoke(app, ["layers"])  # stdout is not a terminal here
    assert every.exit_code == 0 and max(map(cell_len, every.output.splitlines())) <= 100
    one = runner.invoke(app, ["layers", "adam"])
    assert one.exit_code == 0, one.output
    assert "beta2=0.999" in one.output and "adamw" not in one.output and "conv2d" not in one.output
    assert "The corrections undo the pull towards the zero initial moments" in one.output
    both = runner.invoke(app, ["layers", "constant"])  # an initializer and a schedule
    assert "initializer" in both.output and "schedule" in both.output
    unknown = runner.invoke(app, ["layers", "lstn"])
    assert unknown.exit_code == 2 and "did you mean 'lstm'?" in unknown.output


def test_report_errors_are_printed_as_given(tmp_path):
    pytest.importorskip("matplotlib")  # dl report checks for it first
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


def test_help_paragraphs_are_wrapped_by_the_terminal_not_the_source():
    wide = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"}).output
    assert "summary.json, train.log and checkpoints/{best,last}.npz. Ctrl-C saves" in wide
    listing = runner.invoke(app, ["--help"], env={"COLUMNS": "200"}).output
    assert "Everything a config can name, with its options and a line of doc." in listing


def test_a_gradient_that_is_zero_on_both_sides_passes_but_a_wrong_one_does_not():
    from dl_cli.gradcheck import check

    assert check("affine", "b", (3,), [0.0, 0.0, 0.0], [1e-10, -2e-10, 0.0], 1e-6).passed
    assert not check("affine", "b", (3,), [0.0, 0.0, 0.0], [1e-3, 0.0, 0.0], 1e-6).passed
    assert not check("affine", "b", (3,), [1.0, 2.0, 3.0], [1.0, 2.0, 3.1], 1e-6).passed


def flat(text: str) -> str:
    """Help text without Rich's panel borders and line breaks."""
    return re.sub(r"[\s│╭╮╰╯─]+", " ", text)


def train_run(tmp_path, *overrides: str) -> Path:
    base = write(tmp_path, [{"type": "affine", "units": 8}, "relu", {"type": "affine", "units": 3}])
    cfg = load_config(base, list(overrides))
    run = training.start(cfg)
    training.train(cfg, run, progress=False)
    return run.path


def test_print_config_output_loads_back_as_the_same_config(tmp_path):
    source = ROOT / "configs" / "digits_mlp.yaml"
    long_name = "digits-" + "x" * 120  # wider than the terminal: must not be wrapped
    first = runner.invoke(app, ["train", str(source), f"name={long_name}", "--print-config"])
    assert first.exit_code == 0, first.output
    assert "preprocess: [minmax]" in first.output  # Rich markup would eat "[minmax]"
    saved = tmp_path / "saved.yaml"
    saved.write_text(first.output)
    second = runner.invoke(app, ["train", str(saved), "--print-config"])
    assert second.exit_code == 0, second.output
    assert second.output == first.output
    printed, given = yaml.safe_load(first.output), yaml.safe_load(
        dump_config(load_config(source, [f"name={long_name}"])))
    for key in ("name", "seed", "regularization", "validation", "runs_dir"):
        assert printed[key] == given[key], key
    # as training uses it: each component's options at their defaults, auto monitors resolved
    assert printed["optimizer"] == {"type": "adam", "lr": 0.01, "beta1": 0.9, "beta2": 0.999,
                                    "eps": 1e-8}
    assert printed["schedule"] == {"type": "step", "every": 8, "gamma": 0.5}
    assert printed["model"]["layers"][2] == "relu"
    assert printed["checkpoint"] == {**given["checkpoint"], "monitor": "val/acc", "mode": "max"}
    assert printed["train"]["early_stopping"]["mode"] == "max"


def test_names_and_paths_with_brackets_and_colons_print_as_given(tmp_path):
    path = write(tmp_path, [{"type": "affine", "units": 3}], name="x.yaml")
    run_dir = tmp_path / "run[bold]:x:"
    result = runner.invoke(app, ["train", str(path), "name=n[red]x", "--run-dir", str(run_dir),
                                 "-q"], terminal_width=400)
    assert result.exit_code == 0, result.output
    assert "n[red]x:" in result.output
    assert f"run folder: {run_dir}" in result.output


@pytest.mark.parametrize("args, message", [
    (["--max-coords", "0"], "--max-coords: expected an integer >= 1, got 0"),
    (["--samples", "-3"], "--samples: expected an integer >= 1, got -3"),
    (["--samples", "0"], "--samples: expected an integer >= 1, got 0"),
    (["--seed", "-1"], "--seed: expected an integer >= 0, got -1"),
])
def test_gradcheck_refuses_options_that_check_nothing(tmp_path, args, message):
    path = write(tmp_path, [{"type": "affine", "units": 3}])
    for target in ([str(path)], ["--layer", "affine"]):
        result = runner.invoke(app, ["gradcheck", *target, *args], terminal_width=200)
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output
    from dl_cli.gradcheck import sample_coords

    with pytest.raises(ValueError, match="max_coords"):
        sample_coords((3, 4), 0, np.random.default_rng(0))


def test_gradcheck_on_a_batch_a_layer_refuses_exits_2_not_as_a_failed_check(tmp_path):
    path = write(tmp_path, [{"type": "affine", "units": 8}, {"type": "batchnorm"},
                            {"type": "affine", "units": 3}])
    result = runner.invoke(app, ["gradcheck", str(path), "--samples", "1"], terminal_width=300)
    assert result.exit_code == 2, result.output  # exit 1 means a gradient is wrong
    assert ("--samples 1: the model cannot run on a batch of shape (1, 2): batchnorm needs at "
            "least 2 values per feature") in result.output
    assert runner.invoke(app, ["gradcheck", str(path), "--samples", "2"]).exit_code == 0


def test_a_model_too_large_for_memory_exits_2_with_advice(tmp_path, monkeypatch):
    from dl_cli.nn.model import Model

    def make_model(*args, **kwargs):
        raise MemoryError("Unable to allocate 23.8 GiB for an array with shape (64, 100000000)")

    monkeypatch.setattr(Model, "__init__", make_model)
    path = write(tmp_path, [{"type": "affine", "units": 3}])
    for command in (["summary", str(path)], ["train", str(path), "-q"]):
        result = runner.invoke(app, command, terminal_width=300)
        assert result.exit_code == 2, result.output
        assert "out of memory: Unable to allocate 23.8 GiB" in result.output
        assert "a smaller batch_size" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()  # refused before the run folder is made


@pytest.mark.parametrize("units", ["1000000000000", "4611686018427387904"])
def test_sizes_beyond_any_memory_exit_2_in_every_command(tmp_path, units):
    # NumPy says MemoryError for the first, ValueError ("array is too big") for the second
    path = write(tmp_path, [{"type": "affine", "units": 3}])
    for command in ("summary", "gradcheck", "train"):
        result = runner.invoke(app, [command, str(path), f"model.layers.0.units={units}"],
                               terminal_width=300)
        assert result.exit_code == 2, (command, result.output)
        assert "out of memory:" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()


def test_eval_of_a_split_the_run_does_not_have_exits_2(tmp_path):
    path = write(tmp_path, [{"type": "affine", "units": 3}])
    run_dir = tmp_path / "run"
    trained = runner.invoke(app, ["train", str(path), "data.split.val=0", "checkpoint.monitor=train/acc",
                                  "--run-dir", str(run_dir), "-q"])
    assert trained.exit_code == 0, trained.output
    result = runner.invoke(app, ["eval", str(run_dir), "--split", "val"], terminal_width=300)
    assert result.exit_code == 2, result.output
    assert f"{run_dir} has no val split to score: its config sets data.split.val: 0" in result.output
    assert runner.invoke(app, ["eval", str(run_dir), "--split", "test"]).exit_code == 0


def test_tables_in_a_pipe_keep_whole_run_paths(tmp_path):
    script = ("import sys; from dl_cli.cli.output import out, err, PIPE_WIDTH; "
              "print(out.width, err.width, PIPE_WIDTH)")
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    piped = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    widths = piped.stdout.split()
    assert widths[0] == widths[1] == widths[2]  # not Rich's 80 columns for a pipe
    sized = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           env={**env, "COLUMNS": "100"})
    assert sized.stdout.split()[:2] == ["100", "100"]


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs /proc, where nothing can be made")
def test_folders_that_cannot_be_made_or_used_are_named(tmp_path):
    path = write(tmp_path, [{"type": "affine", "units": 3}])
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"base": str(path), "method": "grid",
                                    "params": {"optimizer.lr": {"values": [0.01]}}}))
    cases = [
        (["train", str(path), "runs_dir=/proc/dl-nope", "-q"],
         "runs_dir: cannot make a run folder in /proc/dl-nope"),
        (["sweep", str(spec), "--sweep-dir", "/proc/dl-nope"],
         "cannot make the sweep folder /proc/dl-nope"),
        (["train", str(path), f"data.dataset={{type: csv, path: {tmp_path}}}", "-q"],
         f"{tmp_path}: a folder, where a data file is expected"),
    ]
    for args, message in cases:
        result = runner.invoke(app, args, terminal_width=300)
        assert result.exit_code == 2, result.output
        assert message in result.output and "Errno" not in result.output


def test_gradcheck_layer_also_checks_one_loss():
    result = runner.invoke(app, ["gradcheck", "--layer", "svm"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "│ svm " in result.output and "1 tensor passes" in result.output


def test_threads_and_sample_seed_name_the_bad_value(tmp_path):
    path = write(tmp_path, [{"type": "affine", "units": 3}])
    result = runner.invoke(app, ["train", str(path), "--threads", "0"])
    assert result.exit_code == 2
    assert "--threads: expected an integer >= 1, got 0" in result.output
    result = runner.invoke(app, ["sample", str(tmp_path), "--seed", "-1"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "--seed: expected an integer >= 0, got -1" in result.output


@pytest.mark.parametrize("overrides, message", [
    (["model.layers.0.units=2"], "set the last layer's units to 3"),
    (["model.loss=binary_cross_entropy"], "use softmax_cross_entropy"),
    (["model.loss=mse"], "set the last layer's units to 1"),
    (["model.loss=temporal_softmax_cross_entropy"], "takes a label at every step, (N, T), but "
                                                    "the data has one label per sample"),
    (["model.layers.0={type: embedding, vocab: 3, dim: 4}"],
     "model.layers.0 (embedding) reads integer token ids, but the data gives float"),
])
def test_a_model_that_does_not_fit_its_data_is_refused_as_dl_train_refuses_it(
        tmp_path, overrides, message):
    path = write(tmp_path, [{"type": "affine", "units": 3}])
    trained = runner.invoke(app, ["train", str(path), *overrides, "-q"], terminal_width=400)
    assert trained.exit_code == 2 and message in trained.output
    checked = runner.invoke(app, ["gradcheck", str(path), *overrides], terminal_width=400)
    assert checked.exit_code == 2, checked.output
    assert message in checked.output and "Traceback" not in checked.output
    summary = runner.invoke(app, ["summary", str(path), *overrides], terminal_width=400)
    assert summary.exit_code == 0 and "total" in summary.output  # the table, then why
    assert "warning: dl train would refuse this config" in summary.output and message in summary.output


def test_a_run_config_that_breaks_a_rule_is_named_by_eval_and_resume(tmp_path):
    run_dir = train_run(tmp_path)
    config = run_dir / "config.yaml"
    config.write_text(config.read_text().replace("schedule: null",
                                                 "schedule: {type: cosine, min_lr: 5.0}"))
    for command in (["eval", str(run_dir)], ["train", "--resume", str(run_dir)]):
        result = runner.invoke(app, command, terminal_width=400)
        assert result.exit_code == 2, result.output
        assert f"{config}: schedule.min_lr: 5 is above optimizer.lr" in result.output


def test_summary_warns_of_an_augmentation_dl_train_would_refuse(tmp_path):
    path = write(tmp_path, [{"type": "affine", "units": 3}])
    result = runner.invoke(app, ["summary", str(path), "data.augment=[flip]"], terminal_width=400)
    assert result.exit_code == 0 and "total" in result.output
    assert "warning: dl train would refuse this config: data.augment.0 (flip)" in result.output


def test_eval_refuses_a_run_whose_config_no_longer_fits_its_data(tmp_path):
    run_dir = train_run(tmp_path)
    config = run_dir / "config.yaml"
    config.write_text(config.read_text().replace("softmax_cross_entropy", "binary_cross_entropy"))
    result = runner.invoke(app, ["eval", str(run_dir)], terminal_width=400)
    assert result.exit_code == 2, result.output
    assert "use softmax_cross_entropy" in result.output


def test_help_shows_flags_without_a_value_and_what_is_required():
    helps = {command: runner.invoke(app, [command, "--help"]).output
             for command in ("train", "gradcheck", "sweep", "eval", "summary", "plot",
                             "diagnose", "runs", "compare")}
    main_help = runner.invoke(app, ["--help"]).output
    for text, flags in ((helps["train"], ("--quiet", "--print-config")),
                        (helps["gradcheck"], ("--all",)),
                        (helps["sweep"], ("--dry-run", "--fail-fast", "--retry-failed")),
                        (main_help, ("--version",))):
        for option in flags:
            line = next(line for line in text.splitlines() if option in line)
            assert "<bool>" not in line, line
    assert "Start with `dl train configs/quickstart.yaml`" in flat(main_help)
    assert "required unless --resume is given" in flat(helps["train"])
    assert "Give exactly one of CONFIG, --layer NAME or --all" in flat(helps["gradcheck"])
    for command in ("train", "gradcheck", "eval", "summary", "plot", "diagnose", "runs", "compare"):
        assert f"Example: dl {command} " in flat(helps[command])


def test_a_kfold_run_folder_names_its_fold_folders(tmp_path):
    path = write(tmp_path, [{"type": "affine", "units": 8}, "relu", {"type": "affine", "units": 3}])
    result = runner.invoke(app, ["train", str(path), "validation.kfold=3", "-q"])
    assert result.exit_code == 0, result.output
    (root,) = [p for p in (tmp_path / "runs" / "cli-test").iterdir() if p.name != "latest"]
    assert (root.parent / "latest").resolve() == root.resolve()  # a finished k-fold run
    folds = [root / f"fold-{i}" for i in range(3)]
    for command in ("eval", "plot", "diagnose", "sample"):
        refused = runner.invoke(app, [command, str(root)], terminal_width=1000)
        assert refused.exit_code == 2, (command, refused.output)
        assert f"{root} is a k-fold run folder" in refused.output
        assert f"dl {command} takes the run folder of one fold: " in refused.output
        assert ", ".join(map(str, folds)) in refused.output
        assert "scored in its summary.json" in refused.output
    (root / "summary.json").unlink()  # as in a k-fold run stopped before its end
    refused = runner.invoke(app, ["eval", str(root)], terminal_width=1000)
    assert f"(3 folds, not finished: dl train --resume {root} completes it)" in refused.output
    (root.parent / "ledger.jsonl").write_text("")  # as in a k-fold sweep's trial folder
    refused = runner.invoke(app, ["eval", str(root)], terminal_width=1000)
    assert "(3 folds, a sweep trial, scored in the sweep's results.csv)" in refused.output
    # a fold folder is scored on the fold's own validation part, as it was trained
    scored = runner.invoke(app, ["eval", str(folds[1]), "--split", "val"], terminal_width=400)
    assert scored.exit_code == 0, scored.output
    sizes = training.Run(folds[1]).read_summary()["data"]["sizes"]
    assert f"on val ({sizes['val']} samples)" in scored.output
    # the fold is the one its summary records, whatever the folder is called
    copy = tmp_path / "kept-copy"
    shutil.copytree(folds[1], copy)
    again = runner.invoke(app, ["eval", str(copy), "--split", "val"], terminal_width=400)
    assert again.exit_code == 0, again.output
    rows = [[line for line in result.output.splitlines() if "val/" in line] for result in (again, scored)]
    assert rows[0] == rows[1] and rows[0]
    assert f"on val ({sizes['val']} samples)" in again.output


def test_compare_needs_two_runs(tmp_path):
    run_dir = train_run(tmp_path)
    result = runner.invoke(app, ["compare", str(run_dir)], terminal_width=400)
    assert result.exit_code == 2
    assert "RUN_DIR: expected two or more run folders to compare, got one" in result.output
    twice = runner.invoke(app, ["compare", str(run_dir), str(run_dir)], terminal_width=400)
    assert twice.exit_code == 2 and f"RUN_DIR: {run_dir} is given twice" in twice.output


def test_compare_tells_folders_of_the_same_name_apart(tmp_path):
    from dl_cli.tables import distinct_labels

    dirs = [tmp_path / "a" / "trial-0000", tmp_path / "b" / "trial-0000", tmp_path / "b" / "x"]
    assert distinct_labels(dirs) == ["a/trial-0000", "b/trial-0000", "b/x"]
    assert distinct_labels([tmp_path / "a", tmp_path / "b"]) == ["a", "b"]


def test_runs_before_any_training_is_not_an_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["runs"])
    assert result.exit_code == 0, result.output
    assert "no runs yet under runs/ (dl train CONFIG writes one)" in result.output
    missing = runner.invoke(app, ["runs", "elsewhere"])
    assert missing.exit_code == 2 and "elsewhere: no such folder" in missing.output
    assert runner.invoke(app, ["runs", "runs"]).exit_code == 2  # named, so it must exist


@pytest.mark.parametrize("where", ["file", "file/below"])
def test_a_runs_dir_that_is_a_file_is_named(tmp_path, where):
    path = write(tmp_path, [{"type": "affine", "units": 3}])
    (tmp_path / "file").write_text("not a folder")
    runs_dir = tmp_path / where
    result = runner.invoke(app, ["train", str(path), f"runs_dir={runs_dir}", "-q"],
                           terminal_width=400)
    assert result.exit_code == 2
    assert f"runs_dir: expected a folder (made if missing), got {runs_dir}" in result.output
    assert "Errno" not in result.output
    result = runner.invoke(app, ["train", str(path), "--run-dir", str(runs_dir), "-q"],
                           terminal_width=400)
    assert result.exit_code == 2 and "--run-dir: expected a folder" in result.output


def test_sweep_resume_says_how_many_trials_are_left(tmp_path):
    base = write(tmp_path, [{"type": "affine", "units": 3}], name="base.yaml")
    data = tmp_path / "data.npz"
    spec = tmp_path / "sweep.yaml"
    spec.write_text(yaml.safe_dump({"base": str(base), "name": "s", "method": "grid", "params": {
        "data.dataset": {"values": [{"type": "spiral", "classes": 3, "samples": 30},
                                    {"type": "npz", "path": str(data)}]}}}))
    folder = tmp_path / "sweep"
    first = runner.invoke(app, ["sweep", str(spec), "--sweep-dir", str(folder)], terminal_width=400)
    assert first.exit_code == 0, first.output
    assert "s: 2 trials on" in first.output
    resumed = runner.invoke(app, ["sweep", "--resume", str(folder)], terminal_width=400)
    assert resumed.exit_code == 0, resumed.output
    assert "already complete, all 2 trials finished; nothing to run" in resumed.output
    assert "val/acc" in resumed.output  # the leaderboard
    np.savez(data, X=np.random.default_rng(0).normal(size=(60, 2)), y=np.arange(60) % 3)
    retried = runner.invoke(app, ["sweep", "--resume", str(folder), "--retry-failed"],
                            terminal_width=400)
    assert retried.exit_code == 0, retried.output
    assert "s: 1 of 2 trials to run on" in retried.output


def test_dl_freezes_the_garbage_collector_after_every_other_exit_handler():
    """Python's exit then skips the collector's passes over every object (~0.1 s); a
    handler registered before ``dl`` starts runs after the freeze."""
    program = ("import atexit, gc, sys\n"
               "atexit.register(lambda: print('frozen at exit:', gc.get_freeze_count() > 0))\n"
               "from dl_cli.__main__ import main\n"
               "sys.argv = ['dl', '--help']\n"
               "main()\n")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "Usage" in done.stdout
    assert done.stdout.rstrip().endswith("frozen at exit: True")


# -- Ctrl-C before the training loop's (or the sweep runner's) own handling -----------
def reading_blocked(fifo: Path, proc: subprocess.Popen) -> int:
    """The writing end of ``fifo``, opened once ``proc`` opens it to read (not before:
    without a reader, opening it to write fails) and left empty, so ``proc`` stays
    blocked reading it, a slow start-up step as long as a test needs."""
    deadline = time.monotonic() + 120
    while True:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: dl has not opened it yet
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "dl never opened its input"
            time.sleep(0.05)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
@pytest.mark.parametrize("command, reads, said", [
    ("train", "train.yaml", "interrupted before training started; nothing was written"),
    ("gradcheck", "train.yaml", "interrupted; nothing was written"),
    ("sweep", "sweep.yaml", "interrupted before the sweep started; nothing was written"),
])
def test_ctrl_c_while_a_command_reads_its_input_exits_130_with_one_line(tmp_path, command,
                                                                       reads, said):
    # the command's first file is a FIFO that no one writes (data files must be regular
    # files, so it is the config or the spec)
    os.mkfifo(tmp_path / reads)
    args = {"train": [tmp_path / reads], "gradcheck": [tmp_path / reads],
            "sweep": [tmp_path / reads, "--sweep-dir", tmp_path / "sweep"]}
    before = sorted(tmp_path.iterdir())
    proc = subprocess.Popen([sys.executable, "-m", "dl_cli", command, *map(str, args[command])],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    writer = reading_blocked(tmp_path / reads, proc)
    try:
        proc.send_signal(signal.SIGINT)
        out, errors = proc.communicate(timeout=60)
    finally:
        os.close(writer)
    assert (proc.returncode, out, errors) == (130, "", said + "\n")
    assert sorted(tmp_path.iterdir()) == before  # no runs/, no sweep folder


def test_ctrl_c_while_dl_imports_its_modules_exits_130_with_one_line():
    program = ("import sys\n"
               "class CtrlC:  # a Ctrl-C as the command line is imported\n"
               "    def find_spec(self, name, path=None, target=None):\n"
               "        if name == 'dl_cli.cli':\n"
               "            raise KeyboardInterrupt\n"
               "sys.meta_path.insert(0, CtrlC())\n"
               "from dl_cli.__main__ import main\n"
               "sys.argv = ['dl', 'train', 'configs/quickstart.yaml']\n"
               "main()\n")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, cwd=ROOT)
    assert (done.returncode, done.stdout) == (130, "")
    assert done.stderr == "interrupted while dl was starting; nothing was written\n"


def ctrl_c_as_training_starts(monkeypatch) -> None:
    """A Ctrl-C just before the training loop takes over Ctrl-C: the run folder is made."""
    from dl_cli.solver import Solver

    def train(self, score_test=True):
        raise KeyboardInterrupt

    monkeypatch.setattr(Solver, "train", train)


def last_line(result) -> str:
    return result.output.rstrip("\n").splitlines()[-1]


def test_a_ctrl_c_after_the_run_folder_is_made_says_what_to_do_with_it(tmp_path, monkeypatch):
    path = write(tmp_path, [{"type": "affine", "units": 8}, "relu", {"type": "affine", "units": 3}])
    new, done, kfold = tmp_path / "new", tmp_path / "done", tmp_path / "kfold"
    assert runner.invoke(app, ["train", str(path), "-q", "--run-dir", str(done)]).exit_code == 0
    with monkeypatch.context() as patch:
        ctrl_c_as_training_starts(patch)
        stopped = runner.invoke(app, ["train", str(path), "-q", "--run-dir", str(new)])
        assert stopped.exit_code == 130 and "Traceback" not in stopped.output
        assert last_line(stopped) == (f"interrupted before any checkpoint was saved; "
                                      f"dl train --resume {new} trains it from the start")
        resumed = runner.invoke(app, ["train", "--resume", str(done), "train.epochs=3", "-q"])
        assert resumed.exit_code == 130
        assert last_line(resumed) == f"interrupted; continue with dl train --resume {done}"
        folds = runner.invoke(app, ["train", str(path), "validation.kfold=2", "-q",
                                    "--run-dir", str(kfold)])
        assert folds.exit_code == 130
        assert last_line(folds) == f"interrupted; continue with dl train --resume {kfold}"
    assert not list(tmp_path.rglob("run.lock"))  # released: nothing looks in use
    listed = runner.invoke(app, ["runs", str(tmp_path)], terminal_width=300)
    assert listed.exit_code == 0 and "new" not in listed.output  # no run there, no error
    assert runner.invoke(app, ["train", "--resume", str(kfold), "-q"]).exit_code == 0
    resumed = runner.invoke(app, ["train", "--resume", str(new), "-q"])
    assert resumed.exit_code == 0 and "training it from the start" in resumed.output
    lines = [[{k: v for k, v in json.loads(line).items() if k != "time"}
              for line in (run / "metrics.jsonl").read_text().splitlines()] for run in (new, done)]
    assert lines[0] == lines[1]


def test_a_ctrl_c_while_the_run_folder_is_made_waits_until_it_can_name_it(tmp_path, monkeypatch):
    path = write(tmp_path, [{"type": "affine", "units": 3}])
    start = training.start

    def interrupted_start(cfg, run_dir=None, **options):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C as the folder is being made
        return start(cfg, run_dir, **options)

    monkeypatch.setattr(training, "start", interrupted_start)
    result = runner.invoke(app, ["train", str(path), "-q", "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 130
    assert last_line(result) == (f"interrupted before any checkpoint was saved; dl train "
                                 f"--resume {tmp_path / 'run'} trains it from the start")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# -- --threads -------------------------------------------------------------------------
def test_threads_beyond_what_blas_runs_are_refused_and_beyond_the_cores_warned(tmp_path,
                                                                               monkeypatch):
    from dl_cli import threads

    path = write(tmp_path, [{"type": "affine", "units": 3}])
    # OpenBLAS runs at most its build's threads (64 in NumPy's wheels) whatever it is
    # asked, and past a C int, threadpoolctl fails: either way, not what was asked
    for count in (10**6, 2**64 + 2):
        most = threads.blas_most(count)
        if most == count:
            continue  # a BLAS without a maximum
        result = runner.invoke(app, ["train", str(path), "--threads", str(count), "-q"])
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert flat(result.output).strip() == (f"error: --threads: expected an integer from 1 to "
                                               f"{most}, the most threads NumPy's BLAS runs here, "
                                               f"got {count}")
    monkeypatch.setattr(threads, "cores", lambda: 1)
    result = runner.invoke(app, ["train", str(path), "--threads", "2", "-q"])
    assert result.exit_code == 0, result.output
    assert ("warning: --threads 2 exceeds the 1 core: the threads will compete for them, "
            "usually slower than --threads 1") in result.output
    quiet = runner.invoke(app, ["train", str(path), "--threads", "1", "-q"])
    assert quiet.exit_code == 0 and "warning" not in quiet.output


def test_train_and_summary_warn_of_classes_the_split_leaves_out_of_training(tmp_path):
    y = np.array([0] * 10 + [1] * 10 + [2, 3])  # a split of 30 % each takes both singletons
    np.savez(tmp_path / "rare.npz", X=np.random.default_rng(0).normal(size=(len(y), 2)), y=y)
    path = write(tmp_path, [{"type": "affine", "units": 4}],
                 data={"dataset": {"type": "npz", "path": str(tmp_path / "rare.npz")},
                       "split": {"val": 0.3, "test": 0.3}})
    warning = "warning: data: 2 of the 4 classes have no sample in the training split: 2, 3;"
    trained = runner.invoke(app, ["train", str(path), "-q", "--run-dir", str(tmp_path / "run")],
                            terminal_width=1000)
    assert trained.exit_code == 0, trained.output
    assert flat(trained.output).count(warning) == 1
    assert warning in (tmp_path / "run" / "train.log").read_text()
    summary = runner.invoke(app, ["summary", str(path)], terminal_width=1000)
    assert summary.exit_code == 0 and warning in flat(summary.output)
