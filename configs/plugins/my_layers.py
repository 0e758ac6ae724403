"""A layer of one's own: Swish, ``x · σ(βx)``, with β learned per feature (learned_swish).

Named in a config as ``plugins: [plugins/my_layers.py]`` (a path relative to the
config), then used like any built-in layer: ``{type: learned_swish}``.

Forward, with ``s = σ(βx)``:   ``out = x · s``
Backward, as ``σ' = σ(1 − σ)``:
    ``dx = dout · (s + βx · s(1 − s))``
    ``dβ = Σ_batch dout · x² · s(1 − s)``   (summed over every axis but the features)
"""

import numpy as np

from dl_cli.nn import Layer
from dl_cli.nn.layer import Example
from dl_cli.registry import LAYERS


def sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # σ(z) without overflow


@LAYERS.register("learned_swish")
class LearnedSwish(Layer):
    """``x · σ(βx)``, a smooth ReLU; β (one per feature, last axis) starts at ``beta``."""

    # small inputs on which dl gradcheck and the test suite check forward and backward
    examples = (Example("learned_swish", (5,)),
                Example({"type": "learned_swish", "beta": 0.5}, (3, 4)))

    def __init__(self, beta: float = 1.0):  # hyperparameters only, each stored by name
        super().__init__()
        if not isinstance(beta, (int, float)) or isinstance(beta, bool):
            raise ValueError(f"beta must be a number, got {beta!r}")
        self.beta = float(beta)

    def build(self, in_shape, rng):  # parameters, once the input shape is known
        self.params = {"beta": np.full((in_shape[-1],), self.beta, dtype=self.dtype)}
        return tuple(in_shape)

    def forward(self, x, train=True):
        s = sigmoid(self.params["beta"] * x)
        self.cache = (x, s)  # what backward needs, overwritten at every call
        return x * s

    def backward(self, dout):
        x, s = self.cache
        slope = s * (1 - s)
        axes = tuple(range(x.ndim - 1))
        self.grads = {"beta": (dout * x * x * slope).sum(axis=axes)}  # assigned, not added
        return dout * (s + self.params["beta"] * x * slope)


try:  # an ONNX exporter, so that dl export takes models with the layer (the onnx extra)
    from dl_cli.export import EXPORTERS
except ImportError:
    EXPORTERS = None

if EXPORTERS is not None:
    @EXPORTERS.register("learned_swish")
    def export_learned_swish(graph, layer, x, in_shape):
        beta = graph.constant(layer.params["beta"], "beta")
        return graph.node("Mul", x, graph.node("Sigmoid", graph.node("Mul", x, beta)))
