"""Max and average pooling over ``pool`` windows of each channel.

Both loop over the offsets inside a window, never over positions. Forward, maximum and
sum are separable: first over the ``PH`` rows of every window, each a slice of whole
input rows ``x[:, :, u::SH]``, then over the ``PW`` columns of that, ``[..., v::SW]``
(both cut to the output size), which reads memory in longer runs than the ``PH·PW``
offset slices ``x[:, :, u::SH, v::SW]``, strided along both axes. Training max pooling
and every backward go through the offset slices.
When the windows tile the input exactly (stride equal to pool, dividing the size), the
input gradient is the reshape ``(N, C, Ho, PH, Wo, PW)`` whose offset slices are written
once each; when windows overlap, leave gaps or leave out the last rows or columns, each
offset's share is added onto a zeroed gradient.
"""

from __future__ import annotations

import numpy as np

from .. import threads
from ..registry import LAYERS
from .conv import Pair, as_pair, image_shape, output_length
from .layer import Example, Layer


def combined(combine, parts: list[np.ndarray]) -> np.ndarray:
    """``combine(...combine(parts[0], parts[1])..., parts[-1])`` in a new array."""
    first, *rest = parts
    if not rest:
        return first.copy()
    out = combine(first, rest[0])
    for part in rest[1:]:
        combine(out, part, out=out)
    return out


