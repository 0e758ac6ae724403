"""Exporters of the feed-forward layers: each layer's inference-mode forward as ONNX nodes.

| layer | ONNX |
|---|---|
| affine | ``Flatten`` (inputs with several axes), ``Gemm`` (``MatMul`` without bias) |
| flatten | ``Flatten`` (axis 1) |
| relu, leaky_relu, elu, sigmoid, tanh | ``Relu``, ``LeakyRelu``, ``Elu``, ``Sigmoid``, ``Tanh`` |
| prelu | ``PRelu``, the slopes shaped to broadcast along their axis |
| softmax | ``Softmax`` over the last axis |
| dropout | nothing: the identity at inference |
| batchnorm | ``BatchNormalization`` with the running statistics |
| conv2d | ``Conv`` with symmetric pads |
| maxpool, avgpool | ``MaxPool``, ``AveragePool`` without padding |
"""

from __future__ import annotations

from .exporters import EXPORTERS


@EXPORTERS.register("affine")
def affine(graph, layer, x, in_shape):
    """``out = x @ W + b`` with the trailing axes of x flattened: ``Gemm(x, W, b)``."""
    if len(in_shape) > 1:
        x = graph.node("Flatten", x, axis=1)
    W = graph.constant(layer.params["W"], "W")
    if layer.bias:
        return graph.node("Gemm", x, W, graph.constant(layer.params["b"], "b"))
    return graph.node("MatMul", x, W)


@EXPORTERS.register("flatten")
def flatten(graph, layer, x, in_shape):
    """``(N, d_1, ..., d_k) → (N, d_1·...·d_k)``."""
    return graph.node("Flatten", x, axis=1)


@EXPORTERS.register("relu")
def relu(graph, layer, x, in_shape):
    return graph.node("Relu", x)


@EXPORTERS.register("leaky_relu")
def leaky_relu(graph, layer, x, in_shape):
    """``max(αx, x)``: ONNX's ``LeakyRelu`` with the same α."""
    return graph.node("LeakyRelu", x, alpha=float(layer.alpha))


@EXPORTERS.register("prelu")
def prelu(graph, layer, x, in_shape):
    """``x`` for x > 0, ``α·x`` otherwise, one α per channel of images ``(C, H, W)``,
    stored ``(C, 1, 1)`` to broadcast along axis 1, else per feature of the last axis."""
    alpha = layer.params["alpha"]
    if len(in_shape) == 3:
        alpha = alpha.reshape(-1, 1, 1)
    return graph.node("PRelu", x, graph.constant(alpha, "alpha"))


@EXPORTERS.register("elu")
def elu(graph, layer, x, in_shape):
    """``x`` for x > 0, ``α(eˣ − 1)`` otherwise."""
    return graph.node("Elu", x, alpha=float(layer.alpha))


@EXPORTERS.register("sigmoid")
def sigmoid(graph, layer, x, in_shape):
    return graph.node("Sigmoid", x)


@EXPORTERS.register("tanh")
def tanh(graph, layer, x, in_shape):
    return graph.node("Tanh", x)


@EXPORTERS.register("softmax")
def softmax(graph, layer, x, in_shape):
    """Probabilities over the last axis."""
    return graph.node("Softmax", x, axis=-1)


@EXPORTERS.register("dropout")
def dropout(graph, layer, x, in_shape):
    """Inverted dropout is the identity at inference: no node at all."""
    return x


@EXPORTERS.register("batchnorm")
def batchnorm(graph, layer, x, in_shape):
    """``γ·(x − running_mean)/√(running_var + eps) + β`` per feature or channel (axis 1),
    the layer's eval-mode forward: ``BatchNormalization`` in inference mode."""
    params, buffers = layer.params, layer.buffers
    return graph.node("BatchNormalization", x,
                      graph.constant(params["gamma"], "gamma"),
                      graph.constant(params["beta"], "beta"),
                      graph.constant(buffers["running_mean"], "running_mean"),
                      graph.constant(buffers["running_var"], "running_var"),
                      epsilon=float(layer.eps))


@EXPORTERS.register("conv2d")
def conv2d(graph, layer, x, in_shape):
    """Cross-correlation with W ``(F, C, KH, KW)`` (ONNX's layout too), stride
    ``(SH, SW)`` and ``pad`` zeros on each side: pads ``[PH, PW, PH, PW]``
    (begin of H and W, then end)."""
    (PH, PW) = layer.pad_hw
    return graph.node("Conv", x, graph.constant(layer.params["W"], "W"),
                      graph.constant(layer.params["b"], "b"),
                      kernel_shape=list(layer.kernel_hw), strides=list(layer.stride_hw),
                      pads=[PH, PW, PH, PW])


@EXPORTERS.register("maxpool")
def maxpool(graph, layer, x, in_shape):
    """Maximum over ``pool`` windows at ``stride``; no padding, and sizes floored as the
    layer's (ONNX's ``ceil_mode`` 0)."""
    return graph.node("MaxPool", x, kernel_shape=list(layer.pool_hw),
                      strides=list(layer.stride_hw))


@EXPORTERS.register("avgpool")
def avgpool(graph, layer, x, in_shape):
    """Mean over ``pool`` windows at ``stride``; no padding, so every window averages
    ``PH·PW`` pixels as the layer does."""
    return graph.node("AveragePool", x, kernel_shape=list(layer.pool_hw),
                      strides=list(layer.stride_hw))

