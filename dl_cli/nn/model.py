"""A model: a chain of registered layers, a loss and L1/L2 penalties.

```python
model = Model(layers=[{"type": "affine", "units": 64}, "relu", {"type": "affine", "units": 3}],
              in_shape=(2,), loss="softmax_cross_entropy", l2=1e-4, seed=0)
loss, grads = model.loss(X, y)      # grads keyed like model.params: "0.W", "0.b", "2.W", ...
scores = model.forward(X, train=False)
```

Parameter names are ``"<index>.<param>"``; layers inside blocks add their own path
(``"3.body.0.W"``). The optimizer, checkpoints and gradcheck all use these names.
"""

from __future__ import annotations


import numpy as np

from ..registry import LAYERS, LOSSES
from .chain import Chain
from .layer import Layer
from .losses import Loss


class Model:
    """Layers built from specs and an input shape; the regularized loss and its gradients.

    The penalty covers the parameters in each layer's ``decay`` set (weights, never
    biases or batchnorm's gamma/beta): ``R = l1·Σ|w| + (l2/2)·Σw²``, whose gradient
    ``l1·sign(w) + l2·w`` is added to the data gradient. The first layer's input is
    the data, which needs no gradient: the model sets its ``input_grad`` to False, and
    layers with an input product (affine, conv2d, rnn, lstm, ...) then skip it.

    ``path`` is the config key of ``layers`` (``"model.layers"``): a layer that cannot
    take its input is then a ShapeError that starts with its key path
    (``model.layers.2.layers.0 (affine) ...``); without it, with its position
    (``layer 2 (residual) ... body: layer 0 (affine) ...``).
    """

    def __init__(self, layers: list, in_shape, loss="softmax_cross_entropy", init="he_normal",
                 l1: float = 0.0, l2: float = 0.0, dtype="float32", seed: int = 0,
                 path: str = ""):
        self.chain = Chain([spec if isinstance(spec, Layer) else LAYERS.create(spec)
                            for spec in layers], path=path)
        self.loss_fn = loss if isinstance(loss, Loss) else LOSSES.create(loss)
        self.in_shape = tuple(in_shape)
        self.l1, self.l2 = float(l1), float(l2)
        self.dtype = np.dtype(dtype)
        self.chain.configure(self.dtype.type, init)
        self.out_shape = self.chain.build(self.in_shape, np.random.default_rng(seed))
        if self.layers:  # the data need no gradient: the layer reading them skips dx
            self.layers[0].input_grad = False
        self.params = self.chain.named("params")
        self.buffers = self.chain.named("buffers")
        self.decay = self.chain.named_decay()
        self.drawing = [layer for _, layer in self.chain.walk("") if layer.rng is not None]
        # (name, layer, key) of every parameter, in the order of ``params``: where
        # ``backward`` collects the gradients each step without walking the layers again
        self.param_slots = [(f"{path}.{key}" if path else key, layer, key)
                            for path, layer in self.chain.walk("") for key in layer.params]

    @property
    def layers(self) -> list[Layer]:
        return self.chain.layers

    def forward(self, x: np.ndarray, train: bool = False,
                keys: np.ndarray | None = None) -> np.ndarray:
        """Scores for ``x``, which is first cast to the model's dtype (integer features
        too, so that no float64 product creeps into a float32 model), except the token
        ids an embedding reads. ``keys`` (N,) name the samples for the layers that draw
        (``draws.sample_keys``); without them, those layers draw from their generators."""
        if x.dtype != self.dtype and not self.layers[0].takes_tokens:
            x = x.astype(self.dtype)
        for layer in self.drawing:
            layer.sample_keys = keys
        return self.chain.forward(x, train)

    def backward(self, dscores: np.ndarray) -> dict[str, np.ndarray]:
        """Backpropagate ``dscores`` and return the gradients of every parameter."""
        self.chain.backward(dscores)
        return {name: layer.grads[key] for name, layer, key in self.param_slots}

    def penalty(self) -> float:
        total = 0.0
        for name in self.decay:
            w = self.params[name]
            if self.l1:
                total += self.l1 * float(np.abs(w).sum())
            if self.l2:
                total += 0.5 * self.l2 * float(np.vdot(w, w))
        return total

    def loss(self, x: np.ndarray, y: np.ndarray, train: bool = True,
             keys: np.ndarray | None = None):
        """Data loss plus penalty, and the gradients of every parameter (CS231n ``loss``)."""
        scores = self.forward(x, train, keys)
        data_loss, dscores = self.loss_fn(scores, y)
        return self.regularized(data_loss, self.backward(dscores))

    def regularized(self, data_loss: float, grads: dict[str, np.ndarray]):
        """``data_loss`` plus the penalty, and ``grads`` plus the penalty's gradient."""
        for name in self.decay:
            w = self.params[name]
            if self.l1:
                grads[name] = grads[name] + self.l1 * np.sign(w)
            if self.l2:
                grads[name] = grads[name] + self.l2 * w
        return data_loss + self.penalty(), grads

    def predict(self, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        return self.loss_fn.predict(self.scores(x, batch_size))

    def scores(self, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Eval-mode scores in batches, so large splits fit in memory."""
        parts = [self.forward(x[i:i + batch_size], train=False)
                 for i in range(0, len(x), batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, *self.out_shape), self.dtype)

    def rngs(self) -> dict[str, np.random.Generator]:
        """The run-time generators of layers that draw (dropout masks) when no sample
        keys are given, by layer path."""
        return {path: layer.rng for path, layer in self.chain.walk("") if layer.rng is not None}

    @property
    def wants_batch_parts(self) -> bool:
        """Whether a layer of the model, inside blocks too, wants its batches cut into
        parts over the cores (``Layer.wants_batch_parts``)."""
        return any(layer.wants_batch_parts for _, layer in self.chain.walk(""))

    def num_params(self) -> int:
        return sum(p.size for p in self.params.values())

    def summary(self) -> list[dict]:
        """One row per top-level layer: name, output shape, parameters, multiply-adds."""
        rows = []
        for i, (layer, (in_shape, out_shape)) in enumerate(zip(self.layers, self.chain.shapes)):
            rows.append({
                "index": i,
                "layer": layer.registered_name,
                "output": out_shape,
                "params": sum(p.size for p in layer.named("params").values()),
                "macs": layer.macs(in_shape, out_shape),
            })
        return rows

    def config(self) -> list[dict]:
        return self.chain.config()
