"""ONNX export: onnxruntime on raw inputs gives the model's own scores and probabilities.

Models are trained through the project's path (config → data.load → assemble → Solver)
for a few epochs; the preprocessing steps are fitted on the raw training split exactly
as ``data.load`` fits them (checked: they turn the raw splits into the loaded ones).
The reference is NumPy: the fitted steps' ``transform``, ``model.scores`` and a softmax.
"""

import dataclasses
import json

import numpy as np
import pytest
import yaml

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from dl_cli import training  # noqa: E402
from dl_cli.config import load_config  # noqa: E402
from dl_cli.data import load  # noqa: E402
from dl_cli.export import EXPORTERS, ExportError, to_onnx  # noqa: E402
from dl_cli.nn import Layer, Model  # noqa: E402
from dl_cli.registry import LAYERS, PREPROCESSORS  # noqa: E402

TOLERANCE = 1e-5  # absolute, on probabilities, float32


# -- helpers ---------------------------------------------------------------------------

def run_onnx(proto, X):
    """The graph's outputs by name on X, after checking the graph."""
    onnx.checker.check_model(proto, full_check=True)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(names, {"X": X})))


def softmax(scores):
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def preprocessed(steps, X):
    for step in steps:
        X = step.transform(X)
    return X


@dataclasses.dataclass
class Trained:
    model: Model
    steps: list
    X_test: np.ndarray  # raw
    class_names: list | None


def train(tmp_path, cfg: dict, epochs: int = 2) -> Trained:
    """Train ``cfg`` for ``epochs``; the model, the fitted steps and the raw test inputs."""
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump({**cfg, "runs_dir": str(tmp_path / "runs")}))
    config = load_config(path, [f"train.epochs={epochs}"])
    dtype = config.train.dtype
    raw = load(dataclasses.replace(config.data, preprocess=[]), seed=config.seed, dtype=dtype)
    steps = []
    for spec in config.data.preprocess:
        steps.append(PREPROCESSORS.create(spec).fit(preprocessed(steps, raw.train.X)))
    splits = load(config.data, seed=config.seed, dtype=dtype)
    for name in ("train", "val", "test"):  # the steps are the run's own
        np.testing.assert_array_equal(preprocessed(steps, getattr(raw, name).X),
                                      getattr(splits, name).X)
    parts = training.assemble(config, splits)
    training.make_solver(config, parts, None, progress=False).train()
    return Trained(parts.model, steps, raw.test.X, splits.info["class_names"])


def check_agrees(trained: Trained, **options):
    """onnxruntime on the raw test inputs gives the model's scores and probabilities."""
    proto = to_onnx(trained.model, trained.steps, **options)
    got = run_onnx(proto, trained.X_test)
    scores = trained.model.scores(preprocessed(trained.steps, trained.X_test))
    np.testing.assert_allclose(got["scores"], scores, rtol=1e-5, atol=1e-4)
    if trained.model.loss_fn.task == "classification":
        probabilities = softmax(scores.astype(np.float64))
        assert got["probabilities"].shape == probabilities.shape
        np.testing.assert_allclose(got["probabilities"], probabilities, rtol=0, atol=TOLERANCE)
    return proto, got


DIGITS = {
    "name": "export-digits",
    "seed": 0,
    "data": {"dataset": "digits", "split": {"val": 0.2, "test": 0.2}},
    "model": {"layers": [{"type": "affine", "units": 32}, {"type": "batchnorm"}, "relu",
                         {"type": "dropout", "drop_rate": 0.3}, {"type": "affine", "units": 10}]},
    "optimizer": {"type": "adam", "lr": 1.0e-2},
    "train": {"batch_size": 64},
}


def digits_with(layers, images=False, preprocess=("standardize",)):
    data = {**DIGITS["data"], "preprocess": list(preprocess)}
    if images:
        data["dataset"] = {"type": "digits", "images": True}
    return {**DIGITS, "data": data, "model": {"layers": layers}}


# -- every layer, on its own -----------------------------------------------------------

BUILT_IN = [name for name in LAYERS.names() if LAYERS.get(name).__module__.startswith("dl_cli.")]


def test_every_built_in_layer_has_an_exporter():
    assert set(BUILT_IN) <= set(EXPORTERS.names())


