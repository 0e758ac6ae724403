"""Exporters of the sequence layers: embedding, temporal_affine, rnn and lstm.

Our sequences are batch-major ``(N, T, D)``; ONNX's ``RNN`` and ``LSTM`` read them
time-major ``(T, N, D)`` and keep their weights per gate as rows,
``W (directions, G·H, D)``, where ours are columns, ``Wx (D, G·H)``. So the input is
transposed before the node and the output after it, and the weights are transposed:

    W = Wxᵀ[None]     R = Whᵀ[None]     B = [b, 0][None]   (ONNX adds Wb and Rb)

The LSTM's gates differ in order too: ours are i, f, o, g (input, forget, output,
block input), ONNX's are i, o, f, c, so the H-wide blocks are reordered (0, 2, 1, 3).
"""

from __future__ import annotations

import numpy as np

from .exporters import EXPORTERS

ONNX_GATE_ORDER = [0, 2, 1, 3]  # ONNX's gate k (i, o, f, c) is our gate ONNX_GATE_ORDER[k]


@EXPORTERS.register("embedding")
def embedding(graph, layer, x, in_shape):
    """Row ``x[n, t]`` of W for every token: ``Gather(W, x)`` along axis 0, x int64."""
    return graph.node("Gather", graph.constant(layer.params["W"], "W"), x, axis=0)


@EXPORTERS.register("temporal_affine")
def temporal_affine(graph, layer, x, in_shape):
    """``out[:, t] = x[:, t] @ W + b``: ``MatMul`` of ``(N, T, D)`` with W, then ``Add``."""
    product = graph.node("MatMul", x, graph.constant(layer.params["W"], "W"))
    return graph.node("Add", product, graph.constant(layer.params["b"], "b"))


def gate_blocks(weight: np.ndarray, order: list[int]) -> np.ndarray:
    """The H-wide column blocks of ``weight (rows, G·H)`` in a new order: ``order[k]``
    is the block that goes to place k."""
    rows, width = weight.shape
    return weight.reshape(rows, len(order), width // len(order))[:, order].reshape(rows, width)


def initial_state(graph, layer, name: str, x: str) -> str:
    """``""`` (ONNX's zero state) or the learned state ``(H,)`` expanded to every sample
    of the batch, ``(1, N, H)``."""
    if layer.initial_state != "learned":
        return ""
    state = graph.constant(layer.params[name].reshape(1, 1, -1), name)
    shape = graph.node("Concat", graph.constant([1], "one"), graph.batch_size(x),
                       graph.constant([layer.hidden], "hidden"), axis=0)
    return graph.node("Expand", state, shape)


def recurrent(graph, layer, x, op: str, order: list[int], states: list[str]) -> str:
    """The ``op`` node (``RNN`` or ``LSTM``) between the transposes, weights in ONNX's
    layout and gate ``order``; every ``h_t`` as ``(N, T, H)``, or the last ``(N, H)``."""
    Wx, Wh, b = (gate_blocks(layer.params[k].reshape(-1, len(order) * layer.hidden), order)
                 for k in ("Wx", "Wh", "b"))
    W = graph.constant(Wx.T[None], "W")
    R = graph.constant(Wh.T[None], "R")
    B = graph.constant(np.concatenate([b, np.zeros_like(b)], axis=1), "B")
    time_major = graph.node("Transpose", x, perm=[1, 0, 2])
    initial = [initial_state(graph, layer, name, x) for name in states]
    every_h, last_h = graph.node(op, time_major, W, R, B, "", *initial, outputs=2,
                                 hidden_size=layer.hidden)
    if layer.return_sequences:  # Y (T, 1, N, H)
        every_h = graph.node("Squeeze", every_h, graph.constant([1], "directions"))
        return graph.node("Transpose", every_h, perm=[1, 0, 2])
    return graph.node("Squeeze", last_h, graph.constant([0], "directions"))  # Y_h (1, N, H)


@EXPORTERS.register("rnn")
def rnn(graph, layer, x, in_shape):
    """``h_t = tanh(x_t Wx + h_{t−1} Wh + b)``: ONNX's ``RNN`` (tanh is its default)."""
    return recurrent(graph, layer, x, "RNN", [0], ["h0"])


@EXPORTERS.register("lstm")
def lstm(graph, layer, x, in_shape):
    """ONNX's ``LSTM`` (σ for the gates, tanh for the block input and the cell output,
    its defaults), gates reordered from i, f, o, g to i, o, f, c."""
    return recurrent(graph, layer, x, "LSTM", ONNX_GATE_ORDER, ["h0", "c0"])
