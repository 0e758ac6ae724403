"""W4: a small ResNet on 10,000 CIFAR-10-sized images 3×32×32, batch 128, SGD with
momentum (lr 0.01, μ 0.9); one timed unit is one epoch:

    conv 3×3·32 pad 1 → batchnorm → relu
    → residual [conv 3×3·32 → batchnorm → relu → conv 3×3·32 → batchnorm] (identity) → relu
    → residual [conv 3×3·64 stride 2 → batchnorm → relu → conv 3×3·64 → batchnorm]
      (shortcut: conv 1×1·64 stride 2) → relu
    → global average pooling → affine 10

    python -m benchmarks.w4_resnet [--size tiny] [--repeats 7] [--frameworks dl,torch]

Against the same network in PyTorch CPU (float32; every convolution with a bias, as
`dl`'s are, and the projection shortcut without batchnorm, as `dl`'s ``residual`` builds
it). Synthetic images, one random centre per class plus noise.
"""

from __future__ import annotations

from . import harness
from .trainers import dl_and_torch

SAMPLES = {"full": 10_000, "tiny": 256}
IN_SHAPE, CLASSES = (3, 32, 32), 10
BATCH = 128
OPTIMIZER = {"type": "momentum", "lr": 0.01, "momentum": 0.9}


def conv(filters: int, stride: int = 1) -> dict:
    return {"type": "conv2d", "filters": filters, "kernel": 3, "stride": stride, "pad": 1}


LAYERS = [
    conv(32), "batchnorm", "relu",
    {"type": "residual", "layers": [conv(32), "batchnorm", "relu", conv(32), "batchnorm"]},
    "relu",
    {"type": "residual", "layers": [conv(64, 2), "batchnorm", "relu", conv(64), "batchnorm"]},
    "relu",
    "global_avgpool",
    {"type": "affine", "units": CLASSES},
]


def torch_module():
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, channels_in: int, channels: int, stride: int):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(channels_in, channels, 3, stride, 1), nn.BatchNorm2d(channels),
                nn.ReLU(), nn.Conv2d(channels, channels, 3, 1, 1), nn.BatchNorm2d(channels))
            self.shortcut = (nn.Identity() if stride == 1 and channels_in == channels
                             else nn.Conv2d(channels_in, channels, 1, stride))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x) + self.shortcut(x)

    return nn.Sequential(nn.Conv2d(3, 32, 3, 1, 1), nn.BatchNorm2d(32), nn.ReLU(),
                         Block(32, 32, 1), nn.ReLU(), Block(32, 64, 2), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, CLASSES))


def workload(size: str = "full") -> harness.Workload:
    n = SAMPLES[size]
    X, y = harness.synthetic_classes(n, IN_SHAPE, CLASSES)
    return harness.Workload(
        name="W4",
        title=f"ResNet conv32-res32-res64/2-gap-affine, 3×32×32, batch {BATCH}, {n:,} "
              f"samples, SGD momentum",
        module=__name__, size=size, unit="s/epoch",
        flops=n * harness.training_flops(LAYERS, IN_SHAPE),
        trainers=dl_and_torch(LAYERS, torch_module, X, y, OPTIMIZER, BATCH))


if __name__ == "__main__":
    harness.main([__name__], description=__doc__.split("\n\n")[0])
