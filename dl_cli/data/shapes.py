"""``shapes``: a segmentation data set drawn with NumPy, a label for every pixel.

```python
raw = DATASETS.create({"type": "shapes", "samples": 600}).load(rng)
raw.X   # (600, 1, 16, 16) images: shapes brighter than a noisy background
raw.y   # (600, 16, 16) labels: 0 background, 1 circle, 2 square, 3 triangle
```

A fully convolutional network must tell the shapes apart by their outline, not by their
brightness (drawn at random for every shape), and label each pixel: the task of the
notes' segmentation chapter, small enough to train on a laptop's cores in a minute.
"""

from __future__ import annotations

import numpy as np

from ..checks import check_float, check_int
from ..registry import DATASETS
from .base import Dataset, RawData

SHAPE_NAMES = ["background", "circle", "square", "triangle"]


def shape_mask(kind: int, rows: np.ndarray, cols: np.ndarray, centre: tuple[float, float],
               radius: float) -> np.ndarray:
    """The pixels ``(rows, cols)`` inside shape ``kind`` (1 circle, 2 square, 3 triangle)
    of the given centre and radius, all three of about the same height and width 2·radius:

    - circle: ``(i − cy)² + (j − cx)² ≤ r²``;
    - square: ``|i − cy| ≤ r·0.85`` and ``|j − cx| ≤ r·0.85`` (close to the circle's area);
    - triangle, apex up: rows ``cy − r ≤ i ≤ cy + r``, half width ``(i − cy + r)/2`` there.
    """
    cy, cx = centre
    di, dj = rows - cy, cols - cx
    if kind == 1:
        return di * di + dj * dj <= radius * radius
    if kind == 2:
        side = 0.85 * radius
        return (np.abs(di) <= side) & (np.abs(dj) <= side)
    return (np.abs(di) <= radius) & (np.abs(dj) <= (di + radius) / 2)


def grown(mask: np.ndarray) -> np.ndarray:
    """``mask`` and the pixels next to it (above, below, left, right)."""
    out = mask.copy()
    out[1:] |= mask[:-1]
    out[:-1] |= mask[1:]
    out[:, 1:] |= mask[:, :-1]
    out[:, :-1] |= mask[:, 1:]
    return out


@DATASETS.register("shapes")
class Shapes(Dataset):
    """Images of random circles, squares and triangles on a noisy background, with a label
    for every pixel: 0 background, 1 circle, 2 square, 3 triangle.

    Each of ``samples`` images ``(1, size, size)`` holds 1 to ``max_shapes`` shapes of
    random kind, centre, radius (``size/8`` to ``size/4``) and brightness (0.5 to 1), on
    a background of 0, plus Gaussian noise of std ``noise`` on every pixel. Shapes do
    not touch (a shape that finds no free place in 20 draws of its centre is left out),
    so each can be told by its whole outline.
    Labels ``y (samples, size, size)``; train with per-pixel ``softmax_cross_entropy``.
    """

    per_pixel = True
    attempts = 20  # places tried for a shape before it is left out

    def __init__(self, samples: int = 600, size: int = 16, max_shapes: int = 3,
                 noise: float = 0.1):
        self.samples = check_int("samples", samples)
        self.size = check_int("size", size, 8)
        self.max_shapes = check_int("max_shapes", max_shapes)
        self.noise = check_float("noise", noise)

    def load(self, rng):
        n, size = self.samples, self.size
        X = np.zeros((n, 1, size, size))
        y = np.zeros((n, size, size), dtype=np.int64)
        rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
        for image, labels in zip(X[:, 0], y):
            for _ in range(rng.integers(1, self.max_shapes + 1)):
                kind = int(rng.integers(1, 4))
                radius = rng.uniform(size / 8, size / 4)
                for _ in range(self.attempts):  # a place where it touches no other shape
                    centre = tuple(rng.uniform(radius, size - 1 - radius, size=2))
                    inside = shape_mask(kind, rows, cols, centre, radius)
                    if not labels[grown(inside)].any():
                        image[inside] = rng.uniform(0.5, 1.0)
                        labels[inside] = kind
                        break
        X += self.noise * rng.standard_normal(X.shape)
        return RawData(X, y, classes=len(SHAPE_NAMES), names=list(SHAPE_NAMES))
