"""Time forward + backward of conv2d and pooling at the sizes of W2, in float32.

    python -m benchmarks.bench_conv [--repeat 20] [--threads N] [--parts N]

Batches of 64: conv2d 1→32 filters 3×3 pad 1 on 28×28 (the first layer: no input
gradient) and 32→64 on 14×14, then 2×2 max and average pooling of 32×28×28 maps. The
median of ``--repeat`` runs is printed in milliseconds, and for `dl`'s convolutions their
GFLOP/s (2 per multiply-add, forward, weight gradient and, but for the first layer, input
gradient) and the share of the float32 2048³ matrix product's peak, measured at the
start on the same threads. ``--parts N`` runs `dl`'s layers inside
``threads.computing_on(N)``, the batch cut in N parts, as `dl train` runs a
convolutional model. Each convolution is also timed with the two im2col layouts
``dl_cli.nn.conv`` chose against: channel first ``(C·KH·KW, N·Ho·Wo)`` (strided copies
of ``Wo`` values at a time) and rows ``(N·Ho·Wo, C·KH·KW)``. Not a test: timings depend
on the machine and its BLAS.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

import dl_cli.nn  # noqa: F401  (registers the layers)
from dl_cli.registry import LAYERS

from dl_cli import threads

from .harness import blas_limit, matmul_peak

N = 64
CONVS = [((1, 28, 28), 32, False), ((32, 14, 14), 64, True)]  # in shape, filters, input grad


def median_ms(step, repeat: int) -> float:
    step()  # warm-up: allocations, BLAS threads
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def layer_step(layer, x):
    def step():
        out = layer.forward(x, train=True)
        layer.backward(out)
    return step


def fields(x: np.ndarray) -> np.ndarray:
    """The 3×3 receptive fields of x padded by 1: ``(N, C, H, W, 3, 3)`` (a view)."""
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    return sliding_window_view(padded, (3, 3), axis=(2, 3))


def add_fields(dfields: np.ndarray, x_shape) -> np.ndarray:
    """The adjoint of ``fields``: ``dfields`` ``(N, C, H, W, 3, 3)`` back onto pixels."""
    n, c, h, w = x_shape
    dpadded = np.zeros((n, c, h + 2, w + 2), dfields.dtype)
    for u in range(3):
        for v in range(3):
            dpadded[:, :, u:u + h, v:v + w] += dfields[..., u, v]
    return dpadded[:, :, 1:-1, 1:-1]


def channel_first_step(x, W, b, input_grad):
    """conv2d forward + backward with columns ``(C·KH·KW, N·Ho·Wo)``."""
    n, c, h, w = x.shape
    F = W.shape[0]

    def step():
        cols = fields(x).transpose(1, 4, 5, 0, 2, 3).reshape(c * 9, -1)
        out = np.empty((n, F, h, w), x.dtype)
        np.add((W.reshape(F, -1) @ cols).reshape(F, n, h, w).transpose(1, 0, 2, 3),
               b.reshape(F, 1, 1), out=out)
        dout2 = out.transpose(1, 0, 2, 3).reshape(F, -1)
        dW, db = dout2 @ cols.T, dout2.sum(axis=1)
        if input_grad:
            dcols = (W.reshape(F, -1).T @ dout2).reshape(c, 3, 3, n, h, w)
            add_fields(dcols.transpose(3, 0, 4, 5, 1, 2), x.shape)
        return dW, db
    return step


def rows_step(x, W, b, input_grad):
    """conv2d forward + backward with im2col rows ``(N·Ho·Wo, C·KH·KW)``."""
    n, c, h, w = x.shape
    F = W.shape[0]

    def step():
        rows = fields(x).transpose(0, 2, 3, 1, 4, 5).reshape(n * h * w, -1)
        out = np.ascontiguousarray((rows @ W.reshape(F, -1).T + b).reshape(n, h, w, F)
                                   .transpose(0, 3, 1, 2))
        dout2 = out.transpose(0, 2, 3, 1).reshape(-1, F)
        dW, db = dout2.T @ rows, dout2.sum(axis=0)
        if input_grad:
            drows = (dout2 @ W.reshape(F, -1)).reshape(n, h, w, c, 3, 3)
            add_fields(drows.transpose(0, 3, 1, 2, 4, 5), x.shape)
        return dW, db
    return step


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--threads", type=int, default=0, help="BLAS threads (default: NumPy's)")
    parser.add_argument("--parts", type=int, default=0,
                        help="dl's layers with the batch in this many parts (default: whole)")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    print(f"batch {N}, float32, forward + backward, median of {args.repeat}")
    with blas_limit(args.threads) if args.threads else contextlib.nullcontext():
        peak = matmul_peak()
        print(f"  float32 2048³ product: {peak:.0f} GFLOP/s")
        in_parts = (lambda: threads.computing_on(args.parts)) if args.parts else contextlib.nullcontext
        total_ms = total_flops = 0.0
        for in_shape, filters, input_grad in CONVS:
            conv = LAYERS.create({"type": "conv2d", "filters": filters, "kernel": 3, "pad": 1})
            conv.configure(np.float32, "he_normal")
            conv.build(in_shape, rng)
            conv.input_grad = input_grad
            x = rng.standard_normal((N, *in_shape), dtype=np.float32)
            W, b = conv.params["W"], conv.params["b"]
            label = f"conv2d {in_shape[0]}→{filters} on {in_shape[1]}×{in_shape[2]}"
            flops = 2 * N * in_shape[1] * in_shape[2] * filters * 9 * in_shape[0] * (
                3 if input_grad else 2)
            with in_parts():
                ms = median_ms(layer_step(conv, x), args.repeat)
            total_ms, total_flops = total_ms + ms, total_flops + flops
            rate = flops / ms / 1e6
            layout = f"dl (N, KH·KW·C, Ho·{'Wp' if conv.wide_columns(in_shape[0]) else 'Wo'})"
            print(f"  {label + ', ' + layout:50s} {ms:7.2f} ms  {rate:4.0f} GFLOP/s "
                  f"{100 * rate / peak:3.0f}% of peak")
            for layout, step in [("channel first", channel_first_step(x, W, b, input_grad)),
                                 ("rows", rows_step(x, W, b, input_grad))]:
                print(f"  {label + ', ' + layout:50s} {median_ms(step, args.repeat):7.2f} ms")
        rate = total_flops / total_ms / 1e6
        print(f"  {'both convolutions, dl':50s} {total_ms:7.2f} ms  {rate:4.0f} GFLOP/s "
              f"{100 * rate / peak:3.0f}% of peak")
        features = np.maximum(rng.standard_normal((N, 32, 28, 28), dtype=np.float32), 0)
        for spec in ("maxpool", "avgpool"):
            pool = LAYERS.create(spec)
            pool.configure(np.float32, "he_normal")
            pool.build(features.shape[1:], rng)
            step = layer_step(pool, features)
            print(f"  {spec + ' 2×2 on 32×28×28':50s} {median_ms(step, args.repeat):7.2f} ms")


if __name__ == "__main__":
    main()
