"""2-D convolution by im2col, and the shape rules it shares with pooling.

im2col copies every receptive field of the input into one column of a matrix, so the
whole convolution is one matrix product with the flattened filters; col2im is its
adjoint and carries the column gradients back to the pixels they came from.

Columns are laid out sample first, ``(N, KH·KW·C, Ho·Wv)``: for each sample, rows over
the kernel offset ``(u, v)`` and then the channel, columns over the output row and
``Wv`` output columns. The products are then stacks of one product per sample
(``np.matmul`` runs BLAS on each), and their results come out in the layout of the
images, ``(N, F, Ho·Wv)``: no transposed copy on the way in or out.
With stride 1, ``Wv`` is the row length ``Ws`` of the flattened padded image rather
than ``Wo``: the fields of output row i at kernel offset ``(u, v)`` are then one
contiguous run of it, starting at ``(i + u)·Ws + v``, and so are those of a whole image,
so im2col copies and col2im adds runs of ``Ho·Ws`` values, one block of rows per
offset. The ``Ws − Wo`` extra columns of each row read pixels that wrap around into
the next row: their outputs are dropped and their gradients are zero. Rows share their
padding: the ``PW`` zeros that end a padded row are the ones that start the next, so
``Ws = W + PW`` rather than ``Wp = W + 2·PW`` (``row_length``), and a 3×3 kernel with
pad 1 wastes one column a row instead of two. Other strides use
``Wv = Wo`` and strided windows, and so does stride 1 on a thin input, whose receptive
fields hold fewer values than there are filters (``Conv2D.wide_columns``). The
channel-first layout ``(C·KH·KW, N·Ho·Wo)`` would copy only ``Wo`` values at a time
(``benchmarks/bench_conv.py`` times the layouts).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import threads
from ..checks import is_int, positive_int
from ..registry import LAYERS
from .layer import Example, Layer, ShapeError

Pair = tuple[int, int]
CHUNK_BYTES = 1 << 20  # about the cache a core has to itself (L2)


def as_pair(name: str, value, minimum: int) -> Pair:
    """``value`` as ``(height, width)``: an int serves both, a pair ``[h, w]`` each."""
    items = list(value) if isinstance(value, (list, tuple)) else [value, value]
    if len(items) != 2 or not all(is_int(v) and v >= minimum for v in items):
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
    """``⌊(size + 2·pad − kernel)/stride⌋ + 1`` along one axis, as PyTorch and Keras count.

    When the stride does not divide ``size + 2·pad − kernel``, the last rows (or columns)
    of the padded input are reached by no window: they take no part in the output and
    get zero gradient. ``axis`` is "height" or "width"; ``window`` names the option
    ("kernel", "pool"); ``pad=None`` for layers that do not pad. Only a window larger
    than the (padded) input, where no window fits at all, is a ShapeError.
    """
    padded = size + 2 * (pad or 0)
    input_name = f"input {axis}" if pad is None else f"padded input {axis}"
    if kernel > padded:
        raise ShapeError(f"{window} {axis} {kernel} is larger than the {input_name} {padded}"
                         + (f" ({size} + 2·{pad})" if pad is not None else ""))
    return (padded - kernel) // stride + 1


def same_pad(size: int, kernel: int, stride: int) -> int:
    """The pad on each side that keeps ``⌈size/stride⌉`` outputs (``pad: same``).

    The windows need ``(⌈size/S⌉ − 1)·S + K − size`` padded pixels in all (at least 0);
    each side gets half of that, rounded up. An odd total rounded up gives one pixel no
    window reaches when ``S ≥ 2`` (the output size is floored), but one output too many
    with ``S = 1``, which is why stride 1 needs an odd kernel (``Conv2D`` checks).
    """
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return -(-total // 2)


def pad_option(pad) -> Pair | None:
    """conv2d's ``pad`` as ``(height, width)``, or None for ``same`` (set by ``build``)."""
    if pad == "same":
        return None
    try:
        return as_pair("pad", pad, 0)
    except ValueError:
        raise ValueError(f"pad must be an integer >= 0, a pair [height, width] of them, or "
                         f"same, got {pad!r}") from None


