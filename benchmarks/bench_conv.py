"""Time forward + backward of conv2d and pooling on an MNIST-sized batch, in float32.

    python benchmarks/bench_conv.py [--repeat 20]

A batch of 64 images 1×28×28 goes through conv2d (32 filters 3×3, pad 1), then the
32×28×28 result through 2×2 pooling. The median of ``--repeat`` runs is printed in
milliseconds. The last line times the same convolution with the other im2col layout,
columns as rows ``(N·Ho·Wo, C·KH·KW)``, against which ``dl_cli.nn.conv`` chose
``(C·KH·KW, N·Ho·Wo)``. Not a test: timings depend on the machine and its BLAS.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from dl_cli.nn.conv import col2im
from dl_cli.registry import LAYERS

N, C, H, W = 64, 1, 28, 28
CONV = {"type": "conv2d", "filters": 32, "kernel": 3, "pad": 1}


def median_ms(step, repeat: int) -> float:
    step()  # warm-up: allocations, BLAS threads
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def forward_backward(layer, x):
    def step():
        out = layer.forward(x, train=True)
        layer.backward(out)
    return step


def rows_layout_step(x, Wt, b):
    """conv2d forward + backward with im2col rows ``(N·Ho·Wo, C·KH·KW)``, for comparison."""
    F = Wt.shape[0]
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))

    def step():
        rows = sliding_window_view(padded, (3, 3), axis=(2, 3)).transpose(0, 2, 3, 1, 4, 5)
        rows = rows.reshape(N * H * W, -1)
        out = np.ascontiguousarray((rows @ Wt.reshape(F, -1).T + b).reshape(N, H, W, F)
                                   .transpose(0, 3, 1, 2))
        dout2 = out.transpose(0, 2, 3, 1).reshape(-1, F)
        dW, db = dout2.T @ rows, dout2.sum(axis=0)
        drows = (dout2 @ Wt.reshape(F, -1)).reshape(N, H, W, C, 3, 3).transpose(3, 4, 5, 0, 1, 2)
        return dW, db, col2im(drows, x.shape, (3, 3), (1, 1), (1, 1))
    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    repeat = parser.parse_args().repeat

    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    conv = LAYERS.create(CONV)
    conv.configure(np.float32, "he_normal")
    conv_shape = conv.build((C, H, W), rng)
    features = conv.forward(x)

    print(f"batch {N}×{C}×{H}×{W} float32, forward + backward, median of {repeat}")
    conv_ms = median_ms(forward_backward(conv, x), repeat)
    print(f"  {'conv2d 32 filters 3×3 pad 1':40s} {conv_ms:7.2f} ms")
    for spec in ("maxpool", "avgpool"):
        pool = LAYERS.create(spec)
        pool.configure(np.float32, "he_normal")
        pool.build(conv_shape, rng)
        label = f"{spec} 2×2 on {'×'.join(map(str, conv_shape))}"
        print(f"  {label:40s} {median_ms(forward_backward(pool, features), repeat):7.2f} ms")
    rows_step = rows_layout_step(x, conv.params["W"], conv.params["b"])
    rows_ms = median_ms(rows_step, repeat)
    print(f"  {'conv2d, rows layout (N·Ho·Wo, C·KH·KW)':40s} {rows_ms:7.2f} ms")


if __name__ == "__main__":
    main()
