"""Inverted dropout: a cheap approximation of training an ensemble of thinned networks."""

from __future__ import annotations

import numpy as np

from ..checks import FRACTION, require
from ..draws import SampleDraws
from ..registry import LAYERS
from .layer import Example, Layer


@LAYERS.register("dropout")
class Dropout(Layer):
    """Zero each unit with probability ``drop_rate`` at training time; identity at eval.

    Shapes: x, out and dout any ``(N, ...)``.
    Forward (train): ``keep_prob = 1 − drop_rate``, ``mask ~ Bernoulli(keep_prob)`` per unit,
    ``out = x ⊙ mask / keep_prob``. Scaling the kept units up at training time keeps the
    expected activation equal to ``x``, so nothing changes at test time (equivalently, the
    weight-scaling rule: multiply by keep_prob at test time instead).
    Backward: ``dx = dout ⊙ mask / keep_prob``, the same scaled mask.
    The mask of each sample is drawn per sample (``draws.SampleDraws`` on the layer's own
    ``stream``, seeded in ``build``) under that sample's key: the model's ``sample_keys``
    while training (the sample's index and epoch, so its mask is the same in a batch of one
    process and in a worker's part of it), else keys from the layer's generator
    (``self.rng``), which gradcheck restores to replay a mask.
    Typical drop rates: 0.5 for hidden units, 0.2 for inputs; mostly after affine layers.
    """

    examples = (
        Example("dropout", (6,)),
        Example({"type": "dropout", "drop_rate": 0.2}, (2, 3, 3)),
    )

    def __init__(self, drop_rate: float = 0.5):
        super().__init__()
        self.drop_rate = require("drop_rate", drop_rate, FRACTION)

    def build(self, in_shape, rng):
        self.stream = int(rng.integers(2**63))
        self.rng = np.random.default_rng(self.stream)
        return tuple(in_shape)

    def forward(self, x, train=True):
        if not train or self.drop_rate == 0:
            self.cache = None
            return x
        keep_prob = 1.0 - self.drop_rate
        keys = self.sample_keys
        if keys is None:
            keys = self.rng.integers(2**63, size=len(x), dtype=np.uint64)
        keep = SampleDraws(self.stream, keys).uniform(x.shape[1:]) < keep_prob
        scaled_mask = keep.astype(x.dtype) * x.dtype.type(1.0 / keep_prob)
        self.cache = scaled_mask
        return x * scaled_mask

    def backward(self, dout):
        scaled_mask = self.cache
        return dout if scaled_mask is None else dout * scaled_mask