def row_length(W: int, kernel: Pair, pad: Pair) -> int:
    """``Ws``, the length of a row of the flattened padded images: ``W + PW``, each row's
    ``PW`` left zeros serving as the right padding of the row before. A field that runs
    past the end of its row reads the next row's first ``PW`` values, zeros, as the
    padding it stands for. The ``Wo`` valid outputs fit in a row of ``Ws`` as long as the
    kernel is wider than the pad (``KW > PW``); else rows are ``W + 2·PW``, unshared."""
    (_, KW), (_, PW) = kernel, pad
    return W + PW if KW > PW else W + 2 * PW


def wide_width(W: int, kernel: Pair, stride: Pair, pad: Pair, wide: bool = True) -> int:
    """``Wv``, the columns per output row in im2col's layout: ``Ws`` (``row_length``) with
    stride 1 (unless ``wide`` is False), else ``Wo``."""
    (_, KW), (_, SW), (_, PW) = kernel, stride, pad
    if stride == (1, 1) and wide:
        return row_length(W, kernel, pad)
    return (W + 2 * PW - KW) // SW + 1


def flat_padded(N: int, C: int, H: int, W: int, kernel: Pair, pad: Pair, dtype) -> np.ndarray:
    """Zeros ``(N, C, Hp·Ws + KW − 1)``: room for padded images, flattened in rows of
    ``Ws`` (``row_length``), and for the last field's run, which reads ``KW − 1`` values
    past the end."""
    (_, KW), (PH, _) = kernel, pad
    return np.zeros((N, C, (H + 2 * PH) * row_length(W, kernel, pad) + KW - 1), dtype)


def image_of(flat: np.ndarray, H: int, W: int, kernel: Pair, pad: Pair) -> np.ndarray:
    """The ``(N, C, H, W)`` view of the unpadded images inside a ``flat_padded`` array."""
    N, C, _ = flat.shape
    PH, PW = pad
    Hp, Ws = H + 2 * PH, row_length(W, kernel, pad)
    return flat[:, :, :Hp * Ws].reshape(N, C, Hp, Ws)[:, :, PH:PH + H, PW:PW + W]


def run_starts(kernel: Pair, Ws: int) -> list[int]:
    """Where the run of kernel offset ``(u, v)`` starts in a flattened padded image with
    rows of ``Ws``, offsets row by row."""
    KH, KW = kernel
    return [u * Ws + v for u in range(KH) for v in range(KW)]


def im2col(x: np.ndarray, kernel: Pair, stride: Pair, pad: Pair,
           wide: bool = True) -> np.ndarray:
    """Every receptive field of x ``(N, C, H, W)`` as a column: ``(N, KH·KW·C, Ho·Wv)``.

    Rows run over ``(u, v, c)`` (kernel row, kernel column, channel), columns over
    ``(i, j)`` (output row, output column up to ``Wv``; see the module doc, and
    ``Conv2D.wide_columns`` for ``wide``).
    """
    (KH, KW), (SH, _), (PH, _) = kernel, stride, pad
    N, C, H, W = x.shape
    Ho, Wv = (H + 2 * PH - KH) // SH + 1, wide_width(W, kernel, stride, pad, wide)
    cols = np.empty((N, KH * KW * C, Ho * Wv), x.dtype)
    fill_columns(x, kernel, stride, pad, cols.reshape(N, KH, KW, C, Ho, Wv), wide)
    return cols