class Pool2D(Layer):
    """What max and average pooling share: options, output shape, window slices.

    Shapes: x ``(N, C, H, W)``; out ``(N, C, Ho, Wo)`` with ``Ho = ⌊(H − PH)/SH⌋ + 1`` and
    ``Wo = ⌊(W − PW)/SW⌋ + 1``: the last rows and columns no window reaches get zero
    gradient. ``pool`` and ``stride`` are an int or a pair ``[height, width]``;
    ``stride=None`` means equal to ``pool`` (windows that tile).
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
        """Windows neither overlap nor leave gaps between them."""
        return self.stride_hw == self.pool_hw

    def reduce_windows(self, x: np.ndarray, out_hw: Pair, combine) -> np.ndarray:
        """``combine`` (``np.maximum`` or ``np.add``) over every window, in a new
        ``(N, C, Ho, Wo)`` array: over the window rows, then over the window columns."""
        (PH, PW), (SH, SW), (Ho, Wo) = self.pool_hw, self.stride_hw, out_hw
        rows = combined(combine, [x[:, :, u:u + SH * Ho:SH] for u in range(PH)])
        return combined(combine, [rows[..., v:v + SW * Wo:SW] for v in range(PW)])

    def offsets(self) -> list[Pair]:
        """The ``(u, v)`` positions inside a window, row by row."""
        PH, PW = self.pool_hw
        return [(u, v) for u in range(PH) for v in range(PW)]

    def window_slice(self, x: np.ndarray, u: int, v: int, out_hw: Pair) -> np.ndarray:
        """The view of x at offset ``(u, v)`` of every window: ``(N, C, Ho, Wo)``."""
        (SH, SW), (Ho, Wo) = self.stride_hw, out_hw
        return x[:, :, u:u + SH * Ho:SH, v:v + SW * Wo:SW]

    def new_input_grad(self, x_shape: tuple[int, ...], out_hw: Pair, dtype) -> np.ndarray:
        """The input gradient to fill with ``route``. Windows that tile the whole input:
        unfilled, seen as ``(N, C, Ho, PH, Wo, PW)``, whose ``[:, :, :, u, :, v]`` is the
        offset-``(u, v)`` slice of the ``(N, C, H, W)`` reshape (each entry is written
        once). Otherwise zeros ``(N, C, H, W)`` (entries collect from several windows,
        or none)."""
        N, C, H, W = x_shape
        (PH, PW), (Ho, Wo) = self.pool_hw, out_hw
        if not self.tiles or (Ho * PH, Wo * PW) != (H, W):
            return np.zeros(x_shape, dtype=dtype)
        return np.empty((N, C, Ho, PH, Wo, PW), dtype=dtype)

    def route(self, dx: np.ndarray, u: int, v: int, share: np.ndarray, out_hw: Pair) -> None:
        """Write (windows tiling the input, ``dx`` seen as 6-D) or add (others) ``share``
        at offset ``(u, v)`` of every window of ``dx`` from ``new_input_grad``."""
        if dx.ndim == 6:
            dx[:, :, :, u, :, v] = share
        else:
            target = self.window_slice(dx, u, v, out_hw)
            target += share


@LAYERS.register("maxpool")
class MaxPool(Pool2D):
    """Maximum over each window: ``out[n, c, i, j] = max_{u,v} x[n, c, SH·i + u, SW·j + v]``.

    Backward routes ``dout`` to the position of the maximum, zeros elsewhere; on ties
    the first maximum (row by row) takes it all, so exactly one position per window
    gets the gradient. Where windows overlap, a pixel collects from every window it wins.

    No argmax: training forward goes through the offsets row by row, keeping a running
    maximum and, for every offset after the first, the mask of windows where it takes
    over (is strictly greater than all earlier offsets, so a tie stays with the earlier).
    A window's maximum sits at the last offset that took over there, or at the first
    offset. Backward goes through the offsets from last to first: each takes
    ``share = takes_over · remaining`` and leaves ``remaining − share`` (exactly 0 where
    it took); the first offset takes what remains. The comparisons are made while the
    input is read anyway, and backward never reads the input again.

    Eval forward takes the cheaper separable maximum (``reduce_windows``) and finds no
    masks: it keeps a reference to its input instead (no copy), and a backward after it,
    rare (``Model.loss(..., train=False)``), first finds the masks from that input as the
    training forward would. Every forward overwrites the whole cache, so a backward never
    sees an earlier batch's masks. Inside ``threads.computing_on`` the masks and the
    gradient are found for parts of the batch at once, on threads.

    Reference: ``reference.pool_forward(x, pool, stride, np.max)`` and
    ``reference.maxpool_backward``, plain loops over the windows.
    """

    examples = (
        Example("maxpool", (2, 4, 6)),
        Example({"type": "maxpool", "pool": 3, "stride": 2}, (2, 5, 7)),
        Example({"type": "maxpool", "pool": [2, 3], "stride": [2, 1]}, (1, 4, 5)),
        Example("maxpool", (2, 5, 7)),
    )

    def forward(self, x, train=True):
        out_hw = self.output_hw(*x.shape[2:])
        if not train:
            self.cache = (x.shape, None, x)  # backward finds the masks from x, if it is called
            return self.reduce_windows(x, out_hw, np.maximum)
        out, takes_over = self.maxima(x, out_hw)
        self.cache = (x.shape, takes_over, None)
        return out

    def maxima(self, x: np.ndarray, out_hw: Pair) -> tuple[np.ndarray, np.ndarray]:
        """The maximum of every window, ``(N, C, Ho, Wo)``, and the takes-over masks
        ``(PH·PW − 1, N, C, Ho, Wo)`` of the offsets after the first."""
        N, C, _, _ = x.shape
        out = np.empty((N, C, *out_hw), x.dtype)
        takes_over = np.empty((len(self.offsets()) - 1, *out.shape), bool)

        def samples(part):
            first, *later = [self.window_slice(x[part], u, v, out_hw) for u, v in self.offsets()]
            running = out[part]
            np.copyto(running, first)
            for took, offset_slice in zip(takes_over[:, part], later):
                np.greater(offset_slice, running, out=took)
                np.maximum(running, offset_slice, out=running)

        threads.in_parts(N, samples, x.size)
        return out, takes_over

    def backward(self, dout):
        x_shape, takes_over, x = self.cache
        out_hw = dout.shape[2:]
        if takes_over is None:  # after an eval-mode forward
            _, takes_over = self.maxima(x, out_hw)
        dx = self.new_input_grad(x_shape, out_hw, dout.dtype)
        first, *later = self.offsets()

        def samples(part):
            remaining = dout[part]  # the gradient of the windows whose maximum is still to be found
            for (u, v), took in zip(reversed(later), reversed(takes_over[:, part])):
                share = took * remaining
                remaining = remaining - share  # exactly 0 in the windows that just routed theirs
                self.route(dx[part], u, v, share, out_hw)
            self.route(dx[part], *first, remaining, out_hw)

        threads.in_parts(len(dout), samples, dx.size)
        return dx.reshape(x_shape)


@LAYERS.register("avgpool")
class AvgPool(Pool2D):
    """Mean over each window: ``out[n, c, i, j] = Σ_{u,v} x[n, c, SH·i+u, SW·j+v] / (PH·PW)``.

    Backward spreads ``dout/(PH·PW)`` equally over the window; where windows overlap, a
    pixel collects a share from each.

    Reference: ``reference.pool_forward(x, pool, stride, np.mean)`` and
    ``reference.avgpool_backward``, plain loops over the windows.
    """

    examples = (
        Example("avgpool", (2, 4, 6)),
        Example({"type": "avgpool", "pool": 3, "stride": 2}, (2, 5, 7)),
        Example({"type": "avgpool", "pool": [2, 3], "stride": [2, 1]}, (1, 4, 5)),
        Example("avgpool", (2, 5, 7)),
    )

    def forward(self, x, train=True):
        out = self.reduce_windows(x, self.output_hw(*x.shape[2:]), np.add)
        out *= 1.0 / len(self.offsets())
        self.cache = x.shape
        return out

    def backward(self, dout):
        x_shape = self.cache
        out_hw = dout.shape[2:]
        share = dout * (1.0 / len(self.offsets()))
        dx = self.new_input_grad(x_shape, out_hw, dout.dtype)
        for u, v in self.offsets():
            self.route(dx, u, v, share, out_hw)
        return dx.reshape(x_shape)
