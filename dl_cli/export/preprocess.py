"""Exporters of the fitted preprocessing steps (``dl_cli/data/preprocess.py``), so that
an exported graph reads raw features.

Each step's ``transform`` with its fitted statistics as float32 constants; the
statistics keep the batch axis of length 1 they were fitted with (``(1, D)`` per
feature, ``(1, C, 1, 1)`` per channel), which broadcasts as ``transform`` does:

| step | ONNX |
|---|---|
| center | ``Sub(x, μ)`` |
| standardize | ``Div(Sub(x, μ), σ)`` |
| minmax | ``Div(Sub(x, min), max − min)`` |
| pca | ``Flatten``, ``Sub(x, μ)``, ``MatMul(·, U[:, :k])`` |
| pca_whiten | pca, then ``Div(·, √(λ + eps))`` |

An exporter is registered under the step's name and is called as
``exporter(graph, step, x, in_shape) -> (output name, output shape)``; a step without
one, or not fitted, is refused naming ``data.preprocess.<i>``.
"""

from __future__ import annotations

import math

import numpy as np

from ..registry import Registry
from .graph import ExportError

PREPROCESS_EXPORTERS = Registry("ONNX preprocessing exporter")


def statistics(step, *names: str) -> list[np.ndarray]:
    """The fitted arrays ``names`` of ``step``; an ExportError when it was never fitted."""
    missing = [name for name in names if not hasattr(step, name)]
    if missing:
        raise ExportError(f"'{step.registered_name}' is not fitted (it has no "
                          f"{', '.join(missing)}): fit it on the training split first")
    return [np.asarray(getattr(step, name)) for name in names]


def check_broadcast(step, statistic: np.ndarray, in_shape: tuple[int, ...]) -> None:
    """A per-feature or per-channel statistic must fit the samples it is applied to."""
    fitted = statistic.shape[1:]
    try:
        fits = np.broadcast_shapes(fitted, in_shape) == tuple(in_shape)
    except ValueError:
        fits = False
    if not fits:
        raise ExportError(f"'{step.registered_name}' was fitted on samples of shape "
                          f"{fitted}, which do not fit inputs of shape {tuple(in_shape)}")


def shift_and_scale(graph, step, x, in_shape, shift: str, scale: str | None):
    """``(x − shift) / scale`` (or ``x − shift``) with the step's statistics."""
    names = [shift] + ([scale] if scale else [])
    arrays = statistics(step, *names)
    for array in arrays:
        check_broadcast(step, array, in_shape)
    out = graph.node("Sub", x, graph.constant(arrays[0], shift))
    if scale:
        out = graph.node("Div", out, graph.constant(arrays[1], scale))
    return out, tuple(in_shape)


@PREPROCESS_EXPORTERS.register("center")
def center(graph, step, x, in_shape):
    """``x − μ``."""
    return shift_and_scale(graph, step, x, in_shape, "mean", None)


@PREPROCESS_EXPORTERS.register("standardize")
def standardize(graph, step, x, in_shape):
    """``(x − μ) / σ``."""
    return shift_and_scale(graph, step, x, in_shape, "mean", "std")


@PREPROCESS_EXPORTERS.register("minmax")
def minmax(graph, step, x, in_shape):
    """``(x − min) / (max − min)``."""
    return shift_and_scale(graph, step, x, in_shape, "low", "span")


@PREPROCESS_EXPORTERS.register("pca")
def pca(graph, step, x, in_shape):
    """``(x − μ) @ U[:, :k]`` on samples flattened to D features: ``(N, k)``."""
    mean, basis = statistics(step, "mean", "basis")
    features = math.prod(in_shape)
    if basis.shape[0] != features:
        raise ExportError(f"'{step.registered_name}' was fitted on {basis.shape[0]} features, "
                          f"the inputs have {features} ({tuple(in_shape)})")
    if len(in_shape) > 1:
        x = graph.node("Flatten", x, axis=1)
    centred = graph.node("Sub", x, graph.constant(mean, "mean"))
    return graph.node("MatMul", centred, graph.constant(basis, "basis")), (basis.shape[1],)


@PREPROCESS_EXPORTERS.register("pca_whiten")
def pca_whiten(graph, step, x, in_shape):
    """PCA, then each component divided by ``√(λ_i + eps)`` (computed in float64, as
    ``transform`` does, then stored as float32)."""
    projected, out_shape = pca(graph, step, x, in_shape)
    (variance,) = statistics(step, "variance")
    scale = np.sqrt(variance + step.eps)
    return graph.node("Div", projected, graph.constant(scale, "scale")), out_shape
