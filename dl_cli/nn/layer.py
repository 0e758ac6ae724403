"""The layer contract every registered layer follows.

```python
layer = LAYERS.create({"type": "affine", "units": 10})   # hyperparameters only
out_shape = layer.build(in_shape, rng)                   # allocates params; no batch axis
out = layer.forward(x, train=True)                       # overwrites self.cache
dx = layer.backward(dout)                                # assigns self.grads (same keys as params)
layer.params["W"], layer.grads["W"], layer.buffers, layer.decay, layer.config()
```

Hyperparameters are the ``__init__`` arguments, each stored under its own name, so
``config()`` can read them back and ``LAYERS.create(layer.config())`` rebuilds the layer.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from ..registry import INITIALIZERS


class ShapeError(ValueError):
    """A layer cannot take the input shape it was given.

    ``key`` is the config key path of the layer (``model.layers.2.layers.0``), set by the
    chain that named it: the blocks and chains around it pass such an error on unchanged.
    """

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class Example:
    """A small input on which a layer is shown, tested and gradient-checked.

    ``tokens > 0`` asks for integer inputs in ``[0, tokens)`` (embeddings) instead of
    standard normal ones.
    """

    spec: str | dict
    in_shape: tuple[int, ...]
    tokens: int = 0

    def input(self, batch: int, rng: np.random.Generator) -> np.ndarray:
        shape = (batch, *self.in_shape)
        if self.tokens:
            return rng.integers(0, self.tokens, size=shape)
        return rng.standard_normal(shape)


class Layer:
    """Base class: empty ``params``/``grads``/``buffers``, no decay, identity build.

    Subclasses set ``self.params`` in ``build``, cache what ``backward`` needs in
    ``forward`` and assign ``self.grads`` in ``backward``. Parameters whose names are in
    ``decay`` are under L1/L2 penalties and weight decay (weights, never biases or
    batchnorm's gamma/beta). A layer whose elementwise work weighs as much as its
    products (conv2d) sets ``wants_batch_parts``: a model holding it trains inside
    ``threads.computing_on``, where the layers that call ``threads.in_parts`` (conv2d,
    conv2d_transpose, maxpool, relu, batchnorm) cut each batch into parts on threads.
    """

    registered_name = "layer"
    examples: tuple[Example, ...] = ()  # every registered layer lists at least one
    dtype = np.float64  # set per model by ``configure``; float64 for gradcheck
    default_init = "he_normal"  # the model-wide initializer, unless the layer names one
    takes_tokens = False  # reads integer ids (embedding): a model never converts its input
    wants_batch_parts = False  # a model with this layer cuts its batches over the cores

    def __init__(self):
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self.decay: set[str] = set()
        self.cache = None
        self.rng: np.random.Generator | None = None  # only layers that draw at run time
        # The keys of the batch's samples (draws.sample_keys), set by the model before a
        # training forward: a layer that draws draws per sample, so that a sample's draws
        # do not depend on the batch (or the part of a batch) it comes in.
        self.sample_keys: np.ndarray | None = None

    # -- configuration -------------------------------------------------------------
    def config(self) -> dict:
        """``{"type": name, **hyperparameters}``: the spec that rebuilds this layer."""
        names = list(inspect.signature(type(self).__init__).parameters)[1:]
        return {"type": self.registered_name, **{name: getattr(self, name) for name in names}}

    def configure(self, dtype, default_init) -> None:
        """Set the dtype and model-wide initializer before ``build``."""
        self.dtype = np.dtype(dtype).type
        self.default_init = default_init

    def children(self) -> list[tuple[str, "Layer"]]:
        """Sub-layers with their name prefixes (blocks only)."""
        return []

    def place(self, key: str) -> None:
        """Take the config key path of this layer (``model.layers.3``); blocks hand it on
        to their chains, which name their layers by it in build errors."""

    def walk(self, path: str) -> Iterator[tuple[str, "Layer"]]:
        """This layer and every sub-layer, each with its dotted path."""
        yield path, self
        for name, child in self.children():
            yield from child.walk(f"{path}.{name}" if path else name)

    def named(self, kind: str = "params", prefix: str = "") -> dict[str, np.ndarray]:
        """Every ``params``/``grads``/``buffers`` entry of this layer and its sub-layers,
        keyed by dotted path: ``{"W": ...}`` or, in a block, ``{"body.0.W": ...}``."""
        out = {}
        for path, layer in self.walk(prefix):
            for key, value in getattr(layer, kind).items():
                out[f"{path}.{key}" if path else key] = value
        return out

    def named_decay(self, prefix: str = "") -> set[str]:
        """Dotted names of the parameters under weight decay."""
        return {f"{path}.{key}" if path else key
                for path, layer in self.walk(prefix) for key in layer.decay}

    # -- the contract ----------------------------------------------------------------
    def build(self, in_shape: tuple[int, ...], rng: np.random.Generator) -> tuple[int, ...]:
        return tuple(in_shape)

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def macs(self, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> int:
        """Multiply-adds for one sample (0 for layers without products)."""
        return 0

    # -- helpers for build -----------------------------------------------------------
    def new_weight(self, shape: tuple[int, ...], rng: np.random.Generator, init=None) -> np.ndarray:
        """A weight drawn from ``init`` (or the model-wide default), in the layer dtype."""
        initializer = INITIALIZERS.create(init if init is not None else self.default_init)
        return np.ascontiguousarray(initializer(shape, rng), dtype=self.dtype)

    def new_zeros(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.zeros(shape, dtype=self.dtype)

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "type")
        return f"{type(self).__name__}({options})"