@pytest.mark.parametrize("name, k", [(name, k) for name in BUILT_IN
                                     for k in range(len(LAYERS.get(name).examples))])
def test_every_layer_example_exports_its_inference_forward(name, k):
    """Each layer's examples, every parameter and buffer drawn at random (learned initial
    states, PReLU slopes of both signs, batchnorm statistics far from 0 and 1), in a
    float64 model: the float32 graph gives its eval-mode forward."""
    example = LAYERS.get(name).examples[k]
    model = Model([example.spec], example.in_shape, dtype="float64", seed=k)
    rng = np.random.default_rng(k)
    for key, array in {**model.params, **model.buffers}.items():
        array[...] = (rng.uniform(0.5, 2.0, array.shape) if key.endswith("running_var")
                      else rng.normal(0.0, 0.7, array.shape))
    X = example.input(7, rng)
    proto = to_onnx(model)
    got = run_onnx(proto, X if example.tokens else X.astype(np.float32))
    np.testing.assert_allclose(got["scores"], model.forward(X, train=False),
                               rtol=1e-5, atol=1e-5)
    assert (proto.graph.input[0].type.tensor_type.elem_type
            == (onnx.TensorProto.INT64 if example.tokens else onnx.TensorProto.FLOAT))
    assert all(init.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.INT64)
               for init in proto.graph.initializer)


STEPS = {"center": "center", "standardize": "standardize", "minmax": "minmax",
         "pca": {"type": "pca", "components": 3},
         "pca_whiten": {"type": "pca_whiten", "components": 3, "eps": 0.5}}


def test_every_preprocessing_step_is_in_the_table():
    assert set(STEPS) == set(PREPROCESSORS.names())


@pytest.mark.parametrize("shape", [(5,), (2, 3, 3)])
@pytest.mark.parametrize("name", sorted(STEPS))
def test_every_preprocessing_step_exports_its_transform(name, shape):
    """Per feature and per channel (images): the graph gives ``transform``."""
    rng = np.random.default_rng(0)
    X = (rng.normal(3.0, 2.0, (40, *shape)) * rng.uniform(0.1, 10, shape)).astype(np.float32)
    step = PREPROCESSORS.create(STEPS[name]).fit(X[:30])
    want = step.transform(X[30:])
    model = Model(["flatten"], want.shape[1:])
    got = run_onnx(to_onnx(model, [step], input_shape=shape), X[30:])
    np.testing.assert_allclose(got["scores"], want.reshape(len(want), -1), rtol=1e-5, atol=1e-5)


# -- trained models, raw inputs ------------------------------------------------------------

@pytest.mark.parametrize("preprocess", [
    ["standardize"],
    ["minmax"],
    [{"type": "pca_whiten", "components": 24, "eps": 0.5}],
    ["center", {"type": "pca", "components": 40}, "standardize"],
])
def test_an_mlp_takes_raw_features_through_its_preprocessing(tmp_path, preprocess):
    trained = train(tmp_path, digits_with(DIGITS["model"]["layers"], preprocess=preprocess), 3)
    assert trained.X_test.max() == 16  # raw pixel values 0..16
    proto, _ = check_agrees(trained, class_names=trained.class_names)
    assert proto.graph.input[0].type.tensor_type.shape.dim[1].dim_value == 64
    metadata = {p.key: p.value for p in proto.metadata_props}
    assert metadata["task"] == "classification"
    assert json.loads(metadata["class_names"]) == trained.class_names


def test_the_digits_cnn_with_batchnorm_and_pooling(tmp_path):
    layers = [{"type": "conv2d", "filters": 8, "kernel": 3, "pad": 1}, {"type": "batchnorm"},
              "relu", {"type": "maxpool", "pool": 2},
              {"type": "conv2d", "filters": 8, "kernel": 3, "pad": 1}, {"type": "batchnorm"},
              "prelu", {"type": "avgpool", "pool": 2}, "flatten",
              {"type": "dropout", "drop_rate": 0.3}, {"type": "affine", "units": 10}]
    trained = train(tmp_path, digits_with(layers, images=True), 2)
    assert trained.X_test.shape[1:] == (1, 8, 8)
    check_agrees(trained)


