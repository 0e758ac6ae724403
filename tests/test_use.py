"""A run is a model you can use: self-contained checkpoints, runs/<name>, dl predict, the
Python API and dl export, each checked as a user would call it.

The digits runs are trained once per module through the API (``dl_cli.train``); the
raw inputs are the digits' own 8×8 pixel values (0..16), split as the run split them.
"""

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

import dl_cli as dl
from dl_cli.cli.app import app
from dl_cli.data import load
from dl_cli.layout import named_runs, resolve_run
from dl_cli.predict import InputError, TableLayout, read_samples, write_predictions
from dl_cli.registry import PREPROCESSORS
from dl_cli.storage import RunError, load_npz, save_npz

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def dl_cli(*args, input=None):
    return runner.invoke(app, [str(a) for a in args], input=input, terminal_width=400)


def raw_split(run, split="test"):
    """The raw (unpreprocessed) samples and labels of one split of the run's data."""
    cfg = run.config
    splits = load(dataclasses.replace(cfg.data, preprocess=[]), seed=cfg.seed, dtype="float64")
    return getattr(splits, split).X, getattr(splits, split).y


def write_csv(path, X, y=None, header=True, label_first=False):
    """Rows of raw values; a ``label`` column (first or last) when ``y`` is given."""
    X = X.reshape(len(X), -1)
    names = [f"pixel_{i}" for i in range(X.shape[1])]
    lines = []
    if header:
        lines.append(",".join((["label"] + names) if label_first else
                              (names + (["label"] if y is not None else []))))
    for i, row in enumerate(X):
        cells = [f"{v:g}" for v in row]
        if y is not None:
            cells = [str(y[i])] + cells if label_first else cells + [str(y[i])]
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n")
    return path


def table(text: str):
    """The header and the rows of a CSV table written by dl predict."""
    lines = text.strip().splitlines()
    return lines[0].split(","), [line.split(",") for line in lines[1:]]


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """configs/digits_mlp.yaml (minmax, batchnorm, dropout), 3 epochs."""
    folder = tmp_path_factory.mktemp("digits")
    return dl.train(ROOT / "configs" / "digits_mlp.yaml",
                    overrides=["train.epochs=3", f"runs_dir={folder}"])


@pytest.fixture(scope="module")
def digits_cnn(tmp_path_factory):
    """configs/digits_cnn.yaml (1×8×8 images, standardize, batchnorm), 1 epoch."""
    folder = tmp_path_factory.mktemp("cnn")
    return dl.train(ROOT / "configs" / "digits_cnn.yaml",
                    overrides=["train.epochs=1", f"runs_dir={folder}"])


@pytest.fixture(scope="session")
def spiral_config(tiny_config, write_config):
    """``spiral_config(folder, **changes)``: ``folder/spiral.yaml``, a small config whose
    runs go to ``folder/runs/spiral-use``, trained 2 epochs; ``changes`` replace its keys."""
    def write(folder: Path, **changes) -> Path:
        cfg = {**tiny_config(name="spiral-use", seed=0, train={"epochs": 2, "batch_size": 16}),
               **changes}
        return write_config(folder, cfg, "spiral.yaml")
    return write


# -- a self-contained run -----------------------------------------------------------------
def test_checkpoints_hold_what_scoring_raw_inputs_takes(tmp_path):
    """Every step's statistics, the class names, the task, the raw shape and dtype, as
    plain arrays; the steps they rebuild transform as the steps fitted in training."""
    preprocess = ["center", {"type": "pca", "components": 20}, "standardize"]
    run = dl.train(ROOT / "configs" / "digits_mlp.yaml",
                   overrides=["train.epochs=1", f"runs_dir={tmp_path}",
                              f"data.preprocess={json.dumps(preprocess)}"])
    for kind in ("best", "last"):
        arrays = load_npz(run.path / "checkpoints" / f"{kind}.npz")
        record = json.loads(str(arrays["inputs"]))
        assert record == {"task": "classification", "class_names": [str(i) for i in range(10)],
                          "shape": [64], "dtype": "float32", "vocab": None,
                          "preprocess": ["center", "pca", "standardize"]}
        assert {k for k in arrays if k.startswith("preprocess/")} == {
            "preprocess/0/mean", "preprocess/1/mean", "preprocess/1/basis",
            "preprocess/1/variance", "preprocess/2/mean", "preprocess/2/std"}
        assert arrays["preprocess/1/basis"].shape == (64, 20)
    X, _ = raw_split(run, "train")
    X = X.astype(np.float32)
    for i, step in enumerate(run.inputs.steps):  # the steps training fitted, step by step
        fitted = PREPROCESSORS.create(preprocess[i]).fit(X)
        np.testing.assert_array_equal(step.transform(X), fitted.transform(X))
        X = fitted.transform(X)