def fill_columns(x: np.ndarray, kernel: Pair, stride: Pair, pad: Pair,
                 fields: np.ndarray, wide: bool) -> None:
    """im2col of x into ``fields``, its columns seen as ``(N, KH, KW, C, Ho, Wv)``: runs of
    the flattened padded images for wide columns (stride 1), strided windows otherwise."""
    (KH, KW), (SH, SW), (PH, PW) = kernel, stride, pad
    N, C, H, W = x.shape
    if stride == (1, 1) and wide:
        flat = flat_padded(N, C, H, W, kernel, pad, x.dtype)
        image_of(flat, H, W, kernel, pad)[...] = x
        Ho, Ws = fields.shape[-2:]
        for k, start in enumerate(run_starts(kernel, Ws)):
            fields[:, k // KW, k % KW] = flat[:, :, start:start + Ho * Ws].reshape(N, C, Ho, Ws)
        return
    if PH or PW:
        padded = np.zeros((N, C, H + 2 * PH, W + 2 * PW), dtype=x.dtype)
        padded[:, :, PH:PH + H, PW:PW + W] = x
        x = padded
    windows = sliding_window_view(x, (KH, KW), axis=(2, 3))  # (N, C, Hp−KH+1, Wp−KW+1, KH, KW)
    fields[...] = windows[:, :, ::SH, ::SW].transpose(0, 4, 5, 1, 2, 3)  # from (N, C, Ho, Wo, KH, KW)


def chunks(part: slice, per_sample: int, target: int = CHUNK_BYTES) -> list[slice]:
    """``part``'s samples in runs of about ``target`` bytes, at ``per_sample`` bytes of
    columns each (at least one sample a run): the columns of a run, and the products
    made from them, are read again while still in the cache."""
    step = max(1, target // per_sample)
    return [slice(i, min(i + step, part.stop)) for i in range(part.start, part.stop, step)]


def col2im(dcols: np.ndarray, x_shape: tuple[int, ...], kernel: Pair, stride: Pair,
           pad: Pair, wide: bool = True) -> np.ndarray:
    """The adjoint of im2col: add each column entry onto the input pixel it was read from.

    One pass per kernel offset ``(u, v)``: with stride 1 the entries of that offset are
    added as one run per image of the flattened padded images; otherwise they form a
    strided slice of the padded input (and so with narrow columns, ``wide=False``).
    Returns the ``(N, C, H, W)`` view of the sum inside the padded images: the caller
    copies it once, into the input gradient.
    """
    (KH, KW), (SH, SW), (PH, PW) = kernel, stride, pad
    N, C, H, W = x_shape
    if stride == (1, 1) and wide:
        dflat = flat_padded(N, C, H, W, kernel, pad, dcols.dtype)
        by_offset = dcols.reshape(N, KH * KW, C, -1)
        length = by_offset.shape[3]
        for k, start in enumerate(run_starts(kernel, row_length(W, kernel, pad))):
            dflat[:, :, start:start + length] += by_offset[:, k]
        return image_of(dflat, H, W, kernel, pad)
    Ho, Wo = (H + 2 * PH - KH) // SH + 1, (W + 2 * PW - KW) // SW + 1
    dcols = dcols.reshape(N, KH, KW, C, Ho, Wo)
    dpadded = np.zeros((N, C, H + 2 * PH, W + 2 * PW), dtype=dcols.dtype)
    for u in range(KH):
        for v in range(KW):
            dpadded[:, :, u:u + SH * Ho:SH, v:v + SW * Wo:SW] += dcols[:, u, v]
    return dpadded[:, :, PH:PH + H, PW:PW + W]


def wide_rows(dout: np.ndarray, Wv: int) -> np.ndarray:
    """An output gradient ``(N, F, Ho, Wo)`` as the products' ``(N, F, Ho·Wv)``, with
    zeros in the ``Wv − Wo`` wrapped columns of each row (a view when there are none)."""
    N, F, Ho, Wo = dout.shape
    if Wv == Wo:
        return dout.reshape(N, F, Ho * Wo)
    wide = np.zeros((N, F, Ho, Wv), dout.dtype)
    wide[..., :Wo] = dout
    return wide.reshape(N, F, Ho * Wv)


@LAYERS.register("conv2d")
class Conv2D(Layer):
    """2-D convolution (cross-correlation, as in every CNN library) by im2col.

    Shapes: x ``(N, C, H, W)``; W ``(F, C, KH, KW)``; b ``(F,)``; out ``(N, F, Ho, Wo)``
    with ``Ho = ⌊(H + 2P − KH)/S⌋ + 1`` and ``Wo = ⌊(W + 2P − KW)/S⌋ + 1`` (the last rows
    and columns no window reaches get zero gradient). ``kernel``, ``stride`` and ``pad``
    are an int or a pair ``[height, width]``; ``pad: same`` pads each side by what keeps
    ``⌈H/S⌉ × ⌈W/S⌉`` outputs (``same_pad``: 1 for kernel 3, at stride 1 or 2).

    Forward: ``out[n, f, i, j] = b[f] + Σ_{c,u,v} W[f, c, u, v]·xpad[n, c, S·i + u, S·j + v]``,
    computed as ``filter_rows() @ cols`` with ``cols = im2col(x)``.
    Backward, with ``dout`` as ``D (N, F, Ho·Wv)`` (zeros in the extra columns):
    ``dW = Σ_n D_n @ cols_nᵀ`` (the input correlated with the output gradient; computed
    as its transpose ``cols_n @ D_nᵀ``, ``(KH·KW·C, F)``, which OpenBLAS runs faster: the
    same product with the long sum over the columns, but the wide matrix first),
    ``db = Σ_{n,i,j} dout``, and ``dx = col2im(Wᵀ @ D)``, which is the full convolution
    of dout with the 180°-rotated kernel (skipped, and None returned, with
    ``input_grad = False``, which a model sets on its first layer).
    Parameters ``(KH·KW·C + 1)·F``; multiply-adds ``Ho·Wo·F·KH·KW·C`` per sample.
    Reference: ``reference.conv_forward`` and ``reference.conv_backward``, the same sums
    as plain loops.

    The batch goes through these products a few samples at a time (``chunks``: runs
    whose columns take about ``CHUNK_BYTES``), so that each run's columns are still in
    the cache when the product reads them, and its products when they are copied out or
    added back by col2im. The columns are not kept for backward, which makes them again
    from the cached input: an im2col more per step, against the whole batch's columns
    (the largest arrays of a convolutional network, 9·C values per output pixel)
    held from forward to backward and read back from memory. ``dW`` and ``db`` add up
    the runs' sums.

    Inside ``threads.computing_on(n)`` each of ``n`` parts of the batch goes through its
    runs on its own thread; ``dW`` and ``db`` add the parts' sums. A model with a
    convolution asks for its batches in parts (``wants_batch_parts``): its elementwise
    work (im2col's copies, pooling) weighs about as much as its products, and on one core
    it would leave the others idle.
    """

    input_grad = True
    wants_batch_parts = True

    examples = (
        Example({"type": "conv2d", "filters": 2, "kernel": 3}, (2, 5, 7)),
        Example({"type": "conv2d", "filters": 3, "kernel": 3, "stride": 2, "pad": 1}, (2, 5, 7)),
        Example({"type": "conv2d", "filters": 2, "kernel": 1}, (3, 4, 5)),
        Example({"type": "conv2d", "filters": 2, "kernel": [2, 3], "stride": [1, 2],
                 "pad": [1, 0], "init": "xavier_normal"}, (2, 4, 7)),
        Example({"type": "conv2d", "filters": 2, "kernel": 3, "stride": 2, "pad": 1}, (2, 6, 8)),
        Example({"type": "conv2d", "filters": 2, "kernel": [3, 2], "stride": [3, 2],
                 "pad": "same"}, (1, 7, 5)),
    )

    def __init__(self, filters: int, kernel, stride=1, pad=0, init=None):
        super().__init__()
        self.filters = positive_int("filters", filters)
        self.kernel = kernel
        self.stride = stride
        self.pad = pad
        self.init = init
        self.kernel_hw = as_pair("kernel", kernel, 1)
        self.stride_hw = as_pair("stride", stride, 1)
        self.pad_hw = pad_option(pad)
        for axis, k, s in zip(("height", "width"), self.kernel_hw, self.stride_hw):
            if pad == "same" and s == 1 and k % 2 == 0:
                raise ValueError(f"pad: same with stride 1 needs an odd kernel {axis} (a pad "
                                 f"of (kernel − 1)/2 on each side), got {k}")
        self.decay = {"W"}

    def output_hw(self, H: int, W: int) -> Pair:
        (KH, KW), (SH, SW), (PH, PW) = self.kernel_hw, self.stride_hw, self.pad_hw
        return (output_length("height", H, "kernel", KH, SH, PH),
                output_length("width", W, "kernel", KW, SW, PW))

    def build(self, in_shape, rng):
        C, H, W = image_shape("conv2d", in_shape)
        if self.pad == "same":
            (KH, KW), (SH, SW) = self.kernel_hw, self.stride_hw
            self.pad_hw = (same_pad(H, KH, SH), same_pad(W, KW, SW))
        Ho, Wo = self.output_hw(H, W)
        self.params = {
            "W": self.new_weight((self.filters, C, *self.kernel_hw), rng, self.init),
            "b": self.new_zeros((self.filters,)),
        }
        return (self.filters, Ho, Wo)

    def filter_rows(self) -> np.ndarray:
        """The filters as ``(F, KH·KW·C)``, columns in im2col's row order ``(u, v, c)``."""
        return self.params["W"].transpose(0, 2, 3, 1).reshape(self.filters, -1)

    def wide_columns(self, C: int) -> bool:
        """Whether im2col's columns are wide (``Wv = Ws``, stride 1) or narrow (``Wo``).

        Wide columns let im2col and col2im copy whole runs of the padded images, at
        the price of copying the product into the output (dropping the wrapped
        columns) and the output gradient into the product's layout (adding them as
        zeros): ``F`` values an output pixel, against im2col's ``KH·KW·C``. Narrow
        columns copy rows of ``Wo`` values, but the product is the output and the
        output gradient is read as it is. So a thin input, with fewer values in a
        receptive field than filters (``KH·KW·C < F``: a first layer on 1 or 3
        channels), takes narrow columns; stride 1 otherwise takes wide ones.
        """
        KH, KW = self.kernel_hw
        return self.stride_hw == (1, 1) and KH * KW * C >= self.filters

    def forward(self, x, train=True):
        N, C, H, W = x.shape
        Ho, Wo = self.output_hw(H, W)
        F, (KH, KW) = self.filters, self.kernel_hw
        wide = self.wide_columns(C)
        Wv = wide_width(W, self.kernel_hw, self.stride_hw, self.pad_hw, wide)
        out = np.empty((N, F, Ho, Wo), dtype=np.result_type(x, self.params["W"]))
        W_rows, b = self.filter_rows(), self.params["b"][:, None]

        def samples(part):
            for run in chunks(part, KH * KW * C * Ho * Wv * x.itemsize):
                cols = im2col(x[run], self.kernel_hw, self.stride_hw, self.pad_hw, wide)
                n = run.stop - run.start
                narrow = Wv == Wo  # the product is the output
                product = np.matmul(W_rows, cols,  # (n, F, Ho·Wv)
                                    out=out[run].reshape(n, F, Ho * Wo) if narrow else None)
                product += b
                if not narrow:
                    np.copyto(out[run], product.reshape(n, F, Ho, Wv)[..., :Wo])

        threads.in_parts(N, samples, out.size + KH * KW * C * N * Ho * Wv)
        self.cache = x
        return out

    def backward(self, dout):
        x = self.cache
        N, C, H, W = x.shape
        _, F, Ho, Wo = dout.shape
        KH, KW = self.kernel_hw
        wide = self.wide_columns(C)
        Wv = wide_width(W, self.kernel_hw, self.stride_hw, self.pad_hw, wide)
        dx = np.empty(x.shape, dout.dtype) if self.input_grad else None
        W_rows = self.filter_rows()

        def samples(part):  # these samples' share of dW and db, and their dx
            dW_columns = np.zeros((KH * KW * C, F), dout.dtype)  # dWᵀ
            db = np.zeros(F, dout.dtype)
            for run in chunks(part, KH * KW * C * Ho * Wv * x.itemsize):
                cols = im2col(x[run], self.kernel_hw, self.stride_hw, self.pad_hw, wide)
                D = wide_rows(dout[run], Wv)
                dW_columns += np.matmul(cols, D.transpose(0, 2, 1)).sum(axis=0)
                db += D.sum(axis=(0, 2))
                if dx is not None:
                    dx[run] = col2im(np.matmul(W_rows.T, D), dx[run].shape, self.kernel_hw,
                                     self.stride_hw, self.pad_hw, wide)
            return dW_columns, db

        dW_columns, db = threads.summed_in_parts(N, samples, dout.size + KH * KW * C * N * Ho * Wv)
        self.grads = {
            "W": np.ascontiguousarray(dW_columns.reshape(KH, KW, C, F).transpose(3, 2, 0, 1)),
            "b": db,
        }
        return dx

    def macs(self, in_shape, out_shape):
        C, _, _ = in_shape
        F, Ho, Wo = out_shape
        KH, KW = self.kernel_hw
        return Ho * Wo * F * KH * KW * C
