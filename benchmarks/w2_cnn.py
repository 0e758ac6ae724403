"""W2: a small CNN on 10,000 images 1×28×28, batch 64, SGD (lr 0.01); one timed unit is
one epoch:

    conv 3×3·32 pad 1 → relu → maxpool 2 → conv 3×3·64 pad 1 → relu → maxpool 2 → affine 10

    python -m benchmarks.w2_cnn [--size tiny] [--repeats 7] [--frameworks dl,torch]
                                [--dtype float32|float64]

Against PyTorch CPU (float32, or float64 in both with ``--dtype float64``). Synthetic images, one random centre per class plus noise.
"""

from __future__ import annotations

from . import harness
from .trainers import dl_and_torch

SAMPLES = {"full": 10_000, "tiny": 128}
IN_SHAPE, CLASSES = (1, 28, 28), 10
DTYPES = ("float32", "float64")
BATCH = 64
OPTIMIZER = {"type": "sgd", "lr": 0.01}
LAYERS = [{"type": "conv2d", "filters": 32, "kernel": 3, "pad": 1}, "relu", "maxpool",
          {"type": "conv2d", "filters": 64, "kernel": 3, "pad": 1}, "relu", "maxpool",
          {"type": "affine", "units": CLASSES}]


def torch_module():
    from torch import nn

    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(64 * 7 * 7, CLASSES))


def workload(size: str = "full", dtype: str = "float32") -> harness.Workload:
    n = SAMPLES[size]
    X, y = harness.synthetic_classes(n, IN_SHAPE, CLASSES, dtype=dtype)
    return harness.Workload(
        name="W2",
        title=f"CNN conv32-pool-conv64-pool-affine, 1×28×28, batch {BATCH}, {n:,} samples, SGD"
              + ("" if dtype == "float32" else f", {dtype}"),
        module=__name__, size=size, unit="s/epoch", dtype=dtype,
        flops=n * harness.training_flops(LAYERS, IN_SHAPE),
        trainers=dl_and_torch(LAYERS, torch_module, X, y, OPTIMIZER, BATCH))


if __name__ == "__main__":
    harness.main([__name__], description=__doc__.split("\n\n")[0])
