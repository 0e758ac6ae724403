"""Segmentation and autoencoders from configs: the ``shapes`` data set, runs on labels of
every pixel (checks, monitors, mean IoU), ``data.target: input`` (the autoencoder's
target, denoising, binary cross-entropy on [0, 1]) and the configs built on them."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from dl_cli import threads, training
from dl_cli.cli.app import app
from dl_cli.config import ConfigError, load_config
from dl_cli.data import DataError, load
from dl_cli.metrics import evaluate
from dl_cli.nn import Model, ShapeError
from dl_cli.registry import DATASETS

ROOT = Path(__file__).resolve().parents[1]

SMALL_SHAPES = {"type": "shapes", "samples": 60, "size": 8}
SEGMENTER = [{"type": "conv2d", "filters": 4, "kernel": 3, "stride": 2, "pad": 1}, "relu",
             {"type": "conv2d_transpose", "filters": 4, "kernel": 4, "stride": 2, "pad": 1}]


def shapes(seed=0, **options):
    return DATASETS.create({"type": "shapes", **options}).load(np.random.default_rng(seed))


def config(tmp_path, text: dict, *overrides):
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump({"runs_dir": str(tmp_path / "runs"), **text}))
    return load_config(path, list(overrides))


def segmentation(**changes):
    base = {"name": "seg", "data": {"dataset": SMALL_SHAPES, "split": {"val": 0.2, "test": 0.2}},
            "model": {"layers": SEGMENTER}, "optimizer": {"type": "adam", "lr": 0.01},
            "train": {"epochs": 1, "batch_size": 16}}
    return {**base, **changes}


def autoencoder(**changes):
    base = {"name": "ae", "data": {"dataset": "digits", "preprocess": ["minmax"],
                                   "target": "input"},
            "model": {"layers": [{"type": "affine", "units": 8}, {"type": "affine", "units": 64}],
                      "loss": "mse"},
            "optimizer": {"type": "adam", "lr": 0.01}, "train": {"epochs": 1, "batch_size": 64}}
    return {**base, **changes}


# -- the shapes data set ----------------------------------------------------------------

def test_shapes_are_images_with_a_label_for_every_pixel():
    raw = shapes(samples=50, size=12)
    assert raw.X.shape == (50, 1, 12, 12) and raw.X.dtype == np.float64
    assert raw.y.shape == (50, 12, 12) and raw.y.dtype == np.int64
    assert raw.classes == 4 and raw.names == ["background", "circle", "square", "triangle"]
    assert set(np.unique(raw.y)) == {0, 1, 2, 3}
    assert DATASETS.get("shapes").per_pixel


def test_shapes_are_brighter_than_the_background_and_never_touch():
    raw = shapes(samples=200, noise=0.0)
    labels, X = raw.y, raw.X[:, 0]
    assert np.all(X[labels == 0] == 0.0)
    assert X[labels > 0].min() >= 0.5 and X[labels > 0].max() <= 1.0
    # two neighbouring pixels of two shapes would have different non-zero labels
    for a, b in ((labels[:, 1:], labels[:, :-1]), (labels[:, :, 1:], labels[:, :, :-1])):
        assert not np.any((a > 0) & (b > 0) & (a != b))
    shapes_per_image = [len(np.unique(y)) - 1 for y in labels]  # kinds: a lower bound
    assert 1 <= min(shapes_per_image) and max(shapes_per_image) >= 2


def test_shapes_are_seeded_and_noisy():
    np.testing.assert_array_equal(shapes(3, samples=50).X, shapes(3, samples=50).X)
    assert not np.array_equal(shapes(3, samples=50).y, shapes(4, samples=50).y)
    noisy = shapes(samples=100, noise=0.2)
    assert noisy.X[:, 0][noisy.y == 0].std() == pytest.approx(0.2, rel=0.05)
    one = shapes(samples=100, max_shapes=1).y
    assert all(len(np.unique(y)) == 2 for y in one)


@pytest.mark.parametrize("options,message", [
    ({"size": 7}, "size must be an integer >= 8"),
    ({"max_shapes": 0}, "max_shapes must be an integer >= 1"),
    ({"noise": -1}, "noise must be a finite number >= 0"),
])
def test_shapes_refuses_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        DATASETS.create({"type": "shapes", **options})


# -- runs on labels of every pixel --------------------------------------------------------

def test_a_segmentation_run_reports_pixel_accuracy_and_mean_iou(tmp_path):
    cfg = config(tmp_path, segmentation(checkpoint={"monitor": "val/miou"}))
    run = training.start(cfg)
    summary = training.train(cfg, run, progress=False)
    assert summary["monitor"] == "val/miou"
    assert set(summary["test"]) == {"test/loss", "test/acc", "test/miou"}
    assert 0 <= summary["test"]["test/miou"] <= summary["test"]["test/acc"] <= 1


def test_mean_iou_is_a_monitor_only_where_pixels_are_labelled(tmp_path):
    config(tmp_path, segmentation(checkpoint={"monitor": "val/miou"}))
    with pytest.raises(ConfigError, match="a classification model does not report val/miou"):
        config(tmp_path, {"data": {"dataset": "digits"}, "checkpoint": {"monitor": "val/miou"},
                          "model": {"layers": [{"type": "affine", "units": 10}]}})


@pytest.mark.parametrize("layers,loss,message", [
    ([{"type": "conv2d", "filters": 3, "kernel": 1}], "softmax_cross_entropy",
     "the model gives scores of shape (3, 8, 8) per sample, but 4 classes need (4, 8, 8); "
     "set the last layer's filters to 4"),
    ([{"type": "conv2d", "filters": 4, "kernel": 3}], "softmax_cross_entropy",
     "the model gives scores of shape (4, 6, 6) per sample, but 4 classes need (4, 8, 8)"),
    (["flatten", {"type": "affine", "units": 4}], "softmax_cross_entropy",
     "4 classes need (4, 8, 8)"),
    ([{"type": "conv2d", "filters": 4, "kernel": 1}], "svm",
     "model.loss 'svm' takes one label per sample, (N,), but the data has labels of shape "
     "(8, 8) per sample"),
])
def test_a_model_that_cannot_label_every_pixel_is_refused(tmp_path, layers, loss, message):
    cfg = config(tmp_path, segmentation(model={"layers": layers, "loss": loss}))
    with pytest.raises(ShapeError) as error:
        training.assemble(cfg)
    assert message in str(error.value)


def test_a_model_with_more_scores_than_classes_is_warned_of_on_the_class_axis(tmp_path):
    wide = [*SEGMENTER[:2], {**SEGMENTER[2], "filters": 6}]
    parts = training.assemble(config(tmp_path, segmentation(model={"layers": wide})))
    assert "gives 6 scores per sample but the data has 4 classes" in training.unused_scores(
        parts.model, parts.splits)
    parts = training.assemble(config(tmp_path, segmentation()))
    assert training.unused_scores(parts.model, parts.splits) is None


@pytest.mark.parametrize("augment", ["flip", {"type": "translate", "max_shift": 1}, "crop"])
def test_augmentations_that_move_pixels_are_refused_for_label_maps(tmp_path, augment):
    data = {"dataset": SMALL_SHAPES, "augment": [augment]}
    with pytest.raises(DataError, match=r"data\.augment\.0 \(\w+\) moves the pixels of the "
                                        r"inputs, but the targets"):
        training.assemble(config(tmp_path, segmentation(data=data)))
    training.assemble(config(tmp_path, segmentation(data={"dataset": SMALL_SHAPES,
                                                          "augment": ["noise"]})))


# -- data.target: input ---------------------------------------------------------------------

def test_the_target_is_the_preprocessed_input(tmp_path):
    cfg = config(tmp_path, autoencoder())
    splits = load(cfg.data, seed=0)
    for split in (splits.train, splits.val, splits.test):
        np.testing.assert_array_equal(split.y, split.X)
    assert splits.train.X.max() == 1.0 and splits.train.X.min() == 0.0  # minmax came first
    assert splits.task == "regression" and splits.num_classes is None
    assert splits.info["target"] == "input" and splits.info["class_names"] is None
    labelled = load(config(tmp_path, autoencoder(data={"dataset": "digits",
                                                       "preprocess": ["minmax"]})).data, seed=0)
    np.testing.assert_array_equal(labelled.train.X, splits.train.X)  # the same inputs
    assert labelled.train.y.shape == (len(labelled.train),)


def test_target_must_be_labels_or_input(tmp_path):
    with pytest.raises(ConfigError, match=r"data.target: unknown value 'inputs' \(did you mean "
                                          r"'input'\?\); allowed: labels, input"):
        config(tmp_path, autoencoder(), "data.target=inputs")
    with pytest.raises(DataError, match="data.target: input needs real-valued inputs"):
        load(config(tmp_path, autoencoder(data={"dataset": "hello", "target": "input"})).data)


def test_a_denoising_autoencoder_adds_noise_to_the_inputs_only(tmp_path):
    """An identity model scores the noise alone: loss ½·64·std² per sample, where a target
    that got the same noise would give 0; the training split is left as it was."""
    cfg = config(tmp_path, autoencoder(
        data={"dataset": "digits", "preprocess": ["minmax"], "target": "input",
              "augment": [{"type": "noise", "std": 0.5}]},
        model={"layers": [{"type": "affine", "units": 64}], "loss": "mse"}),
        "train.dtype=float64")
    parts = training.assemble(cfg)
    parts.model.params["0.W"][...] = np.eye(64)
    clean = parts.splits.train.X.copy()
    loss = training.make_solver(cfg, parts, None, progress=False).step(np.arange(256))
    assert loss == pytest.approx(0.5 * 64 * 0.25, rel=0.05)
    np.testing.assert_array_equal(parts.splits.train.X, clean)
    np.testing.assert_array_equal(parts.splits.train.y, clean)


def test_an_autoencoder_run_monitors_the_loss_and_reports_mse(tmp_path):
    cfg = config(tmp_path, autoencoder())
    summary = training.train(cfg, training.start(cfg), progress=False)
    assert summary["monitor"] == "val/loss"
    assert set(summary["test"]) == {"test/loss", "test/mse", "test/r2"}


def test_binary_cross_entropy_reconstructs_values_in_zero_one(tmp_path):
    cfg = config(tmp_path, autoencoder(model={"layers": [{"type": "affine", "units": 64}],
                                              "loss": "binary_cross_entropy"}))
    parts = training.assemble(cfg)
    X = parts.splits.val.X
    scores = evaluate(parts.model, X, parts.splits.val.y, "val")
    logits = parts.model.scores(X).astype(np.float64)
    reconstruction = 1 / (1 + np.exp(-logits))
    assert scores["val/mse"] == pytest.approx(np.mean((reconstruction - X) ** 2), rel=1e-5)
    assert set(scores) == {"val/loss", "val/mse", "val/r2"}
    standardized = autoencoder(data={"dataset": "digits", "preprocess": ["standardize"],
                                     "target": "input"},
                               model={"layers": [{"type": "affine", "units": 64}],
                                      "loss": "binary_cross_entropy"})
    with pytest.raises(ShapeError, match=r"compares probabilities, but the targets go from "
                                         r"-\d.* to \d.*; scale them to \[0, 1\]"):
        training.assemble(config(tmp_path, standardized))


def test_summary_gradcheck_and_eval_take_an_autoencoder(tmp_path):
    path = tmp_path / "ae.yaml"
    path.write_text(yaml.safe_dump({**autoencoder(), "runs_dir": str(tmp_path / "runs")}))
    runner = CliRunner()
    summary = runner.invoke(app, ["summary", str(path)])
    assert summary.exit_code == 0 and "affine" in summary.output
    assert "would refuse" not in summary.output
    checked = runner.invoke(app, ["gradcheck", str(path)])
    assert checked.exit_code == 0, checked.output
    trained = runner.invoke(app, ["train", str(path), "-q", "--run-dir", str(tmp_path / "run")])
    assert trained.exit_code == 0, trained.output
    scored = runner.invoke(app, ["eval", str(tmp_path / "run"), "--split", "test"])
    assert scored.exit_code == 0 and "test/mse" in scored.output, scored.output


# -- the configs ------------------------------------------------------------------------

def test_the_configs_build_the_promised_networks(tmp_path):
    fcn = training.assemble(load_config(ROOT / "configs/fcn_shapes.yaml",
                                        [f"runs_dir={tmp_path}", "data.dataset.samples=20"]))
    assert fcn.model.out_shape == (4, 16, 16)
    assert [layer.registered_name for layer in fcn.model.layers].count("concat") == 1
    resnet = training.assemble(load_config(ROOT / "configs/resnet_digits.yaml",
                                           [f"runs_dir={tmp_path}"]))
    blocks = [layer for layer in resnet.model.layers if layer.registered_name == "residual"]
    assert [b.shortcut is not None for b in blocks] == [False, True, True]
    assert [(b.shortcut.kernel, b.shortcut.stride) for b in blocks[1:]] == [(1, 2), (1, 2)]
    assert "global_avgpool" in [layer.registered_name for _, layer in resnet.model.chain.walk("")]
    ae = training.assemble(load_config(ROOT / "configs/autoencoder_digits.yaml",
                                       [f"runs_dir={tmp_path}"]))
    assert min(layer.units for layer in ae.model.layers if hasattr(layer, "units")) == 16
    assert ae.model.out_shape == (64,)


def fcn_layers(skip: bool) -> list:
    """A small FCN: down 16 → 8 → 4 and back up, with or without the full-resolution skip."""
    body = [{"type": "conv2d", "filters": 16, "kernel": 3, "stride": 2, "pad": 1}, "relu",
            {"type": "conv2d", "filters": 32, "kernel": 3, "stride": 2, "pad": 1}, "relu",
            {"type": "conv2d_transpose", "filters": 16, "kernel": 4, "stride": 2, "pad": 1},
            "relu",
            {"type": "conv2d_transpose", "filters": 8, "kernel": 4, "stride": 2, "pad": 1},
            "relu"]
    middle = [{"type": "concat", "branches": [[], body]}] if skip else body
    return [{"type": "conv2d", "filters": 8, "kernel": 3, "pad": 1}, "relu", *middle,
            {"type": "conv2d", "filters": 8, "kernel": 3, "pad": 1}, "relu",
            {"type": "conv2d", "filters": 4, "kernel": 1}]


@pytest.mark.slow
def test_the_skip_raises_the_mean_iou(tmp_path):
    """fcn_shapes.yaml's data and training, shortened (1000 images, 8 epochs, a narrower
    network): the skip that joins the full-resolution activations gives a clearly higher
    test mean IoU than the same down-then-up body alone."""
    def trained_miou(skip):
        cfg = load_config(ROOT / "configs/fcn_shapes.yaml", [
            f"runs_dir={tmp_path}", "data.dataset.samples=1000", "train.epochs=8",
            "optimizer.lr=5e-3", "train.eval_train_samples=0",
            f"model.layers={yaml.safe_dump(fcn_layers(skip), default_flow_style=True)}"])
        parts = training.assemble(cfg)
        summary = training.make_solver(cfg, parts, None, progress=False).train()
        return summary["test"]["test/miou"]

    with_skip, without = trained_miou(True), trained_miou(False)
    assert with_skip > without + 0.03, (with_skip, without)


def pca_test_error(splits, k: int) -> float:
    """Test MSE of the projection on the top k principal components of the training split."""
    mean = splits.train.X.mean(axis=0)
    _, _, Vt = np.linalg.svd(splits.train.X - mean, full_matrices=False)
    centred = splits.test.X - mean
    return float(np.mean((centred - centred @ Vt[:k].T @ Vt[:k]) ** 2))


@pytest.mark.slow
def test_a_linear_autoencoder_finds_pca_and_a_nonlinear_one_beats_it(tmp_path):
    """k = 4: the linear autoencoder's test error within 2 % of PCA's, the ReLU one's
    below it (experiments/autoencoder_vs_pca.yaml runs k = 4, 8, 16 over three seeds)."""
    def trained_mse(layers, epochs, lr):
        cfg = load_config(ROOT / "configs/autoencoder_digits.yaml", [
            f"runs_dir={tmp_path}", f"train.epochs={epochs}", f"optimizer.lr={lr}",
            f"model.layers={yaml.safe_dump(layers, default_flow_style=True)}"])
        parts = training.assemble(cfg)
        with threads.computing_on(1):  # small products: one BLAS thread is the fastest
            summary = training.make_solver(cfg, parts, None, progress=False).train()
        return summary["test"]["test/mse"], parts.splits

    linear, splits = trained_mse([{"type": "affine", "units": 4}, {"type": "affine", "units": 64}],
                                 100, 0.01)
    pca = pca_test_error(splits, 4)
    assert abs(linear - pca) <= 0.02 * pca, (linear, pca)
    nonlinear, _ = trained_mse([{"type": "affine", "units": 256}, "relu",
                                {"type": "affine", "units": 4}, {"type": "affine", "units": 256},
                                "relu", {"type": "affine", "units": 64}], 100, 0.002)
    assert nonlinear < 0.8 * pca, (nonlinear, pca)


# -- dl plot ------------------------------------------------------------------------------

@pytest.mark.parametrize("text,figure,image_rows", [
    (autoencoder(), "reconstructions.png", 2),
    (segmentation(), "label_maps.png", 3),
])
def test_plot_draws_what_the_model_gives_beside_its_inputs(tmp_path, text, figure, image_rows):
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread

    cfg = config(tmp_path, text)
    run = training.start(cfg)
    training.train(cfg, run, progress=False)
    result = CliRunner().invoke(app, ["plot", str(run.path), "--out", str(tmp_path / "png")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "png").glob("*.png")) == sorted(
        ["curves.png", figure])
    height, width, _ = imread(tmp_path / "png" / figure).shape
    assert width > 8 * height / (image_rows + 1)  # eight samples side by side
    assert figure in CliRunner().invoke(app, ["plot", "--help"], terminal_width=400).output


def test_plot_runs_no_plugin_code_of_a_run(tmp_path):
    """A figure of outputs would import the run's plugins: dl plot draws the curves alone."""
    pytest.importorskip("matplotlib")
    plugin = tmp_path / "marking.py"
    plugin.write_text("from pathlib import Path\nPath(__file__).with_name('imported.txt').touch()\n")
    cfg = config(tmp_path, autoencoder(plugins=[str(plugin)]))
    run = training.start(cfg)
    training.train(cfg, run, progress=False)
    (tmp_path / "imported.txt").unlink()
    result = subprocess.run([sys.executable, "-m", "dl_cli", "plot", str(run.path), "--out",
                             str(tmp_path / "png")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert [p.name for p in (tmp_path / "png").glob("*.png")] == ["curves.png"]
    assert not (tmp_path / "imported.txt").exists()


def test_a_binary_cross_entropy_autoencoder_exports_its_reconstruction():
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from dl_cli.export import to_onnx

    model = Model([{"type": "affine", "units": 4}, {"type": "affine", "units": 6}], (6,),
                  loss="binary_cross_entropy")
    x = np.random.default_rng(0).random((3, 6)).astype(np.float32)
    session = ort.InferenceSession(to_onnx(model).SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    (probabilities,) = session.run(["probabilities"], {"X": x})
    np.testing.assert_allclose(probabilities, model.loss_fn.values(model.forward(x)), atol=1e-6)
