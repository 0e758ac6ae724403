"""W1: an MLP 784-512-256-10 with ReLU and softmax cross-entropy, trained by SGD (lr
0.01) in batches of 128 on 60,000 MNIST-sized samples; one timed unit is one epoch.

    python -m benchmarks.w1_mlp [--size tiny] [--repeats 7] [--frameworks dl,torch]
                                [--dtype float32|float64]

Against PyTorch CPU and scikit-learn's ``MLPClassifier`` (same layers, plain SGD,
float32, or float64 in all three with ``--dtype float64``). The data are synthetic (one random centre per class plus noise): the
timing does not depend on what the pixels show.
"""

from __future__ import annotations

from . import harness
from .trainers import SklearnTrainer, dl_and_torch

SAMPLES = {"full": 60_000, "tiny": 512}
IN_SHAPE, HIDDEN, CLASSES = (784,), (512, 256), 10
DTYPES = ("float32", "float64")
BATCH = 128
OPTIMIZER = {"type": "sgd", "lr": 0.01}
LAYERS = [{"type": "affine", "units": HIDDEN[0]}, "relu",
          {"type": "affine", "units": HIDDEN[1]}, "relu",
          {"type": "affine", "units": CLASSES}]


def torch_module():
    from torch import nn

    return nn.Sequential(nn.Linear(IN_SHAPE[0], HIDDEN[0]), nn.ReLU(),
                         nn.Linear(HIDDEN[0], HIDDEN[1]), nn.ReLU(),
                         nn.Linear(HIDDEN[1], CLASSES))


def workload(size: str = "full", dtype: str = "float32") -> harness.Workload:
    n = SAMPLES[size]
    X, y = harness.synthetic_classes(n, IN_SHAPE, CLASSES, dtype=dtype)
    return harness.Workload(
        name="W1",
        title=f"MLP 784-512-256-10, batch {BATCH}, {n:,} samples, SGD"
              + ("" if dtype == "float32" else f", {dtype}"),
        module=__name__, size=size, unit="s/epoch", dtype=dtype,
        flops=n * harness.training_flops(LAYERS, IN_SHAPE),
        trainers={**dl_and_torch(LAYERS, torch_module, X, y, OPTIMIZER, BATCH),
                  "sklearn": lambda: SklearnTrainer(HIDDEN, X, y, OPTIMIZER, BATCH)})


if __name__ == "__main__":
    harness.main([__name__], description=__doc__.split("\n\n")[0])
