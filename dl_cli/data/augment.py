"""Data augmentation: random label-preserving changes to training batches, never to the
validation or test data. Each works on the whole batch at once, and draws per sample
(``draws.SampleDraws``): what happens to a sample depends on its key (its index and
epoch), never on the batch it comes in, so a batch cut into parts over workers is
changed as one process would change it.

```python
augment = build_augment(["flip", {"type": "crop", "pad": 4}], in_shape=(3, 32, 32))
X_batch = augment(X_batch, SampleDraws(stream, sample_keys(epoch, idx)))  # a new array
```

``flip``, ``crop`` and ``translate`` need images ``(N, C, H, W)`` and move their pixels,
so they refuse targets that are images too (labels of every pixel, an autoencoder's
input), which would stay where they were; ``noise`` works on any real-valued shape
(on an autoencoder's input only: a denoising autoencoder); none of them applies to
integer token ids (text), whose every change would be another token. ``build_augment``
calls each step's ``check(in_shape)`` so a wrong pairing fails when the run starts
(``DataError`` naming ``data.augment.i``), not in the first batch.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..checks import check_choice, check_float, check_int
from ..draws import SampleDraws
from ..registry import AUGMENTATIONS
from .base import DataError


class Augmentation:
    """``check(in_shape)`` refuses samples it cannot change (shape without the batch
    axis); ``__call__(X, draws)`` returns a changed copy of the batch X, drawing
    through ``draws`` (one row of random values per sample)."""

    def check(self, in_shape: tuple[int, ...]) -> None:
        pass

    def __call__(self, X: np.ndarray, draws: SampleDraws) -> np.ndarray:
        raise NotImplementedError


class ImageAugmentation(Augmentation):
    """An augmentation of images ``(C, H, W)`` that moves their pixels."""

    def check(self, in_shape):
        if len(in_shape) != 3:
            raise ValueError(f"needs image samples (C, H, W), but this data set's samples "
                             f"have shape {tuple(in_shape)}; only noise works on them")


def shifted_crops(X: np.ndarray, pad: int, draws: SampleDraws, mode: str = "constant") -> np.ndarray:
    """Pad every image of X ``(N, C, H, W)`` by ``pad`` on each side, then cut each back
    to ``H × W`` at its own random offset ``(dy, dx) ∈ [0, 2·pad]²``: a translation by
    ``(pad − dy, pad − dx)`` pixels.

    The ``(2·pad + 1)²`` windows of each padded image are a strided view
    ``(N, C, 2·pad + 1, 2·pad + 1, H, W)``; one fancy index picks each image's window.
    """
    N, C, H, W = X.shape
    padded = np.pad(X, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode=mode)
    windows = sliding_window_view(padded, (H, W), axis=(2, 3))
    dy, dx = draws.integers(2 * pad + 1, (2,)).T
    return windows[np.arange(N), :, dy, dx]


@AUGMENTATIONS.register("flip")
class Flip(ImageAugmentation):
    """Mirror each image left-right with probability ``probability``."""

    def __init__(self, probability: float = 0.5):
        self.probability = check_float("probability", probability, 0.0, 1.0)

    def __call__(self, X, draws):
        flipped = draws.uniform() < self.probability
        out = X.copy()
        out[flipped] = X[flipped, ..., ::-1]
        return out


@AUGMENTATIONS.register("crop")
class Crop(ImageAugmentation):
    """Pad by ``pad`` pixels (``mode``: constant zeros, reflect or edge), then crop a
    random window of the original size. ``pad: 0`` changes nothing."""

    def __init__(self, pad: int = 2, mode: str = "constant"):
        self.pad = check_int("pad", pad, 0)
        self.mode = check_choice("mode", mode, ("constant", "reflect", "edge"))

    def check(self, in_shape):
        super().check(in_shape)
        if self.pad >= min(in_shape[1:]):
            raise ValueError(f"pad must be smaller than the image ({in_shape[1]}×{in_shape[2]}), "
                             f"got {self.pad}: most crops would be padding")

    def __call__(self, X, draws):
        return shifted_crops(X, self.pad, draws, self.mode)


@AUGMENTATIONS.register("translate")
class Translate(ImageAugmentation):
    """Shift each image by up to ``max_shift`` pixels in each direction, filling with 0."""

    def __init__(self, max_shift: int = 2):
        self.max_shift = check_int("max_shift", max_shift, 0)

    def check(self, in_shape):
        super().check(in_shape)
        if self.max_shift >= min(in_shape[1:]):
            raise ValueError(f"max_shift must be smaller than the image "
                             f"({in_shape[1]}×{in_shape[2]}), got {self.max_shift}")

    def __call__(self, X, draws):
        return shifted_crops(X, self.max_shift, draws)


@AUGMENTATIONS.register("noise")
class Noise(Augmentation):
    """Add Gaussian noise of standard deviation ``std`` to every input value."""

    def __init__(self, std: float = 0.1):
        self.std = check_float("std", std)

    def __call__(self, X, draws):
        return X + X.dtype.type(self.std) * draws.normal(X.shape[1:]).astype(X.dtype)


class Pipeline:
    """Augmentations applied one after another to a training batch."""

    def __init__(self, steps: list[Augmentation]):
        self.steps = steps

    def __call__(self, X: np.ndarray, draws: SampleDraws) -> np.ndarray:
        for step in self.steps:
            X = step(X, draws)
        return X


def build_augment(specs: list, in_shape: tuple[int, ...], dtype=np.float64,
                  image_targets: bool = False) -> Pipeline | None:
    """The augmentations a config lists, checked against the samples' shape and dtype and,
    with ``image_targets`` (labels of every pixel, an autoencoder's input), refusing the
    steps that move pixels; None if none. A step that does not fit raises ``DataError``
    naming ``data.augment.i``."""
    if not specs:
        return None
    steps = [AUGMENTATIONS.create(spec) for spec in specs]
    for i, step in enumerate(steps):
        where = f"data.augment.{i} ({step.registered_name})"
        if np.dtype(dtype).kind in "biu":
            raise DataError(f"{where} changes real-valued inputs, but this data set's inputs "
                            f"are integer token ids; remove it (no augmentation applies to "
                            f"tokens)")
        if image_targets and isinstance(step, ImageAugmentation):
            raise DataError(f"{where} moves the pixels of the inputs, but the targets (labels "
                            f"of every pixel, or the input itself) would stay where they "
                            f"were; remove it (noise changes the inputs alone)")
        try:
            step.check(tuple(in_shape))
        except ValueError as error:
            raise DataError(f"{where}: {error}") from None
    return Pipeline(steps)