@pytest.mark.parametrize("images", [True, False])
def test_residual_and_concat_blocks(tmp_path, images):
    if images:  # a strided body (projection shortcut), then Inception-like branches
        layers = [{"type": "conv2d", "filters": 4, "kernel": 3, "pad": 1},
                  {"type": "residual", "layers": [
                      {"type": "conv2d", "filters": 6, "kernel": 4, "stride": 2, "pad": 1},
                      {"type": "batchnorm"}, "relu",
                      {"type": "conv2d", "filters": 6, "kernel": 3, "pad": 1}]},
                  {"type": "concat", "branches": [
                      [{"type": "conv2d", "filters": 2, "kernel": 1}],
                      [{"type": "conv2d", "filters": 2, "kernel": 1}, "relu",
                       {"type": "conv2d", "filters": 3, "kernel": 3, "pad": 1}],
                      []]},
                  "flatten", {"type": "affine", "units": 10}]
    else:  # an identity shortcut, a projected one, and an empty branch
        layers = [{"type": "affine", "units": 16},
                  {"type": "residual", "layers": [{"type": "affine", "units": 16}, "tanh",
                                                  {"type": "affine", "units": 16}]},
                  {"type": "residual", "layers": [{"type": "affine", "units": 8}, "relu"]},
                  {"type": "concat", "branches": [[{"type": "affine", "units": 4}],
                                                  [{"type": "affine", "units": 4}, "relu"],
                                                  []]},
                  {"type": "affine", "units": 10}]
    trained = train(tmp_path, digits_with(layers, images=images), 2)
    check_agrees(trained)


@pytest.mark.parametrize("cell", ["lstm", "rnn"])
def test_a_character_model_over_embeddings(tmp_path, cell):
    """Token ids in, a distribution over the next character at every step out."""
    cfg = {
        "name": "export-text", "seed": 0,
        "data": {"dataset": {"type": "text", "steps": 12}, "split": {"val": 0.1, "test": 0.1}},
        "model": {"init": "xavier_normal",
                  "layers": [{"type": "embedding", "vocab": 44, "dim": 8},
                             {"type": cell, "hidden": 16, "initial_state": "learned"},
                             {"type": "temporal_affine", "units": 44}],
                  "loss": "temporal_softmax_cross_entropy"},
        "optimizer": {"type": "adam", "lr": 1.0e-2},
        "train": {"batch_size": 32},
    }
    trained = train(tmp_path, cfg, 2)
    assert trained.X_test.dtype == np.int64
    _, got = check_agrees(trained)
    assert got["probabilities"].shape == (len(trained.X_test), 12, 44)


def test_every_activation(tmp_path):
    hidden = [{"type": "affine", "units": 12}]
    layers = []
    for activation in ["relu", {"type": "leaky_relu", "alpha": 0.1}, "prelu",
                       {"type": "elu", "alpha": 0.5}, "sigmoid", "tanh", "softmax"]:
        layers += hidden + [activation]
    cfg = {"name": "export-activations", "seed": 1,
           "data": {"dataset": {"type": "spiral", "classes": 3, "samples": 60},
                    "split": {"val": 0.2, "test": 0.3}, "preprocess": ["standardize"]},
           "model": {"layers": layers + [{"type": "affine", "units": 3}]},
           "optimizer": {"type": "adam", "lr": 1.0e-2}, "train": {"batch_size": 16}}
    check_agrees(train(tmp_path, cfg, 3))


def test_a_binary_classifier_gives_both_class_probabilities(tmp_path):
    cfg = {"name": "export-binary", "seed": 0,
           "data": {"dataset": {"type": "moons", "samples": 60},
                    "split": {"val": 0.2, "test": 0.3}, "preprocess": ["minmax"]},
           "model": {"layers": [{"type": "affine", "units": 8}, "tanh",
                                {"type": "affine", "units": 1}],
                     "loss": "binary_cross_entropy"},
           "optimizer": {"type": "adam", "lr": 1.0e-2}, "train": {"batch_size": 16}}
    trained = train(tmp_path, cfg, 3)
    got = run_onnx(to_onnx(trained.model, trained.steps), trained.X_test)
    z = trained.model.scores(preprocessed(trained.steps, trained.X_test)).astype(np.float64)
    one = 1 / (1 + np.exp(-z[:, 0]))
    np.testing.assert_allclose(got["probabilities"], np.stack([1 - one, one], axis=1),
                               rtol=0, atol=TOLERANCE)