def test_eval_uses_the_stored_statistics_and_scores_the_run_as_training_did(digits, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(digits.path, run_dir)
    assert dl.load_run(run_dir).evaluate("test") == digits.summary["test"]
    result = dl_cli("eval", run_dir)
    assert result.exit_code == 0, result.output
    assert f"{digits.summary['test']['test/acc']:.4g}" in result.output
    # statistics changed in the checkpoint change the score: they are the ones used
    path = run_dir / "checkpoints" / "best.npz"
    arrays = load_npz(path)
    arrays["preprocess/0/span"] = arrays["preprocess/0/span"] * 4
    save_npz(path, arrays)
    assert dl.load_run(run_dir).evaluate("test")["test/loss"] != digits.summary["test"]["test/loss"]


def older(run_dir: Path) -> None:
    """Make a run folder's checkpoints as an earlier version wrote them."""
    for path in (run_dir / "checkpoints").glob("*.npz"):
        arrays = load_npz(path)
        save_npz(path, {k: v for k, v in arrays.items()
                        if k != "inputs" and not k.startswith("preprocess/")})


def test_an_older_run_still_evaluates_and_says_why_it_cannot_predict(digits, tmp_path):
    run_dir = tmp_path / "old"
    shutil.copytree(digits.path, run_dir)
    older(run_dir)
    scored = dl_cli("eval", run_dir)
    assert scored.exit_code == 0, scored.output
    assert "holds no preprocessing statistics: they were fitted again" in scored.output
    assert f"{digits.summary['test']['test/acc']:.4g}" in scored.output
    csv = write_csv(tmp_path / "x.csv", raw_split(digits)[0][:5])
    for command in (["predict", run_dir, "--data", csv], ["export", run_dir]):
        refused = dl_cli(*command)
        assert refused.exit_code == 2, refused.output
        assert "was written by an earlier version of dl and lacks what it takes to" in refused.output
        assert "the fitted preprocessing statistics, the class names" in refused.output
    with pytest.raises(RunError, match="lacks what it takes to predict"):
        dl.load_run(run_dir).predict(raw_split(digits)[0][:5])


@pytest.mark.parametrize("damage, message", [
    (lambda a: {**a, "inputs": np.array("{not json")}, "checkpoint 'inputs' is not JSON"),
    (lambda a: {**a, "inputs": np.array(json.dumps({**json.loads(str(a["inputs"])), "shape": [0]}))},
     "'shape' is [0], expected a list of positive integers"),
    (lambda a: {k: v for k, v in a.items() if k != "preprocess/0/span"},
     "data.preprocess.0: 'minmax' needs its fitted span, which is missing"),
    (lambda a: {**a, "preprocess/0/low": np.full((1, 3), np.nan)},
     "data.preprocess.0: 'minmax': fitted low holds float64 values that are not all finite"),
    (lambda a: {**a, "preprocess/0/low": np.zeros((1, 3))},
     "the preprocessing statistics do not fit samples of shape (64,)"),
])
def test_a_damaged_inputs_record_is_named(digits, tmp_path, damage, message):
    run_dir = tmp_path / "run"
    shutil.copytree(digits.path, run_dir)
    path = run_dir / "checkpoints" / "best.npz"
    save_npz(path, damage(load_npz(path)))
    for command in ("eval", "predict"):
        result = dl_cli(command, run_dir, *(["--data", "-"] if command == "predict" else []))
        assert result.exit_code == 2, result.output
        assert str(path) in result.output and message in result.output


# -- runs/<name> -----------------------------------------------------------------------------
def set_status(run_dir: Path, status: str) -> None:
    summary = run_dir / "summary.json"
    summary.write_text(json.dumps({**json.loads(summary.read_text()), "status": status}))


def test_a_name_folder_means_its_newest_finished_run(tmp_path, spiral_config):
    config = spiral_config(tmp_path)
    first, second, third = (dl.train(config).path for _ in range(3))
    name = tmp_path / "runs" / "spiral-use"
    assert named_runs(name) == [first, second, third]
    assert (name / "latest").resolve() == third.resolve()
    set_status(third, "interrupted")  # as a run stopped by Ctrl-C records itself
    assert resolve_run(name) == second
    assert dl.load_run(name).path == second
    scored = dl_cli("eval", name)
    assert scored.exit_code == 0 and second.name in scored.output
    # resume takes the newest run, finished or not; finishing it makes it latest again
    resumed = dl_cli("train", "--resume", name, "-q")
    assert resumed.exit_code == 0, resumed.output
    assert f"resuming {third}, the newest run in {name}" in resumed.output
    assert resolve_run(name) == third and (name / "latest").resolve() == third.resolve()
    # a shell's runs/<name>/* lists latest beside its run: compare takes them once
    compared = dl_cli("compare", *sorted(name.iterdir()))
    assert compared.exit_code == 0, compared.output
    listed = dl_cli("runs", tmp_path / "runs")
    assert listed.output.count("completed") == 3


def test_a_name_folder_of_unfinished_runs_names_the_newest(tmp_path, spiral_config):
    run = dl.train(spiral_config(tmp_path))
    set_status(run.path, "diverged")
    for command in ("eval", "predict", "export", "diagnose", "plot"):
        extra = ["--data", "-"] if command == "predict" else []
        result = dl_cli(command, run.path.parent, *extra)
        assert result.exit_code == 2, (command, result.output)
        assert (f"{run.path.parent} holds 1 run, none finished (completed or stopped early); "
                f"give one of them, such as {run.path}") in result.output


def test_plot_and_diagnose_read_a_name_folder_as_its_newest_finished_run(tmp_path, spiral_config):
    config = spiral_config(tmp_path)
    first, second, third = (dl.train(config).path for _ in range(3))
    set_status(third, "interrupted")
    for other in (first, third):  # only the newest finished run keeps what they read
        (other / "metrics.jsonl").unlink()
    name = second.parent
    diagnosed = dl_cli("diagnose", name)
    assert diagnosed.exit_code == 0, diagnosed.output
    assert diagnosed.output == dl_cli("diagnose", second).output
    pytest.importorskip("matplotlib")
    plotted = dl_cli("plot", name)
    assert plotted.exit_code == 0, plotted.output
    assert str(second / "plots") in plotted.output and any((second / "plots").glob("*.png"))
    assert not (name / "plots").exists()


def test_latest_is_only_for_the_runs_dl_names(tmp_path, spiral_config):
    config = spiral_config(tmp_path)
    custom = tmp_path / "runs" / "spiral-use" / "by-hand"
    assert dl_cli("train", config, "--run-dir", custom, "-q").exit_code == 0
    assert not (custom.parent / "latest").exists()
    assert resolve_run(custom) == custom
    kfold = dl_cli("train", config, "validation.kfold=2", "-q")
    assert kfold.exit_code == 0, kfold.output
    (root,) = named_runs(tmp_path / "runs" / "spiral-use")
    assert (root.parent / "latest").resolve() == root.resolve()
    assert not (root / "latest").exists()  # folds are no name folder's runs


# -- dl predict ------------------------------------------------------------------------------
def test_predict_scores_raw_digits_as_eval_does(digits, tmp_path):
    """The acceptance path: raw 8×8 pixel values (0..16) with the label column."""
    X, y = raw_split(digits)
    assert X.min() == 0 and X.max() == 16
    csv = write_csv(tmp_path / "digits.csv", X, y)
    result = dl_cli("predict", digits.path.parent, "--data", csv, "--proba")
    assert result.exit_code == 0, result.output
    columns, rows = table(result.stdout)
    assert columns == ["prediction"] + [f"prob_{i}" for i in range(10)]
    predicted = np.array([int(row[0]) for row in rows])
    accuracy = float(np.mean(predicted == y))
    assert accuracy == digits.summary["test"]["test/acc"] == digits.evaluate("test")["test/acc"]
    probabilities = np.array([[float(v) for v in row[1:]] for row in rows])
    np.testing.assert_allclose(probabilities, digits.predict_proba(X), rtol=0, atol=1e-8)
    assert np.array_equal(digits.predict(X), predicted.astype(str))
    np.testing.assert_array_equal(probabilities.argmax(axis=1), predicted)


@pytest.mark.parametrize("layout", ["no label", "label first", "no header", "stdin", "npz",
                                    "npz images"])
def test_predict_reads_every_format(digits, tmp_path, layout):
    X, y = raw_split(digits)
    want = digits.predict(X)
    stdin = None
    if layout == "no label":
        data = write_csv(tmp_path / "x.csv", X)
    elif layout == "label first":
        data = write_csv(tmp_path / "x.csv", X, y, label_first=True)
    elif layout == "no header":
        data = write_csv(tmp_path / "x.csv", X, header=False)
    elif layout == "stdin":
        data, stdin = "-", write_csv(tmp_path / "x.csv", X, y).read_text()
    else:
        data = tmp_path / "x.npz"
        np.savez_compressed(data, X=X.reshape(-1, 8, 8) if layout == "npz images" else X)
    result = dl_cli("predict", digits.path, "--data", data, input=stdin)
    assert result.exit_code == 0, result.output
    columns, rows = table(result.stdout)
    assert columns == ["prediction"] and [row[0] for row in rows] == list(want)


def test_predict_reads_idx_images_as_the_mnist_data_set_does(tmp_path):
    """A run trained on IDX files (MNIST's format) predicts for its t10k images."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "idx"
    folder.mkdir()

    def idx(name, array):
        header = bytes([0, 0, 8, array.ndim]) + np.array(array.shape, ">u4").tobytes()
        (folder / name).write_bytes(header + array.astype(np.uint8).tobytes())

    for part, n in (("train", 120), ("t10k", 40)):
        labels = rng.integers(0, 10, n)
        images = rng.integers(0, 60, (n, 6, 6)) + (labels[:, None, None] * 20)
        idx(f"{part}-images-idx3-ubyte", images)
        idx(f"{part}-labels-idx1-ubyte", labels)
    config = tmp_path / "idx.yaml"
    config.write_text(yaml.safe_dump({
        "name": "idx", "runs_dir": str(tmp_path / "runs"),
        "data": {"dataset": {"type": "mnist", "path": str(folder), "flatten": True},
                 "split": {"val": 0.2, "test": 0.0}},
        "model": {"layers": [{"type": "affine", "units": 10}]},
        "optimizer": {"type": "adam", "lr": 0.05}, "train": {"epochs": 3, "batch_size": 16}}))
    run = dl.train(config)
    result = dl_cli("predict", run.path, "--data", folder / "t10k-images-idx3-ubyte")
    assert result.exit_code == 0, result.output
    predicted = np.array([int(row[0]) for row in table(result.stdout)[1]])
    test = run.data("test")
    assert np.array_equal(predicted, run.model.predict(test.X))


def test_predict_writes_a_file_whole_or_not_at_all(digits, tmp_path):
    X, y = raw_split(digits)
    out = tmp_path / "predictions.csv"
    result = dl_cli("predict", digits.path, "--data", write_csv(tmp_path / "x.csv", X, y),
                    "--out", out, "--checkpoint", "last")
    assert result.exit_code == 0, result.output
    assert f"{len(X)} predictions → {out}" in result.output
    last = dl.load_run(digits.path, checkpoint="last")
    assert [row[0] for row in table(out.read_text())[1]] == list(last.predict(X))
    before = out.read_bytes()
    bad = write_csv(tmp_path / "bad.csv", np.concatenate([X] * 4), np.concatenate([y] * 4))
    bad.write_text(with_cell(bad.read_text(), 1301, 2, "x"))  # past the first batch
    failed = dl_cli("predict", digits.path, "--data", bad, "--out", out)
    assert failed.exit_code == 2 and "line 1301, column 2: 'x' is not a number" in failed.output
    assert out.read_bytes() == before and not list(tmp_path.glob(".*.tmp"))


def with_cell(text: str, line: int, column: int, value: str | None) -> str:
    """``text`` with the cell at ``line``, ``column`` (both from 1) set, or dropped (None)."""
    lines = text.splitlines()
    cells = lines[line - 1].split(",")
    if value is None:
        del cells[column - 1]
    else:
        cells[column - 1] = value
    lines[line - 1] = ",".join(cells)
    return "\n".join(lines) + "\n"


BAD_CSV = [
    ("too few features", lambda t: "\n".join(line.split(",", 1)[1] for line in t.splitlines()),
     "line 1: 63 feature columns besides the label column 'label'; the model takes 64 features"),
    ("a label without a header", lambda t: t.split("\n", 1)[1],
     "line 1: 65 columns: one more than the features, but no label column is named (a header "
     "line naming it 'label' marks it); the model takes 64 features"),
    ("a word", lambda t: with_cell(t, 3, 2, "seven"), "line 3, column 2: 'seven' is not a number"),
    ("a quoted word", lambda t: with_cell(t, 4, 7, '" 1 2"'), "line 4, column 7: ' 1 2' is not a number"),
    ("a ragged row", lambda t: with_cell(t, 4, 9, None), "line 4: 64 cells where the table has 65"),
    ("a cell of a megabyte", lambda t: with_cell(t, 3, 2, "1" * 2**20),
     "line 3: a cell longer than 131,072 characters; a table of numbers has none"),
    ("nan", lambda t: with_cell(t, 5, 2, "nan"), "line 5: holds NaN or infinity"),
    ("infinity", lambda t: with_cell(t, 6, 1, "-inf"), "line 6: holds NaN or infinity"),
    ("empty", lambda t: "", "no data rows (the file is empty)"),
    ("blank lines only", lambda t: "\n\n  \n", "no data rows (the file is empty)"),
    ("a header only", lambda t: t.split("\n", 1)[0] + "\n", "no data rows, only the header line"),
]


@pytest.mark.parametrize("case, damage, message", BAD_CSV, ids=[c[0] for c in BAD_CSV])
def test_bad_csv_input_is_named_with_its_line_and_column(digits, tmp_path, case, damage, message):
    X, y = raw_split(digits)
    text = damage(write_csv(tmp_path / "good.csv", X[:20], y[:20]).read_text())
    path = tmp_path / "bad.csv"
    path.write_text(text)
    for data, stdin, name in ((path, None, str(path)), ("-", text, "standard input")):
        result = dl_cli("predict", digits.path, "--data", data, input=stdin)
        assert result.exit_code == 2, result.output
        assert f"error: {name}: {message}" in result.output
        assert result.stdout == ""  # no header without a row


def test_bad_arrays_and_files_are_named(digits, digits_cnn, tmp_path):
    X, _ = raw_split(digits)
    cases = {
        "images.npz": (digits_cnn, {"X": X.reshape(-1, 4, 16)},
                       "samples of shape (4, 16) do not fit the model, which takes raw samples "
                       "of shape (1, 8, 8) (64 values each)"),
        "wide.npz": (digits, {"X": X[:, :60]}, "samples of shape (60,) do not fit the model"),
        "none.npz": (digits, {"X": X[:0]}, "X (0, 64) holds no samples"),
        "named.npz": (digits, {"features": X}, "no array named X; found features"),
        "text.npz": (digits, {"X": np.array(["a", "b"])}, "X holds <U1 values; samples are numbers"),
        "nan.npz": (digits, {"X": np.where(np.arange(64) == 3, np.nan, X[:4])},
                    "X[0] holds NaN or infinity"),
    }
    for name, (run, arrays, message) in cases.items():
        np.savez(tmp_path / name, **arrays)
        result = dl_cli("predict", run.path, "--data", tmp_path / name)
        assert result.exit_code == 2 and message in result.output, (name, result.output)
    (tmp_path / "fake.npz").write_text("X\n1,2\n")
    (tmp_path / "folder").mkdir()
    for data, message in ((tmp_path / "fake.npz", "not a .npz archive"),
                          (tmp_path / "missing.csv", "missing.csv: no such file"),
                          (tmp_path / "folder", "a folder, where a file of samples is expected")):
        result = dl_cli("predict", digits.path, "--data", data)
        assert result.exit_code == 2 and message in result.output, result.output


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_samples_that_are_not_a_regular_file_are_refused_at_once(digits, tmp_path, kind):
    path = tmp_path / "samples.csv"
    if kind == "fifo":
        os.mkfifo(path)  # no one writes it: reading it would wait forever
    else:
        path = Path("/dev/zero")  # reading it would never end
    done = subprocess.run([sys.executable, "-m", "dl_cli", "predict", str(digits.path),
                           "--data", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert f"{path}: not a regular file (a FIFO, a device or a socket)" in done.stderr


def test_predict_refuses_what_it_cannot_do(tmp_path, spiral_config):
    sine = dl.train(spiral_config(tmp_path), overrides=[
        "data.dataset={type: sine, samples: 60, steps: 5}", "model.loss=mse",
        "model.layers=[{type: rnn, hidden: 4, return_sequences: false}, {type: affine, units: 1}]"])
    result = dl_cli("predict", sine.path, "--data", "-", "--proba", input="1,2,3,4,5\n")
    assert result.exit_code == 2
    assert "--proba: a regression model predicts values, not class probabilities" in result.output
    values = dl_cli("predict", sine.path, "--data", "-", input="0,0.5,1,0.5,0\n1,1,1,1,1\n")
    assert values.exit_code == 0, values.output
    columns, rows = table(values.stdout)
    want = sine.predict(np.array([[0, 0.5, 1, 0.5, 0], [1, 1, 1, 1, 1]]).reshape(2, 5, 1))
    assert columns == ["prediction"] and np.allclose([float(r[0]) for r in rows], want, atol=1e-6)
    text = dl.train(ROOT / "configs" / "char_lstm.yaml",
                    overrides=["train.epochs=1", f"runs_dir={tmp_path}", "data.dataset.steps=8",
                               "data.dataset.stride=64",
                               "model.layers.1.hidden=8"])
    refused = dl_cli("predict", text.path, "--data", "-", input="1,2\n")
    assert refused.exit_code == 2
    assert f"{text.path} is a character model: dl sample {text.path} --prime TEXT" in refused.output


def test_a_huge_csv_is_streamed_in_batches_of_bounded_memory(tmp_path, spiral_config, tiny_config,
                                                             traced_peak):
    """40,000 rows, read 128 at a time, are predicted with less than 500 kB allocated at
    once (reading the rows whole takes 10 MB); the progress callback hears every byte."""
    run = dl.train(spiral_config(tmp_path, data={**tiny_config()["data"], "preprocess": []}))
    rows = np.random.default_rng(0).normal(size=(40_000, 2)).round(4)
    path = tmp_path / "big.csv"
    path.write_text("x,y\n" + "\n".join(f"{a:g},{b:g}" for a, b in rows) + "\n")

    class Sink:
        def write(self, text):
            return len(text)

    layout = TableLayout.of(run)
    small = tmp_path / "small.csv"
    small.write_text("1,2\n3,4\n")
    write_predictions(read_samples(small, (2,), layout), run, Sink(), proba=True)  # imports done
    heard = np.zeros(1, dtype=np.int64)  # bytes, counted without keeping a list

    def hear(amount):
        heard[0] += amount

    batches = read_samples(path, run.inputs.shape, layout, rows=128, progress=hear)
    count, peak = traced_peak(lambda: write_predictions(batches, run, Sink(), proba=True))
    assert count == len(rows)
    assert peak < 500_000, f"peak {peak:,} bytes"
    assert heard[0] == path.stat().st_size


def test_read_samples_names_the_label_column_of_a_csv_data_set(tmp_path, spiral_config):
    """A run trained on a CSV reads a CSV like it: its label column, its delimiter."""
    data = tmp_path / "train.csv"
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3)).round(4)
    y = (X[:, 0] > 0).astype(int)
    data.write_text("a;target;b;c\n" + "\n".join(f"{r[0]:g};{t};{r[1]:g};{r[2]:g}"
                                                   for r, t in zip(X, y)) + "\n")
    run = dl.train(spiral_config(tmp_path), overrides=[
        f"data.dataset={{type: csv, path: {data}, label: target, delimiter: ';'}}"])
    batches = list(read_samples(data, run.inputs.shape, TableLayout.of(run)))
    np.testing.assert_allclose(np.concatenate(batches), X, atol=1e-12)
    with pytest.raises(InputError, match=r"line 1: 4 columns: one more than the features, "
                                         r"but no label column is named"):
        next(read_samples(data, (3,), TableLayout(delimiter=";")))


# -- the Python API --------------------------------------------------------------------------
def test_the_api_loads_a_run_and_trains_as_dl_train_does(digits, tmp_path, spiral_config):
    run = dl.load_run(digits.path.parent)  # the name folder: its newest finished run
    assert isinstance(run, dl.TrainedRun) and run.path == digits.path
    assert run.config.name == "digits-mlp" and run.summary == digits.summary
    assert run.model.num_params() == digits.model.num_params()
    X, y = raw_split(run)
    assert run.predict_proba(X).shape == (len(X), 10)
    assert run.class_names == [str(i) for i in range(10)]
    config = spiral_config(tmp_path)
    trained = dl.train(config, overrides=["optimizer.lr=0.05", "train.epochs=3"])
    assert trained.config.optimizer["lr"] == 0.05 and trained.summary["epochs"] == 3
    assert trained.class_names is None  # spirals have no class names: labels are indices
    X = np.array([[0.1, 0.2], [-0.5, 0.3]])
    assert trained.predict(X).dtype.kind == "i"
    assert trained.predict_proba(X).shape == (2, 3)
    assert trained.summary == json.loads((trained.path / "summary.json").read_text())
    cli = dl_cli("train", config, "optimizer.lr=0.05", "train.epochs=3", "-q")
    assert cli.exit_code == 0
    (by_cli,) = [p for p in named_runs(trained.path.parent) if p != trained.path]
    assert (by_cli / "config.yaml").read_text() == (trained.path / "config.yaml").read_text()
    assert dl.load_run(by_cli).summary["test"] == trained.summary["test"]
    folds = dl.train(config, overrides=["validation.kfold=2"])
    assert [fold.path.name for fold in folds] == ["fold-0", "fold-1"]
    with pytest.raises(RunError, match="is a k-fold run folder, one model per fold: load one of"):
        dl.load_run(folds[0].path.parent)


def test_importing_dl_cli_imports_nothing_heavy():
    program = ("import sys, dl_cli; print(sorted(m for m in ('numpy', 'typer', 'yaml') "
               "if m in sys.modules)); print(callable(dl_cli.load_run))")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["[]", "True"]


# -- dl export -------------------------------------------------------------------------------
def test_onnxruntime_gives_what_dl_predict_gives(digits, digits_cnn, tmp_path):
    """The MLP behind minmax and the CNN with batchnorm behind standardize, on raw rows."""
    ort = pytest.importorskip("onnxruntime")
    X, y = raw_split(digits)
    csv = write_csv(tmp_path / "digits.csv", X, y)
    for run in (digits, digits_cnn):
        model = tmp_path / f"{run.config.name}.onnx"
        exported = dl_cli("export", run.path, "--format", "onnx", "--out", model)
        assert exported.exit_code == 0, exported.output
        assert str(model) in exported.output
        predicted = dl_cli("predict", run.path, "--data", csv, "--proba")
        columns, rows = table(predicted.stdout)
        want = np.array([[float(v) for v in row[1:]] for row in rows])
        session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        inputs = X.reshape(len(X), *run.inputs.shape).astype(np.float32)
        _, probabilities = session.run(["scores", "probabilities"], {"X": inputs})
        np.testing.assert_allclose(probabilities, want, rtol=0, atol=1e-5)
        assert [row[0] for row in rows] == [str(i) for i in probabilities.argmax(axis=1)]
    default = dl_cli("export", digits.path)
    assert default.exit_code == 0 and (digits.path / "model.onnx").exists()


def test_export_without_onnx_names_the_extra(digits):
    program = ("import sys; sys.modules['onnx'] = None\n"
               "from dl_cli.__main__ import main\n"
               f"sys.argv = ['dl', 'export', {str(digits.path)!r}]\n"
               "main()\n")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == "error: dl export needs the onnx package: pip install 'dl-cli[onnx]'"


def test_export_refuses_what_it_cannot_write(digits, tmp_path, spiral_config):
    pytest.importorskip("onnx")
    wrong = dl_cli("export", digits.path, "--format", "tflite")
    assert wrong.exit_code == 2 and "--format: expected onnx, got 'tflite'" in wrong.output
    opset = dl_cli("export", digits.path, "--opset", "9")
    assert opset.exit_code == 2 and "opset must be an integer from 15" in opset.output
    plugin = tmp_path / "halve.py"
    plugin.write_text("from dl_cli.nn import Layer\nfrom dl_cli.nn.layer import Example\n"
                      "from dl_cli.registry import LAYERS\n\n\n"
                      "@LAYERS.register('use_test_halve')\nclass Halve(Layer):\n"
                      "    examples = (Example('use_test_halve', (3,)),)\n\n"
                      "    def forward(self, x, train=True):\n        return x / 2\n\n"
                      "    def backward(self, dout):\n        return dout / 2\n")
    run = dl.train(spiral_config(tmp_path, plugins=[str(plugin)]), overrides=[
        "model.layers=[{type: affine, units: 4}, use_test_halve, {type: affine, units: 3}]"])
    refused = dl_cli("export", run.path, "--allow-plugins")
    assert refused.exit_code == 2
    assert "model.layers.1 (use_test_halve) cannot be exported to ONNX" in refused.output
    assert not (run.path / "model.onnx").exists()


def test_predict_into_a_pipe_closed_early_stops_quietly(digits, tmp_path):
    """``dl predict ... | head -1``: exit 1 (a write failed), no traceback, no message."""
    X, _ = raw_split(digits)
    data = write_csv(tmp_path / "many.csv", np.concatenate([X] * 30))
    process = subprocess.Popen([sys.executable, "-m", "dl_cli", "predict", str(digits.path),
                                "--data", str(data), "--proba"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline().startswith("prediction,prob_0")
    process.stdout.close()
    assert process.wait(timeout=120) == 1
    assert process.stderr.read() == ""


def test_a_binary_classifier_predicts_both_class_probabilities(tmp_path, spiral_config):
    run = dl.train(spiral_config(tmp_path), overrides=[
        "data.dataset={type: moons, samples: 60}", "model.loss=binary_cross_entropy",
        "model.layers.2.units=1"])
    result = dl_cli("predict", run.path, "--data", "-", "--proba", input="0.5,0.2\n-1,0.4\n")
    assert result.exit_code == 0, result.output
    columns, rows = table(result.stdout)
    assert columns == ["prediction", "prob_0", "prob_1"]
    X = np.array([[0.5, 0.2], [-1, 0.4]])
    z = run.scores(X)[:, 0].astype(np.float64)
    want = np.stack([1 / (1 + np.exp(z)), 1 / (1 + np.exp(-z))], axis=1)
    np.testing.assert_allclose([[float(v) for v in row[1:]] for row in rows], want, atol=1e-8)
    assert [int(row[0]) for row in rows] == list((z > 0).astype(int))
