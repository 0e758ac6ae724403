"""A trained model and its fitted preprocessing as one ONNX graph, raw features in,
scores (and class probabilities) out.

```python
proto = to_onnx(model, steps, class_names=["setosa", "versicolor", "virginica"])
onnx.save(proto, "model.onnx")
session = onnxruntime.InferenceSession("model.onnx")
scores, probabilities = session.run(None, {"X": X_raw.astype(np.float32)})
```

The graph:

```
X (N, *input_shape) ─► preprocessing ─► layers (inference mode) ─► scores
                                                                    └─► probabilities
```

- ``X``: raw samples, float32, or int64 token ids for a model whose first layer reads
  tokens (embedding). The batch size N is free; every other axis is fixed.
- preprocessing: the fitted steps in order (``dl_cli/export/preprocess.py``).
- layers: each through its registered exporter (``EXPORTERS``), dropout as the
  identity and batchnorm with its running statistics, as ``forward(x, train=False)``.
- ``scores``: the model's output, ``(N, *out_shape)``.
- ``probabilities`` for classifiers, chosen by the model's loss: ``Softmax`` over the
  last axis for a softmax (or SVM) loss, ``(N, 2)`` columns ``[σ(−z), σ(z)]`` (classes
  0 and 1) for ``binary_cross_entropy``; none for regression.

Everything is float32: weights and statistics of a float64 model are rounded to
float32, so its exported scores agree with its own to float32's precision only.
"""

from __future__ import annotations

import json

import onnx
from onnx import helper

from .. import __version__
from ..nn.model import Model
from .exporters import export_chain
from .graph import ExportError, OnnxGraph
from .preprocess import PREPROCESS_EXPORTERS

DEFAULT_OPSET = 17
MIN_OPSET = 15  # Shape with start/end (the batch size of learned recurrent states)


def check_opset(opset) -> int:
    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= newest:
        raise ValueError(f"opset must be an integer from {MIN_OPSET} to {newest} (the newest "
                         f"this onnx package knows), got {opset!r}")
    return opset


def default_input_shape(model: Model, steps) -> tuple[int, ...]:
    """The model's input shape, or ``(D,)`` when a PCA step makes it (``D`` the rows of
    the first PCA's basis: the features it was fitted on)."""
    for step in steps:
        if hasattr(step, "basis"):
            return (int(step.basis.shape[0]),)
    return model.in_shape


def add_preprocessing(graph: OnnxGraph, steps, x: str, in_shape: tuple[int, ...]):
    """The nodes of every step in order; the last output's name and shape."""
    for i, step in enumerate(steps):
        name = step.registered_name
        with graph.scope(f"preprocess.{i}"):
            if name not in PREPROCESS_EXPORTERS:
                raise ExportError(f"data.preprocess.{i} ({name}) cannot be exported to ONNX: "
                                  f"no exporter is registered for it; steps that export: "
                                  f"{', '.join(PREPROCESS_EXPORTERS.names())}")
            try:
                x, in_shape = PREPROCESS_EXPORTERS.get(name)(graph, step, x, in_shape)
            except ExportError as error:
                raise ExportError(f"data.preprocess.{i}: {error}") from None
    return x, tuple(in_shape)


def add_outputs(graph: OnnxGraph, model: Model, scores: str, class_names) -> list:
    """``scores``, and ``probabilities`` for a classifier, as graph outputs with their
    value infos (batch axis ``N``). Binary cross-entropy with a logit per value (targets
    in [0, 1], an autoencoder's) gives ``σ(z)`` of every value as ``probabilities``."""
    task, out_shape = model.loss_fn.task, tuple(model.out_shape)
    outputs = [helper.make_tensor_value_info(graph.output("Identity", scores, name="scores"),
                                             onnx.TensorProto.FLOAT, ["N", *out_shape])]
    if task == "classification":
        graph.output("Softmax", scores, name="probabilities", axis=model.loss_fn.class_axis)
        shape = out_shape
    elif task == "binary" and out_shape != (1,):
        if class_names is not None:
            raise ExportError("class names are for classifiers, but this model gives a "
                              "probability for each of its output values")
        graph.output("Sigmoid", scores, name="probabilities")
        shape = out_shape
    elif task == "binary":
        z = graph.node("Flatten", scores, axis=1)  # (N, 1)
        graph.output("Concat", graph.node("Sigmoid", graph.node("Neg", z)),
                     graph.node("Sigmoid", z), name="probabilities", axis=1)
        shape = (2,)
    else:
        if class_names is not None:
            raise ExportError(f"class names are for classifiers, but the model's loss "
                              f"'{model.loss_fn.registered_name}' is a regression loss")
        return outputs
    if class_names is not None and len(class_names) > shape[-1]:
        raise ExportError(f"{len(class_names)} class names, but the model gives "
                          f"{shape[-1]} class probabilities")
    outputs.append(helper.make_tensor_value_info("probabilities", onnx.TensorProto.FLOAT,
                                                 ["N", *shape]))
    return outputs


def to_onnx(model: Model, preprocess=(), *, input_shape=None, class_names=None,
            opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    """The model in inference mode behind its fitted preprocessing, as a checked ONNX model.

    ``preprocess``: the fitted steps (``PREPROCESSORS`` entries after ``fit``), in the
    order the data went through them. ``input_shape``: one raw sample's shape, by
    default the model's input shape (``(D,)`` before a PCA). ``class_names`` (a list of
    strings, or None) are stored in the model's metadata as JSON under ``class_names``,
    beside ``task`` (the loss's: classification, binary or regression). ``opset``: the
    ONNX operator set the graph is written for.

    Raises ExportError (a ValueError) naming the first layer or step that has no
    exporter, or a preprocessing that does not fit the model's input.
    """
    opset = check_opset(opset)
    steps = list(preprocess)
    tokens = bool(model.layers) and model.layers[0].takes_tokens
    if tokens and steps:
        raise ExportError("a model that reads token ids takes no preprocessing")
    raw_shape = tuple(int(d) for d in (input_shape if input_shape is not None
                                       else default_input_shape(model, steps)))
    graph = OnnxGraph()
    graph.fresh("X")  # the input's name is taken
    x, shape = add_preprocessing(graph, steps, "X", raw_shape)
    if shape != model.in_shape:
        raise ExportError(f"the preprocessing gives samples of shape {shape}, but the model "
                          f"takes {tuple(model.in_shape)}")
    scores = export_chain(graph, model.chain, x)
    outputs = add_outputs(graph, model, scores, class_names)
    element = onnx.TensorProto.INT64 if tokens else onnx.TensorProto.FLOAT
    inputs = [helper.make_tensor_value_info("X", element, ["N", *raw_shape])]
    body = helper.make_graph(graph.nodes, "dl", inputs, outputs, initializer=graph.initializers)
    operators = [helper.make_opsetid("", opset)]
    proto = helper.make_model(body, opset_imports=operators, producer_name="dl-cli",
                              producer_version=__version__,
                              doc_string="raw features in: preprocessing, then the network "
                                         "in inference mode")
    proto.ir_version = helper.find_min_ir_version_for(operators)
    metadata = {"task": model.loss_fn.task}
    if class_names is not None:
        metadata["class_names"] = json.dumps([str(name) for name in class_names])
    helper.set_model_props(proto, metadata)
    onnx.checker.check_model(proto, full_check=True)
    return proto
