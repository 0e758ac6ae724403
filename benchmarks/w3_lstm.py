"""W3: an LSTM over sequences of T 50 steps of D 64 features, H 128, its last state
into an affine layer of 10 classes, softmax cross-entropy, SGD (lr 0.01), batches of
32; one timed unit is 16 batches, reported per batch (forward, backward and update).

    python -m benchmarks.w3_lstm [--size tiny] [--repeats 7] [--frameworks dl,torch]

Against PyTorch CPU's ``nn.LSTM`` (float32). Synthetic sequences.
"""

from __future__ import annotations

from . import harness
from .trainers import dl_and_torch

BATCHES = {"full": 16, "tiny": 2}
STEPS, FEATURES, HIDDEN, CLASSES = 50, 64, 128, 10
BATCH = 32
OPTIMIZER = {"type": "sgd", "lr": 0.01}
LAYERS = [{"type": "lstm", "hidden": HIDDEN, "return_sequences": False},
          {"type": "affine", "units": CLASSES}]


def torch_module():
    import torch
    from torch import nn

    class LastState(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(FEATURES, HIDDEN, batch_first=True)
            self.head = nn.Linear(HIDDEN, CLASSES)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out, _ = self.lstm(x)
            return self.head(out[:, -1])

    return LastState()


def workload(size: str = "full") -> harness.Workload:
    batches = BATCHES[size]
    n = batches * BATCH
    X, y = harness.synthetic_classes(n, (STEPS, FEATURES), CLASSES)
    return harness.Workload(
        name="W3",
        title=f"LSTM T {STEPS}, D {FEATURES}, H {HIDDEN} → affine {CLASSES}, batch {BATCH}, SGD",
        module=__name__, size=size, unit="ms/batch", per_call=batches, scale=1000,
        flops=n * harness.training_flops(LAYERS, (STEPS, FEATURES)),
        trainers=dl_and_torch(LAYERS, torch_module, X, y, OPTIMIZER, BATCH))


if __name__ == "__main__":
    harness.main([__name__], description=__doc__.split("\n\n")[0])
