"""The layers' math as plain loops: what each fast layer must compute.

The fast layers hide their formulas behind layouts that make NumPy quick (im2col's
columns, pooling's offset slices, the recurrent layers' time-major arrays). These
functions compute the same thing the way the formulas in the layers' docstrings read,
one sample, channel, position or time step at a time, into float64 arrays; the tests
compare every fast layer with its reference. They are slow: for small inputs only.

    conv_forward, conv_backward             conv2d
    conv_transpose_forward                  conv2d_transpose
    pool_forward                            maxpool (reduce=np.max), avgpool (np.mean)
    maxpool_backward, avgpool_backward      maxpool, avgpool
    rnn_forward, lstm_forward               rnn, lstm

``kernel``, ``pool``, ``stride`` and ``pad`` are an int or a pair ``[height, width]``,
as in a config; a pooling ``stride`` of None means equal to ``pool``. Output sizes are
floored, as PyTorch's: the last rows and columns that no window reaches take no part.
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np

from .conv import as_pair


def padded(x: np.ndarray, pad) -> np.ndarray:
    """x ``(N, C, H, W)`` with ``PH`` rows and ``PW`` columns of zeros around each image."""
    PH, PW = as_pair("pad", pad, 0)
    N, C, H, W = x.shape
    xp = np.zeros((N, C, H + 2 * PH, W + 2 * PW))
    xp[:, :, PH:PH + H, PW:PW + W] = x
    return xp


def window_pairs(window, stride) -> tuple[tuple[int, int], tuple[int, int]]:
    """``(KH, KW), (SH, SW)``: the window's size and its stride (None: the size)."""
    KH, KW = as_pair("window", window, 1)
    return (KH, KW), ((KH, KW) if stride is None else as_pair("stride", stride, 1))


def output_hw(shape: tuple[int, ...], window, stride) -> tuple[int, int]:
    """``(Ho, Wo) = (⌊(H − KH)/SH⌋ + 1, ⌊(W − KW)/SW⌋ + 1)`` for images ``(..., H, W)``:
    the rows after ``SH·(Ho − 1) + KH`` (and columns likewise) are in no window."""
    (KH, KW), (SH, SW) = window_pairs(window, stride)
    H, W = shape[-2:]
    return (H - KH) // SH + 1, (W - KW) // SW + 1


def windows(shape: tuple[int, ...], window, stride) -> Iterator[tuple[int, int, slice, slice]]:
    """``(i, j, rows, cols)`` of every window position over images of ``shape``: output
    row i, output column j, and the input rows and columns the window covers,
    ``SH·i ≤ row < SH·i + KH`` and ``SW·j ≤ col < SW·j + KW``."""
    (KH, KW), (SH, SW) = window_pairs(window, stride)
    Ho, Wo = output_hw(shape, window, stride)
    for i in range(Ho):
        for j in range(Wo):
            yield i, j, slice(SH * i, SH * i + KH), slice(SW * j, SW * j + KW)


# -- conv2d ---------------------------------------------------------------------------

def conv_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray, stride=1, pad=0) -> np.ndarray:
    """``out[n, f, i, j] = b[f] + Σ_{c,u,v} W[f, c, u, v]·xpad[n, c, S·i + u, S·j + v]``.

    x ``(N, C, H, W)``; W ``(F, C, KH, KW)``; b ``(F,)``; out ``(N, F, Ho, Wo)``.
    """
    xp = padded(x, pad)
    N, F = len(x), len(W)
    kernel = W.shape[2:]
    out = np.zeros((N, F, *output_hw(xp.shape, kernel, stride)))
    for n in range(N):
        for f in range(F):
            for i, j, rows, cols in windows(xp.shape, kernel, stride):
                out[n, f, i, j] = np.sum(xp[n, :, rows, cols] * W[f]) + b[f]
    return out