def test_a_regression_model_gives_scores_only(tmp_path):
    cfg = {"name": "export-sine", "seed": 0,
           "data": {"dataset": {"type": "sine", "samples": 200, "steps": 10},
                    "split": {"val": 0.2, "test": 0.2}, "preprocess": ["center"]},
           "model": {"layers": [{"type": "lstm", "hidden": 8, "return_sequences": False},
                                {"type": "affine", "units": 1}], "loss": "mse"},
           "optimizer": {"type": "adam", "lr": 1.0e-2}, "train": {"batch_size": 32},
           "checkpoint": {"monitor": "val/mse", "mode": "min"}}
    trained = train(tmp_path, cfg, 2)
    proto, got = check_agrees(trained)
    assert set(got) == {"scores"}
    assert {p.key: p.value for p in proto.metadata_props}["task"] == "regression"


# -- layers and steps of one's own -------------------------------------------------------------

class Halve(Layer):
    """``x / 2``: a layer with no exporter (not registered, so no other test sees it)."""

    registered_name = "export_test_halve"

    def forward(self, x, train=True):
        return x / 2


class Double(Layer):
    """``2x``, with an exporter registered below, as a plugin would register one."""

    registered_name = "export_test_double"

    def forward(self, x, train=True):
        return 2 * x


@EXPORTERS.register("export_test_double")
def export_double(graph, layer, x, in_shape):
    return graph.node("Mul", x, graph.constant(2.0, "two"))


def test_a_layer_without_exporter_is_refused_by_its_key():
    layers = [{"type": "affine", "units": 4}, Halve(), {"type": "affine", "units": 2}]
    with pytest.raises(ExportError, match=r"model\.layers\.1 \(export_test_halve\) cannot be "
                                          r"exported to ONNX.*layers that export: .*affine"):
        to_onnx(Model(layers, (3,), path="model.layers"))
    with pytest.raises(ExportError, match=r"^layer 1 \(export_test_halve\)"):
        to_onnx(Model(layers, (3,)))


def test_a_layer_of_ones_own_exports_through_its_registered_exporter():
    model = Model([{"type": "affine", "units": 4}, Double(), "tanh"], (3,))
    X = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    got = run_onnx(to_onnx(model), X)
    np.testing.assert_allclose(got["scores"], model.forward(X), rtol=1e-6, atol=1e-6)


def test_preprocessing_that_cannot_be_exported_is_refused():
    model = Model([{"type": "affine", "units": 2}], (4,))
    X = np.random.default_rng(0).standard_normal((20, 4))

    class Clip:
        registered_name = "export_test_clip"

    with pytest.raises(ExportError, match=r"data\.preprocess\.1 \(export_test_clip\)"):
        to_onnx(model, [PREPROCESSORS.create("center").fit(X), Clip()])
    with pytest.raises(ExportError, match=r"data\.preprocess\.0: 'standardize' is not fitted"):
        to_onnx(model, [PREPROCESSORS.create("standardize")])
    with pytest.raises(ExportError, match=r"the preprocessing gives samples of shape \(3,\), "
                                          r"but the model takes \(4,\)"):
        to_onnx(model, [PREPROCESSORS.create({"type": "pca", "components": 3}).fit(X)])
    with pytest.raises(ExportError, match=r"data\.preprocess\.0: 'minmax' was fitted on "
                                          r"samples of shape \(4,\)"):
        to_onnx(model, [PREPROCESSORS.create("minmax").fit(X)], input_shape=(5,))


def test_options_are_checked():
    model = Model([{"type": "affine", "units": 2}], (4,))
    with pytest.raises(ValueError, match="opset must be an integer from 15"):
        to_onnx(model, opset=11)
    with pytest.raises(ExportError, match="3 class names, but the model gives 2"):
        to_onnx(model, class_names=["a", "b", "c"])
    proto = to_onnx(model, opset=15)
    assert [o.version for o in proto.opset_import] == [15]
