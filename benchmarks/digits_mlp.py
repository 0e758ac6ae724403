"""Digits: an MLP 64-256-10 with ReLU on scikit-learn's 8×8 digits (60/20/20 split,
pixels scaled to [0, 1] on the training split), Adam (lr 1e-3), batch 64, 30 epochs;
one timed unit is a whole fit from fresh weights, then the test accuracy.

    python -m benchmarks.digits_mlp [--size tiny] [--repeats 7]

Against scikit-learn's ``MLPClassifier`` with the same layers, optimizer, batch size and
epochs (no L2 penalty, no early stopping), on the same float32 splits.
"""

from __future__ import annotations

from dl_cli.data.loading import load
from dl_cli.schema import DataConfig

from . import harness
from .trainers import DLTrainer, SklearnTrainer

EPOCHS = {"full": 30, "tiny": 2}
HIDDEN, CLASSES = 256, 10
BATCH = 64
OPTIMIZER = {"type": "adam", "lr": 1e-3}
LAYERS = [{"type": "affine", "units": HIDDEN}, "relu", {"type": "affine", "units": CLASSES}]


def workload(size: str = "full") -> harness.Workload:
    epochs = EPOCHS[size]
    splits = load(DataConfig(dataset="digits", preprocess=["minmax"]), seed=0)
    X, y = splits.train.X, splits.train.y
    test = (splits.test.X, splits.test.y)
    options = dict(epochs=epochs, from_scratch=True, test=test)
    return harness.Workload(
        name="digits",
        title=f"MLP 64-256-10, {len(X):,} training images, batch {BATCH}, {epochs} epochs, Adam",
        module=__name__, size=size, unit="s/fit",
        flops=epochs * len(X) * harness.training_flops(LAYERS, X.shape[1:]),
        trainers={
            "dl": lambda: DLTrainer(LAYERS, X, y, OPTIMIZER, BATCH, **options),
            "sklearn": lambda: SklearnTrainer((HIDDEN,), X, y, OPTIMIZER, BATCH, **options),
        })


if __name__ == "__main__":
    harness.main([__name__], description=__doc__.split("\n\n")[0])