def conv_backward(x: np.ndarray, W: np.ndarray, dout: np.ndarray, stride=1,
                  pad=0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(dx, dW, db)`` of ``conv_forward``: every output entry passes its gradient back
    to the field and the filter it was computed from,

        dW[f]                      += dout[n, f, i, j] · xpad[n, :, field(i, j)]
        dxpad[n, :, field(i, j)]   += dout[n, f, i, j] · W[f]
        db[f]                      += dout[n, f, i, j]

    and dx is dxpad without its padding; a pixel in no window gets zero.
    """
    PH, PW = as_pair("pad", pad, 0)
    xp = padded(x, pad)
    dxp, dW, db = np.zeros_like(xp), np.zeros(W.shape), np.zeros(len(W))
    N, F = len(x), len(W)
    for n in range(N):
        for f in range(F):
            for i, j, rows, cols in windows(xp.shape, W.shape[2:], stride):
                dW[f] += dout[n, f, i, j] * xp[n, :, rows, cols]
                dxp[n, :, rows, cols] += dout[n, f, i, j] * W[f]
                db[f] += dout[n, f, i, j]
    H, Wd = x.shape[2:]
    return dxp[:, :, PH:PH + H, PW:PW + Wd], dW, db


def conv_transpose_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray, stride=1, pad=0,
                           output_padding=0) -> np.ndarray:
    """``out[n, f, S·i + u − P, S·j + v − P] += Σ_c x[n, c, i, j]·W[c, f, u, v]``, plus
    ``b[f]``: every input pixel adds its kernel-weighted values into a ``KH × KW`` patch
    of the output padded by ``P``, ``S`` pixels from its neighbour's, and the padding is
    cut off.

    x ``(N, C, H, W)``; W ``(C, F, KH, KW)``; b ``(F,)``; out ``(N, F, Ho, Wo)`` with
    ``Ho = (H − 1)·SH − 2·PH + KH + output_padding`` (and Wo likewise).
    """
    (SH, SW), (PH, PW) = as_pair("stride", stride, 1), as_pair("pad", pad, 0)
    EH, EW = as_pair("output_padding", output_padding, 0)
    N, C, H, Wd = x.shape
    F, KH, KW = W.shape[1:]
    full = np.zeros((N, F, (H - 1) * SH + KH + EH, (Wd - 1) * SW + KW + EW))
    for n in range(N):
        for c in range(C):
            for i in range(H):
                for j in range(Wd):
                    full[n, :, SH * i:SH * i + KH, SW * j:SW * j + KW] += x[n, c, i, j] * W[c]
    Ho, Wo = full.shape[2] - 2 * PH, full.shape[3] - 2 * PW
    return full[:, :, PH:PH + Ho, PW:PW + Wo] + b[:, None, None]


# -- pooling --------------------------------------------------------------------------

def pool_forward(x: np.ndarray, pool, stride, reduce: Callable[[np.ndarray], float]) -> np.ndarray:
    """``out[n, c, i, j] = reduce(x[n, c, window(i, j)])``: ``np.max`` for max pooling,
    ``np.mean`` for average pooling. x ``(N, C, H, W)``; out ``(N, C, Ho, Wo)``."""
    N, C = x.shape[:2]
    out = np.zeros((N, C, *output_hw(x.shape, pool, stride)))
    for n in range(N):
        for c in range(C):
            for i, j, rows, cols in windows(x.shape, pool, stride):
                out[n, c, i, j] = reduce(x[n, c, rows, cols])
    return out


def maxpool_backward(x: np.ndarray, dout: np.ndarray, pool, stride) -> np.ndarray:
    """dx: each window's whole gradient to the position of its maximum, the first one
    row by row on ties (``np.argmax``); a pixel adds what every window it wins sends."""
    dx = np.zeros(x.shape)
    N, C = x.shape[:2]
    for n in range(N):
        for c in range(C):
            for i, j, rows, cols in windows(x.shape, pool, stride):
                window = x[n, c, rows, cols]
                u, v = np.unravel_index(np.argmax(window), window.shape)
                dx[n, c, rows.start + u, cols.start + v] += dout[n, c, i, j]
    return dx


def avgpool_backward(x_shape: tuple[int, ...], dout: np.ndarray, pool, stride) -> np.ndarray:
    """dx: each window's gradient spread equally over its ``PH·PW`` pixels,
    ``dx[n, c, window(i, j)] += dout[n, c, i, j] / (PH·PW)``."""
    PH, PW = as_pair("pool", pool, 1)
    dx = np.zeros(x_shape)
    N, C = x_shape[:2]
    for n in range(N):
        for c in range(C):
            for i, j, rows, cols in windows(x_shape, pool, stride):
                dx[n, c, rows, cols] += dout[n, c, i, j] / (PH * PW)
    return dx


# -- recurrent layers -------------------------------------------------------------------

def sigmoid(a: np.ndarray) -> np.ndarray:
    """``σ(a) = 1 / (1 + e^(−a))``."""
    return 1 / (1 + np.exp(-a))


def rnn_forward(x: np.ndarray, Wx: np.ndarray, Wh: np.ndarray, b: np.ndarray,
                h0: np.ndarray) -> np.ndarray:
    """Every state ``h_t = tanh(x_t Wx + h_{t−1} Wh + b)`` from ``h0``, sample by sample:
    x ``(N, T, D)``, out ``(N, T, H)``."""
    N, T, _ = x.shape
    out = np.zeros((N, T, len(Wh)))
    for n in range(N):
        h = h0
        for t in range(T):
            h = np.tanh(x[n, t] @ Wx + h @ Wh + b)
            out[n, t] = h
    return out


def lstm_forward(x: np.ndarray, Wx: np.ndarray, Wh: np.ndarray, b: np.ndarray,
                 h0: np.ndarray, c0: np.ndarray) -> np.ndarray:
    """Every state h_t of the LSTM from ``h0`` and ``c0``, sample by sample: with
    ``a = x_t Wx + h_{t−1} Wh + b``, gates ``i, f, o = σ(a)`` of the first three H-wide
    blocks and ``g = tanh`` of the fourth, ``c_t = f ⊙ c_{t−1} + i ⊙ g`` and
    ``h_t = o ⊙ tanh(c_t)``. x ``(N, T, D)``, out ``(N, T, H)``."""
    N, T, _ = x.shape
    H = len(Wh)
    out = np.zeros((N, T, H))
    for n in range(N):
        h, c = h0, c0
        for t in range(T):
            a = x[n, t] @ Wx + h @ Wh + b
            i, f, o = sigmoid(a[:H]), sigmoid(a[H:2 * H]), sigmoid(a[2 * H:3 * H])
            g = np.tanh(a[3 * H:])
            c = f * c + i * g
            h = o * np.tanh(c)
            out[n, t] = h
    return out
