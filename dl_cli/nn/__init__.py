"""The layer library: importing it registers every layer, loss and initializer."""

from . import (  # noqa: F401  (registration)
    activations,
    affine,
    blocks,
    conv,
    dropout,
    init,
    losses,
    normalization,
    pool,
    recurrent,
    resample,
    temporal,
    transpose,
)
from .layer import Example, Layer, ShapeError
from .model import Model

__all__ = ["Example", "Layer", "Model", "ShapeError"]
