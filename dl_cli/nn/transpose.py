"""Transposed convolution ("deconvolution", a bad name): the adjoint of ``conv2d``.

A strided convolution maps a large image to a small one; its transpose maps small to
large with the same kernel, which is how a fully convolutional network learns to
upsample. With conv2d's filters ``W (F_c, C_c, KH, KW)`` as a matrix ``A`` (conv2d is
``z ↦ A z``), this layer is ``x ↦ Aᵀ x``:

    ⟨conv2d(z), x⟩ = ⟨z, conv2d_transpose(x)⟩     (same W, no bias)

so its forward is conv2d's input gradient, ``col2im(Wᵀ-rows @ x)``, and its input
gradient is conv2d's forward, ``W-rows @ im2col(dout)``. The columns use conv2d's layout
(see ``conv.py``), sample first and wide rows and all, so both directions are one
matrix product per sample each.
"""

from __future__ import annotations

import numpy as np

from .. import threads
from ..checks import positive_int
from ..registry import LAYERS
from .conv import Pair, as_pair, col2im, im2col, image_shape, wide_rows, wide_width
from .layer import Example, Layer, ShapeError


@LAYERS.register("conv2d_transpose")
class Conv2DTranspose(Layer):
    """The adjoint of conv2d, upsampling by its stride:
    ``out[n, f, S·i + u − P, S·j + v − P] += Σ_c x[n, c, i, j]·W[c, f, u, v]``, plus ``b[f]``.

    Shapes: x ``(N, C, H, W)``; W ``(C, F, KH, KW)`` (PyTorch's ``ConvTranspose2d``
    layout: the input channels first, as conv2d's filters are its output channels);
    b ``(F,)``; out ``(N, F, Ho, Wo)`` with ``Ho = (H − 1)·S − 2P + KH + output_padding``
    (and the same for Wo). Each input pixel scatters a ``KH × KW`` patch of its
    kernel-weighted values into the output, ``S`` pixels from its neighbour's; the
    ``P`` outer rows and columns of that sum are cut off. ``output_padding`` (smaller
    than the stride) adds rows and columns at the bottom and right: conv2d floors its
    output size, so several sizes map to H, and this picks one (``Ho = S·H`` with
    kernel 3, stride 2, pad 1 and output_padding 1; or kernel 4, stride 2, pad 1).
    ``kernel``, ``stride``, ``pad`` and ``output_padding`` are an int or a pair.

    Forward: ``out = col2im(rowsᵀ @ X) + b`` with ``rows`` the filters as
    ``(C, KH·KW·F)`` and X the input as ``(N, C, H·Wv)`` (zeros in the wide columns,
    ``conv.wide_rows``). Backward, with ``cols = im2col(dout)``: ``dx = rows @ cols``
    (conv2d's forward of dout with the same filters), ``dW = Σ_n X_n @ cols_nᵀ``,
    ``db = Σ_{n,i,j} dout``.
    Parameters ``C·F·KH·KW + F``; multiply-adds ``H·W·C·F·KH·KW`` per sample.
    Reference: ``reference.conv_transpose_forward``, the scatter above as plain loops.

    As conv2d's, its batches are cut into parts on threads (``wants_batch_parts``).
    """

    input_grad = True
    wants_batch_parts = True

    examples = (
        Example({"type": "conv2d_transpose", "filters": 2, "kernel": 3}, (3, 4, 5)),
        Example({"type": "conv2d_transpose", "filters": 3, "kernel": 4, "stride": 2, "pad": 1},
                (2, 3, 4)),
        Example({"type": "conv2d_transpose", "filters": 2, "kernel": 3, "stride": 2, "pad": 1,
                 "output_padding": 1}, (2, 3, 3)),
        Example({"type": "conv2d_transpose", "filters": 2, "kernel": [2, 3], "stride": [2, 3],
                 "pad": [0, 1], "output_padding": [1, 2], "init": "xavier_normal"}, (1, 3, 2)),
    )

    def __init__(self, filters: int, kernel, stride=1, pad=0, output_padding=0, init=None):
        super().__init__()
        self.filters = positive_int("filters", filters)
        self.kernel = kernel
        self.stride = stride
        self.pad = pad
        self.output_padding = output_padding
        self.init = init
        self.kernel_hw = as_pair("kernel", kernel, 1)
        self.stride_hw = as_pair("stride", stride, 1)
        self.pad_hw = as_pair("pad", pad, 0)
        self.output_padding_hw = as_pair("output_padding", output_padding, 0)
        for axis, extra, step in zip(("height", "width"), self.output_padding_hw, self.stride_hw):
            if extra >= step:
                raise ValueError(f"output_padding must be smaller than the stride, got "
                                 f"{extra} on the {axis} with stride {step}")
        self.decay = {"W"}

    def output_hw(self, H: int, W: int) -> Pair:
        sizes = []
        for axis, size, k, s, p, extra in zip(("height", "width"), (H, W), self.kernel_hw,
                                              self.stride_hw, self.pad_hw,
                                              self.output_padding_hw):
            out = (size - 1) * s - 2 * p + k + extra
            if out < 1:
                raise ShapeError(f"conv2d_transpose: pad {p} cuts the whole output {axis} "
                                 f"away: ({size} − 1)·{s} − 2·{p} + {k} + {extra} = {out}")
            sizes.append(out)
        return sizes[0], sizes[1]

    def build(self, in_shape, rng):
        C, H, W = image_shape("conv2d_transpose", in_shape)
        Ho, Wo = self.output_hw(H, W)
        self.params = {
            # drawn as conv2d's filters (F_c = C, C_c = F) are, so fans follow the adjoint
            "W": self.new_weight((C, self.filters, *self.kernel_hw), rng, self.init),
            "b": self.new_zeros((self.filters,)),
        }
        return (self.filters, Ho, Wo)

    def filter_rows(self) -> np.ndarray:
        """The filters as ``(C, KH·KW·F)``, columns in im2col's row order ``(u, v, f)``."""
        C = self.params["W"].shape[0]
        return self.params["W"].transpose(0, 2, 3, 1).reshape(C, -1)

    def forward(self, x, train=True):
        N, _, H, W = x.shape
        out_hw = self.output_hw(H, W)
        out = np.empty((N, self.filters, *out_hw), dtype=np.result_type(x, self.params["W"]))
        Wv = wide_width(out_hw[1], self.kernel_hw, self.stride_hw, self.pad_hw)

        def samples(part):
            n = part.stop - part.start
            cols = np.matmul(self.filter_rows().T, wide_rows(x[part], Wv))  # (n, KH·KW·F, H·Wv)
            out[part] = col2im(cols, (n, self.filters, *out_hw), self.kernel_hw,
                               self.stride_hw, self.pad_hw)
            out[part] += self.params["b"][:, None, None]

        threads.in_parts(N, samples, out.size * self.kernel_hw[0] * self.kernel_hw[1])
        self.cache = x
        return out

    def backward(self, dout):
        x = self.cache
        N, C, H, W = x.shape
        dx = np.empty(x.shape, dout.dtype) if self.input_grad else None
        Wv = wide_width(dout.shape[3], self.kernel_hw, self.stride_hw, self.pad_hw)

        def samples(part):  # these samples' share of dW and db, and their dx
            cols = im2col(dout[part], self.kernel_hw, self.stride_hw, self.pad_hw)
            if dx is not None:
                n = part.stop - part.start
                wide = np.matmul(self.filter_rows(), cols).reshape(n, C, H, Wv)
                dx[part] = wide[..., :W]
            X = wide_rows(x[part], Wv)  # (n, C, H·Wv)
            dW_rows = np.matmul(X, cols.transpose(0, 2, 1)).sum(axis=0)  # (C, KH·KW·F)
            return dW_rows, dout[part].sum(axis=(0, 2, 3))

        KH, KW = self.kernel_hw
        dW_rows, db = threads.summed_in_parts(N, samples, dout.size * KH * KW)
        self.grads = {
            "W": np.ascontiguousarray(dW_rows.reshape(C, KH, KW, -1).transpose(0, 3, 1, 2)),
            "b": db,
        }
        return dx

    def macs(self, in_shape, out_shape):
        C, H, W = in_shape
        KH, KW = self.kernel_hw
        return H * W * C * self.filters * KH * KW
