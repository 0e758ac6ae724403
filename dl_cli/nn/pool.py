"""Max and average pooling over ``pool`` windows of each channel.

Both loop over the ``PH·PW`` offsets of a window, never over positions: the values at
offset ``(u, v)`` of every window form one strided slice of the input,
``x[:, :, u::SH, v::SW]`` (cut to ``Ho × Wo``). Elementwise maximum or sum over these
slices was measured faster than reshaping into windows and reducing.
When the windows tile the input (stride equal to pool), the input gradient is the
reshape ``(N, C, Ho, PH, Wo, PW)`` whose offset slices are written once each; when
windows overlap or leave gaps, each offset's share is added onto a zeroed gradient.
"""

from __future__ import annotations

import numpy as np

from ..registry import LAYERS
from .conv import Pair, as_pair, image_shape, output_length
from .layer import Example, Layer


class Pool2D(Layer):
    """What max and average pooling share: options, output shape, window slices.

    Shapes: x ``(N, C, H, W)``; out ``(N, C, Ho, Wo)`` with ``Ho = (H − PH)/SH + 1`` and
    ``Wo = (W − PW)/SW + 1`` whole numbers. ``pool`` and ``stride`` are an int or a pair
    ``[height, width]``; ``stride=None`` means equal to ``pool`` (windows that tile).
    No parameters.
    """

    def __init__(self, pool=2, stride=None):
        super().__init__()
        self.pool = pool
        self.stride = stride
        self.pool_hw = as_pair("pool", pool, 1)
        self.stride_hw = self.pool_hw if stride is None else as_pair("stride", stride, 1)

    def output_hw(self, H: int, W: int) -> Pair:
        (PH, PW), (SH, SW) = self.pool_hw, self.stride_hw
        return (output_length("height", H, "pool", PH, SH),
                output_length("width", W, "pool", PW, SW))

    def build(self, in_shape, rng):
        C, H, W = image_shape(self.registered_name, in_shape)
        return (C, *self.output_hw(H, W))

    @property
    def tiles(self) -> bool:
        """Windows neither overlap nor leave gaps (with a stride that fits the input)."""
        return self.stride_hw == self.pool_hw

    def offsets(self) -> list[Pair]:
        """The ``(u, v)`` positions inside a window, row by row."""
        PH, PW = self.pool_hw
        return [(u, v) for u in range(PH) for v in range(PW)]

    def window_slice(self, x: np.ndarray, u: int, v: int, out_hw: Pair) -> np.ndarray:
        """The view of x at offset ``(u, v)`` of every window: ``(N, C, Ho, Wo)``."""
        (SH, SW), (Ho, Wo) = self.stride_hw, out_hw
        return x[:, :, u:u + SH * Ho:SH, v:v + SW * Wo:SW]

    def empty_windows(self, x_shape: tuple[int, ...], out_hw: Pair, dtype) -> np.ndarray:
        """An unfilled input gradient seen as tiling windows ``(N, C, Ho, PH, Wo, PW)``:
        its ``[:, :, :, u, :, v]`` is the offset-``(u, v)`` slice of the ``(N, C, H, W)``
        reshape."""
        N, C, _, _ = x_shape
        (PH, PW), (Ho, Wo) = self.pool_hw, out_hw
        return np.empty((N, C, Ho, PH, Wo, PW), dtype=dtype)


@LAYERS.register("maxpool")
class MaxPool(Pool2D):
    """Maximum over each window: ``out[n, c, i, j] = max_{u,v} x[n, c, SH·i + u, SW·j + v]``.

    Backward routes ``dout`` to the position of the maximum, zeros elsewhere; on ties
    the first maximum (row by row) takes it all, so exactly one position per window
    gets the gradient. Where windows overlap, a pixel collects from every window it wins.
    """

    examples = (
        Example("maxpool", (2, 4, 6)),
        Example({"type": "maxpool", "pool": 3, "stride": 2}, (2, 5, 7)),
        Example({"type": "maxpool", "pool": [2, 3], "stride": [2, 1]}, (1, 4, 5)),
    )

    def forward(self, x, train=True):
        out_hw = self.output_hw(*x.shape[2:])
        (u0, v0), *rest = self.offsets()
        out = self.window_slice(x, u0, v0, out_hw).copy()
        for u, v in rest:
            np.maximum(out, self.window_slice(x, u, v, out_hw), out=out)
        self.cache = (x, out)
        return out

    def backward(self, dout):
        x, out = self.cache
        out_hw = out.shape[2:]
        unrouted = np.ones(out.shape, dtype=bool)  # windows whose maximum is still to find
        if self.tiles:
            dx = self.empty_windows(x.shape, out_hw, dout.dtype)
        else:
            dx = np.zeros(x.shape, dtype=dout.dtype)
        for u, v in self.offsets():
            is_max = (self.window_slice(x, u, v, out_hw) == out) & unrouted
            unrouted &= ~is_max
            if self.tiles:
                dx[:, :, :, u, :, v] = is_max * dout
            else:
                target = self.window_slice(dx, u, v, out_hw)
                target += is_max * dout
        return dx.reshape(x.shape)


@LAYERS.register("avgpool")
class AvgPool(Pool2D):
    """Mean over each window: ``out[n, c, i, j] = Σ_{u,v} x[n, c, SH·i+u, SW·j+v] / (PH·PW)``.

    Backward spreads ``dout/(PH·PW)`` equally over the window; where windows overlap, a
    pixel collects a share from each.
    """

    examples = (
        Example("avgpool", (2, 4, 6)),
        Example({"type": "avgpool", "pool": 3, "stride": 2}, (2, 5, 7)),
        Example({"type": "avgpool", "pool": [2, 3], "stride": [2, 1]}, (1, 4, 5)),
    )

    def forward(self, x, train=True):
        out_hw = self.output_hw(*x.shape[2:])
        (u0, v0), *rest = self.offsets()
        out = self.window_slice(x, u0, v0, out_hw).copy()
        for u, v in rest:
            out += self.window_slice(x, u, v, out_hw)
        out *= 1.0 / len(self.offsets())
        self.cache = x.shape
        return out

    def backward(self, dout):
        x_shape = self.cache
        out_hw = dout.shape[2:]
        share = dout * (1.0 / len(self.offsets()))
        if self.tiles:
            dx = self.empty_windows(x_shape, out_hw, dout.dtype)
            for u, v in self.offsets():
                dx[:, :, :, u, :, v] = share
            return dx.reshape(x_shape)
        dx = np.zeros(x_shape, dtype=dout.dtype)
        for u, v in self.offsets():
            target = self.window_slice(dx, u, v, out_hw)
            target += share
        return dx
