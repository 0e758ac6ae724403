"""Data: built-in and file datasets, splits, preprocessing and augmentation.

```python
splits = load(config.data, seed=0, dtype="float32")   # preprocessing fitted on train only
splits.train.X, splits.train.y, splits.val, splits.test, splits.in_shape, splits.num_classes
augment = build_augment(config.data.augment, splits.in_shape)   # None, or augment(X, draws)
folds = kfold_indices(splits.train.y, k=5, seed=0)             # [(train_idx, val_idx), ...]
```

Importing the package registers every dataset, preprocessing step and augmentation;
nothing is read or generated (and scikit-learn is not imported) until ``load`` runs.
"""

from . import datasets, files, image_files, preprocess, sequences, shapes, sklearn_sets  # noqa: F401  (registration)
from .augment import build_augment
from .base import DataError, Dataset, RawData
from .loading import Split, Splits, apply_steps, load
from .split import kfold_indices, split_indices

__all__ = [
    "DataError",
    "Dataset",
    "RawData",
    "Split",
    "Splits",
    "apply_steps",
    "build_augment",
    "kfold_indices",
    "load",
    "split_indices",
]
