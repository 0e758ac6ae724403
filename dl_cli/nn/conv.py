"""2-D convolution by im2col, and the shape rules it shares with pooling.

im2col copies every receptive field of the input into one column of a matrix, so the
whole convolution is one matrix product with the flattened filters; col2im is its
adjoint and carries the column gradients back to the pixels they came from.
Columns are laid out ``(C·KH·KW, N·Ho·Wo)``: both products then read contiguous rows,
which ``benchmarks/bench_conv.py`` measured faster than ``(N·Ho·Wo, C·KH·KW)``.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..registry import LAYERS
from .layer import Example, Layer, ShapeError

Pair = tuple[int, int]


def as_pair(name: str, value, minimum: int) -> Pair:
    """``value`` as ``(height, width)``: an int serves both, a pair ``[h, w]`` each."""
    items = list(value) if isinstance(value, (list, tuple)) else [value, value]
    if len(items) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < minimum
                              for v in items):
        raise ValueError(f"{name} must be an integer >= {minimum} or a pair [height, width] "
                         f"of them, got {value!r}")
    return items[0], items[1]


def image_shape(layer: str, in_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """``(C, H, W)``, or a ShapeError when a sample is not an image."""
    if len(in_shape) != 3:
        raise ShapeError(f"{layer} needs images (C, H, W) per sample, got the "
                         f"{len(in_shape)}-D shape {tuple(in_shape)}")
    return tuple(in_shape)


def output_length(axis: str, size: int, window: str, kernel: int, stride: int,
                  pad: int | None = None) -> int:
    """``(size + 2·pad − kernel)/stride + 1`` along one axis, which must be a whole number.

    ``axis`` is "height" or "width"; ``window`` names the option ("kernel", "pool");
    ``pad=None`` for layers that do not pad. A stride that does not fit is reported with
    the numbers and a way out: the smallest larger pad that fits, else an input size.
    """
    padded = size + 2 * (pad or 0)
    if pad is None:
        input_name, formula = f"input {axis}", f"{axis} − {window} = {size} − {kernel}"
    else:
        input_name = f"padded input {axis}"
        formula = f"{axis} + 2·pad − {window} = {size} + 2·{pad} − {kernel}"
    if kernel > padded:
        raise ShapeError(f"{window} {axis} {kernel} is larger than the {input_name} {padded}"
                         + (f" ({size} + 2·{pad})" if pad is not None else ""))
    excess = (padded - kernel) % stride
    if excess:
        fitting_pads = [] if pad is None else [
            p for p in range(pad + 1, pad + stride) if (size + 2 * p - kernel) % stride == 0]
        if fitting_pads:
            hint = f"a pad of {fitting_pads[0]} on the {axis} fits"
        else:
            hint = f"crop or pad the input {axis} to {size - excess} or {size - excess + stride}"
        raise ShapeError(f"stride {stride} does not fit the input {axis}: {formula} = "
                         f"{padded - kernel} is not divisible by {stride}; {hint}")
    return (padded - kernel) // stride + 1


def im2col(x: np.ndarray, kernel: Pair, stride: Pair, pad: Pair) -> np.ndarray:
    """Every receptive field of x ``(N, C, H, W)`` as a column: ``(C·KH·KW, N·Ho·Wo)``.

    Rows run over ``(c, u, v)`` (channel, kernel row, kernel column), columns over
    ``(n, i, j)`` (sample, output row, output column). The fields are a strided view of
    the padded input; the final reshape copies them once.
    """
    (KH, KW), (SH, SW), (PH, PW) = kernel, stride, pad
    N, C, H, W = x.shape
    if PH or PW:
        padded = np.zeros((N, C, H + 2 * PH, W + 2 * PW), dtype=x.dtype)
        padded[:, :, PH:PH + H, PW:PW + W] = x
        x = padded
    windows = sliding_window_view(x, (KH, KW), axis=(2, 3))  # (N, C, Hp−KH+1, Wp−KW+1, KH, KW)
    fields = windows[:, :, ::SH, ::SW]  # (N, C, Ho, Wo, KH, KW)
    return fields.transpose(1, 4, 5, 0, 2, 3).reshape(C * KH * KW, -1)


def col2im(dcols: np.ndarray, x_shape: tuple[int, ...], kernel: Pair, stride: Pair,
           pad: Pair) -> np.ndarray:
    """The adjoint of im2col: add each column entry onto the input pixel it was read from.

    One pass per kernel offset ``(u, v)``: the entries of that offset form a strided
    slice of the padded input, added at once. The sum is accumulated channel-major
    ``(C, N, H, W)``, the layout of the columns, and transposed once at the end.
    """
    (KH, KW), (SH, SW), (PH, PW) = kernel, stride, pad
    N, C, H, W = x_shape
    Ho, Wo = (H + 2 * PH - KH) // SH + 1, (W + 2 * PW - KW) // SW + 1
    dcols = dcols.reshape(C, KH, KW, N, Ho, Wo)
    dpadded = np.zeros((C, N, H + 2 * PH, W + 2 * PW), dtype=dcols.dtype)
    for u in range(KH):
        for v in range(KW):
            dpadded[:, :, u:u + SH * Ho:SH, v:v + SW * Wo:SW] += dcols[:, u, v]
    return np.ascontiguousarray(dpadded[:, :, PH:PH + H, PW:PW + W].transpose(1, 0, 2, 3))


@LAYERS.register("conv2d")
class Conv2D(Layer):
    """2-D convolution (cross-correlation, as in every CNN library) by im2col.

    Shapes: x ``(N, C, H, W)``; W ``(F, C, KH, KW)``; b ``(F,)``; out ``(N, F, Ho, Wo)``
    with ``Ho = (H + 2P − KH)/S + 1`` and ``Wo = (W + 2P − KW)/S + 1`` whole numbers.
    ``kernel``, ``stride`` and ``pad`` are an int or a pair ``[height, width]``.

    Forward: ``out[n, f, i, j] = b[f] + Σ_{c,u,v} W[f, c, u, v]·xpad[n, c, S·i + u, S·j + v]``,
    computed as ``W.reshape(F, C·KH·KW) @ cols`` with ``cols = im2col(x)``.
    Backward, with ``dout`` as ``D (F, N·Ho·Wo)``:
    ``dW = D @ colsᵀ`` (the input correlated with the output gradient),
    ``db = Σ_{n,i,j} dout``, and ``dx = col2im(Wᵀ @ D)``, which is the full convolution
    of dout with the 180°-rotated kernel.
    Parameters ``(KH·KW·C + 1)·F``; multiply-adds ``Ho·Wo·F·KH·KW·C`` per sample.
    """

    examples = (
        Example({"type": "conv2d", "filters": 2, "kernel": 3}, (2, 5, 7)),
        Example({"type": "conv2d", "filters": 3, "kernel": 3, "stride": 2, "pad": 1}, (2, 5, 7)),
        Example({"type": "conv2d", "filters": 2, "kernel": 1}, (3, 4, 5)),
        Example({"type": "conv2d", "filters": 2, "kernel": [2, 3], "stride": [1, 2],
                 "pad": [1, 0], "init": "xavier_normal"}, (2, 4, 7)),
    )

    def __init__(self, filters: int, kernel, stride=1, pad=0, init=None):
        super().__init__()
        if isinstance(filters, bool) or not isinstance(filters, int) or filters < 1:
            raise ValueError(f"filters must be a positive integer, got {filters!r}")
        self.filters = filters
        self.kernel = kernel
        self.stride = stride
        self.pad = pad
        self.init = init
        self.kernel_hw = as_pair("kernel", kernel, 1)
        self.stride_hw = as_pair("stride", stride, 1)
        self.pad_hw = as_pair("pad", pad, 0)
        self.decay = {"W"}

    def output_hw(self, H: int, W: int) -> Pair:
        (KH, KW), (SH, SW), (PH, PW) = self.kernel_hw, self.stride_hw, self.pad_hw
        return (output_length("height", H, "kernel", KH, SH, PH),
                output_length("width", W, "kernel", KW, SW, PW))

    def build(self, in_shape, rng):
        C, H, W = image_shape("conv2d", in_shape)
        Ho, Wo = self.output_hw(H, W)
        self.params = {
            "W": self.new_weight((self.filters, C, *self.kernel_hw), rng, self.init),
            "b": self.new_zeros((self.filters,)),
        }
        return (self.filters, Ho, Wo)

    def forward(self, x, train=True):
        N, _, H, W = x.shape
        Ho, Wo = self.output_hw(H, W)
        F = self.filters
        cols = im2col(x, self.kernel_hw, self.stride_hw, self.pad_hw)
        product = self.params["W"].reshape(F, -1) @ cols  # (F, N·Ho·Wo)
        out = np.empty((N, F, Ho, Wo), dtype=product.dtype)
        np.add(product.reshape(F, N, Ho, Wo).transpose(1, 0, 2, 3),
               self.params["b"].reshape(F, 1, 1), out=out)
        self.cache = (x.shape, cols)
        return out

    def backward(self, dout):
        x_shape, cols = self.cache
        W = self.params["W"]
        dout2 = dout.transpose(1, 0, 2, 3).reshape(self.filters, -1)  # (F, N·Ho·Wo)
        self.grads = {"W": (dout2 @ cols.T).reshape(W.shape), "b": dout2.sum(axis=1)}
        dcols = W.reshape(self.filters, -1).T @ dout2
        return col2im(dcols, x_shape, self.kernel_hw, self.stride_hw, self.pad_hw)

    def macs(self, in_shape, out_shape):
        C, _, _ = in_shape
        F, Ho, Wo = out_shape
        KH, KW = self.kernel_hw
        return Ho * Wo * F * KH * KW * C
