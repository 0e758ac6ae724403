"""A chain of layers applied one after the other: the body of a model or a block."""

from __future__ import annotations

import numpy as np

from .layer import Layer, ShapeError


def format_shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"


class Chain(Layer):
    """``out = layers[-1](... layers[1](layers[0](x)))``; backward runs in reverse.

    Not registered: models and blocks hold chains; configs name the layers inside.
    A layer that cannot take its input shape fails ``build`` with its type and input
    shape in the message, named by its position (``layer 3 (maxpool) ...``), or, once
    the chain has a key ``path`` (``"model.layers"``), by its config key path
    (``model.layers.3 (maxpool) ...``), inside blocks too
    (``model.layers.3.layers.0 (affine) ...``): the key the config validation names.
    """

    def __init__(self, layers: list[Layer], path: str = ""):
        super().__init__()
        self.layers = list(layers)
        self.shapes: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
        self.observer = None  # observer(index, out, train) sees each output (diagnostics)
        self.path = ""  # the config key of the list of layers, once placed
        if path:
            self.place(path)

    def config(self) -> list[dict]:
        return [layer.config() for layer in self.layers]

    def configure(self, dtype, default_init) -> None:
        super().configure(dtype, default_init)
        for layer in self.layers:
            layer.configure(dtype, default_init)

    def children(self):
        return [(str(i), layer) for i, layer in enumerate(self.layers)]

    def place(self, path: str) -> None:
        """Name layer ``i`` by its key ``<path>.<i>`` in build errors, and hand that key
        on to it (a block passes it to its own chains)."""
        self.path = path
        for i, layer in enumerate(self.layers):
            layer.place(f"{path}.{i}")

    def build(self, in_shape, rng):
        shape = tuple(in_shape)
        self.shapes = []
        for i, layer in enumerate(self.layers):
            try:
                out_shape = tuple(layer.build(shape, rng))
            except ShapeError as error:
                if error.key is not None:  # named already, by a chain inside a block
                    raise
                key = f"{self.path}.{i}" if self.path else None
                raise ShapeError(
                    f"{key or 'layer ' + str(i)} ({layer.registered_name}) with input shape "
                    f"{format_shape(shape)}: {error}", key=key
                ) from None
            self.shapes.append((shape, out_shape))
            shape = out_shape
        return shape

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        for i, layer in enumerate(self.layers):
            x = layer.forward(x, train)
            if self.observer is not None:
                self.observer(i, x, train)
        return x

    def backward(self, dout: np.ndarray) -> np.ndarray:
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def macs(self, in_shape, out_shape) -> int:
        return sum(layer.macs(i, o) for layer, (i, o) in zip(self.layers, self.shapes))
