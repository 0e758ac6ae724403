"""Changing the size of images without learned weights: upsampling back to full size in a
fully convolutional network, and global average pooling, GoogLeNet's and ResNet's head.

Both are linear maps, so their backward is their transpose: nearest upsampling copies
each pixel into a ``factor × factor`` block and its backward sums the block; bilinear
upsampling is ``Ah @ x @ Awᵀ`` with fixed interpolation matrices, its backward
``Ahᵀ @ dout @ Aw``; the global average spreads ``dout/(H·W)`` over the image.
"""

from __future__ import annotations

import numpy as np

from ..checks import check_choice
from ..registry import LAYERS
from .conv import as_pair, image_shape
from .layer import Example, Layer


def bilinear_matrix(size: int, factor: int, dtype) -> np.ndarray:
    """``A (factor·size, size)``: row i holds the weights of output position i on the
    input positions, PyTorch's ``align_corners=False``.

    Output i sits at input coordinate ``s = (i + ½)/factor − ½`` (pixel centres line up),
    clamped to ``[0, size − 1]``; it takes ``1 − λ`` of pixel ``⌊s⌋`` and ``λ = s − ⌊s⌋``
    of the next. Every row sums to 1.
    """
    out = np.arange(factor * size)
    source = np.clip((out + 0.5) / factor - 0.5, 0.0, size - 1)
    low = np.floor(source).astype(np.int64)
    high = np.minimum(low + 1, size - 1)
    weight = source - low
    A = np.zeros((factor * size, size), dtype=dtype)
    np.add.at(A, (out, low), 1.0 - weight)
    np.add.at(A, (out, high), weight)
    return A


@LAYERS.register("upsample")
class Upsample(Layer):
    """Enlarge images by ``factor``: nearest, ``out[n, c, i, j] = x[n, c, ⌊i/fh⌋, ⌊j/fw⌋]``,
    or bilinear, ``out[n, c] = Ah @ x[n, c] @ Awᵀ``.

    Shapes: x ``(N, C, H, W)``; out ``(N, C, fh·H, fw·W)``; ``factor`` an int or a pair
    ``[fh, fw]``. ``mode: nearest`` is the notes' nearest-neighbour unpooling: each pixel
    becomes an ``fh × fw`` block, and backward sums the gradient of each block,
    ``dx[n, c, i, j] = Σ_{u<fh, v<fw} dout[n, c, fh·i + u, fw·j + v]``. ``mode: bilinear``
    interpolates between the four nearest pixel centres (``bilinear_matrix``, as
    PyTorch's ``align_corners=False``), one matrix product per axis; backward is the
    transpose, ``dx = Ahᵀ @ dout @ Aw``. No parameters.
    """

    modes = ("nearest", "bilinear")
    examples = (
        Example("upsample", (2, 3, 4)),
        Example({"type": "upsample", "factor": [3, 2], "mode": "nearest"}, (1, 2, 3)),
        Example({"type": "upsample", "factor": 2, "mode": "bilinear"}, (2, 3, 4)),
        Example({"type": "upsample", "factor": [1, 3], "mode": "bilinear"}, (1, 4, 1)),
    )

    def __init__(self, factor=2, mode: str = "nearest"):
        super().__init__()
        self.factor = factor
        self.mode = check_choice("mode", mode, self.modes)
        self.factor_hw = as_pair("factor", factor, 1)

    def build(self, in_shape, rng):
        C, H, W = image_shape("upsample", in_shape)
        (fh, fw) = self.factor_hw
        if self.mode == "bilinear":
            self.rows = bilinear_matrix(H, fh, self.dtype)  # Ah (fh·H, H)
            self.cols = bilinear_matrix(W, fw, self.dtype)  # Aw (fw·W, W)
        return (C, fh * H, fw * W)

    def forward(self, x, train=True):
        fh, fw = self.factor_hw
        if self.mode == "nearest":
            N, C, H, W = x.shape
            out = np.broadcast_to(x[:, :, :, None, :, None], (N, C, H, fh, W, fw))
            return out.reshape(N, C, fh * H, fw * W)
        return self.rows @ (x @ self.cols.T)

    def backward(self, dout):
        fh, fw = self.factor_hw
        if self.mode == "nearest":
            N, C, Ho, Wo = dout.shape
            return dout.reshape(N, C, Ho // fh, fh, Wo // fw, fw).sum(axis=(3, 5))
        return self.rows.T @ dout @ self.cols


@LAYERS.register("global_avgpool")
class GlobalAvgPool(Layer):
    """The mean of each channel over the whole image:
    ``out[n, c] = Σ_{i,j} x[n, c, i, j] / (H·W)``.

    Shapes: x ``(N, C, H, W)``; out ``(N, C)``: GoogLeNet's and ResNet's head, which
    replaces the large affine layer over every position by one average per channel
    (the affine layer after it then has ``C·classes`` weights, whatever the image size).
    Backward spreads each channel's gradient equally over its pixels,
    ``dx[n, c, i, j] = dout[n, c] / (H·W)``. No parameters.
    """

    examples = (
        Example("global_avgpool", (3, 4, 5)),
        Example("global_avgpool", (2, 1, 1)),
    )

    def build(self, in_shape, rng):
        C, _, _ = image_shape("global_avgpool", in_shape)
        return (C,)

    def forward(self, x, train=True):
        self.cache = x.shape
        return x.mean(axis=(2, 3))

    def backward(self, dout):
        N, C, H, W = self.cache
        share = dout * (1.0 / (H * W))
        return np.broadcast_to(share[:, :, None, None], (N, C, H, W)).copy()
