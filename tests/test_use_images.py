"""A segmentation run and an autoencoder run as models to use: ``load_run``'s predictions
of every pixel and reconstructions, ``dl predict`` on raw images, and the ONNX export
agreeing with both."""

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

import dl_cli as dl
from dl_cli.cli.app import app
from dl_cli.registry import DATASETS

runner = CliRunner()
SHAPES = {"type": "shapes", "samples": 40, "size": 8}
SEGMENTATION = {
    "name": "seg-use", "seed": 0,
    "data": {"dataset": SHAPES, "preprocess": ["standardize"]},
    "model": {"layers": [{"type": "conv2d", "filters": 4, "kernel": 3, "stride": 2, "pad": 1},
                         "relu", {"type": "conv2d_transpose", "filters": 4, "kernel": 4,
                                  "stride": 2, "pad": 1}]},
    "optimizer": {"type": "adam", "lr": 0.01}, "train": {"epochs": 1, "batch_size": 16}}
AUTOENCODER = {
    "name": "ae-use", "seed": 0,
    "data": {"dataset": "digits", "preprocess": ["minmax"], "target": "input"},
    "model": {"layers": [{"type": "affine", "units": 8}, "relu", {"type": "affine", "units": 64}],
              "loss": "binary_cross_entropy"},
    "optimizer": {"type": "adam", "lr": 0.01}, "train": {"epochs": 1, "batch_size": 64}}


def trained(folder, text):
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump({**text, "runs_dir": str(folder / "runs")}))
    return dl.train(path)


@pytest.fixture(scope="module")
def segmenter(tmp_path_factory):
    return trained(tmp_path_factory.mktemp("seg"), SEGMENTATION)


@pytest.fixture(scope="module")
def autoencoder(tmp_path_factory):
    return trained(tmp_path_factory.mktemp("ae"), AUTOENCODER)


def raw_images(count=5):
    """New raw images of the shapes data set (another seed than the run's)."""
    raw = DATASETS.create({**SHAPES, "samples": count}).load(np.random.default_rng(7))
    return raw.X


def softmax(scores, axis):
    e = np.exp(scores - scores.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def table(text: str):
    lines = text.strip().splitlines()
    return lines[0].split(","), [line.split(",") for line in lines[1:]]


def test_a_segmentation_run_predicts_a_class_for_every_pixel(segmenter):
    X = raw_images()
    scores = segmenter.model.scores(segmenter.inputs.prepare(X)).astype(np.float64)
    names = ["background", "circle", "square", "triangle"]
    assert segmenter.output_names == names
    labels = segmenter.predict(X)
    assert labels.shape == (5, 8, 8)
    np.testing.assert_array_equal(labels, np.array(names)[scores.argmax(axis=1)])
    proba = segmenter.predict_proba(X)
    assert proba.shape == (5, 8, 8, 4)  # the classes last, as for a label per step
    np.testing.assert_allclose(proba, np.moveaxis(softmax(scores, axis=1), 1, -1), atol=1e-12)


def test_dl_predict_writes_a_column_for_every_pixel(segmenter, tmp_path):
    X = raw_images()
    np.savez(tmp_path / "images.npz", X=X)
    result = runner.invoke(app, ["predict", str(segmenter.path), "--data",
                                 str(tmp_path / "images.npz"), "--proba"], terminal_width=400)
    assert result.exit_code == 0, result.output
    columns, rows = table(result.stdout)
    pixels = [f"prediction_{i}" for i in range(64)]
    assert columns[:64] == pixels
    assert columns[64:68] == ["prob_0_background", "prob_0_circle", "prob_0_square",
                              "prob_0_triangle"]
    assert len(columns) == 64 + 64 * 4 and len(rows) == 5
    assert [row[:64] for row in rows] == segmenter.predict(X).reshape(5, -1).tolist()
    proba = np.array([[float(v) for v in row[64:]] for row in rows])
    np.testing.assert_allclose(proba, segmenter.predict_proba(X).reshape(5, -1), atol=1e-6)


def test_a_segmentation_run_exports_probabilities_of_every_pixel(segmenter, tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    segmenter.to_onnx(tmp_path / "seg.onnx")
    session = ort.InferenceSession(str(tmp_path / "seg.onnx"), providers=["CPUExecutionProvider"])
    X = raw_images()
    (probabilities,) = session.run(["probabilities"], {"X": X.astype(np.float32)})
    assert probabilities.shape == (5, 4, 8, 8)  # ONNX keeps the class axis where it is
    np.testing.assert_allclose(np.moveaxis(probabilities, 1, -1), segmenter.predict_proba(X),
                               atol=1e-5)


def test_an_autoencoder_predicts_its_reconstructions(autoencoder, tmp_path):
    assert autoencoder.task == "regression"
    X = np.random.default_rng(0).integers(0, 17, size=(4, 64)).astype(np.float64)
    reconstruction = autoencoder.predict(X)
    scores = autoencoder.model.scores(autoencoder.inputs.prepare(X)).astype(np.float64)
    np.testing.assert_allclose(reconstruction, 1 / (1 + np.exp(-scores)), rtol=1e-6)
    assert reconstruction.shape == (4, 64)
    assert set(autoencoder.evaluate("test")) == {"test/loss", "test/mse", "test/r2"}
    np.savez(tmp_path / "digits.npz", X=X)
    result = runner.invoke(app, ["predict", str(autoencoder.path), "--data",
                                 str(tmp_path / "digits.npz")], terminal_width=400)
    assert result.exit_code == 0, result.output
    columns, rows = table(result.stdout)
    assert columns == [f"prediction_{i}" for i in range(64)]
    np.testing.assert_allclose(np.array(rows, dtype=np.float64), reconstruction, rtol=1e-6)
    refused = runner.invoke(app, ["predict", str(autoencoder.path), "--data",
                                  str(tmp_path / "digits.npz"), "--proba"])
    assert refused.exit_code == 2
    assert "a regression model predicts values, not class probabilities" in refused.output


def test_an_autoencoder_exports_its_reconstruction(autoencoder, tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    autoencoder.to_onnx(tmp_path / "ae.onnx")
    session = ort.InferenceSession(str(tmp_path / "ae.onnx"), providers=["CPUExecutionProvider"])
    X = np.random.default_rng(1).integers(0, 17, size=(4, 64)).astype(np.float32)
    (probabilities,) = session.run(["probabilities"], {"X": X})
    np.testing.assert_allclose(probabilities, autoencoder.predict(X), atol=1e-5)
