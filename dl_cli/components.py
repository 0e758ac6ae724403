"""The components of a config: taken from what validation built to check them, or made
anew, and the model made of them.

Validation builds every component spec once to check it and keeps it in the config
(``Config.components``); the first assembly takes each, a later one (the next fold, a
worker's copy) builds its own.
"""

from __future__ import annotations

from .nn.model import Model
from .registry import LAYERS, LOSSES, Registry
from .schema import Config


def component(cfg: Config, path: str, spec, registry: Registry):
    """The component at key ``path``: the one validation built to check it, when the
    config still holds it (``Config.components``), else a new one."""
    return cfg.components.take(path, spec, registry) if cfg.components else registry.create(spec)


def build_model(cfg: Config, in_shape: tuple[int, ...], dtype: str | None = None) -> Model:
    """The config's model for samples of ``in_shape``; a layer that does not fit its
    input is a ShapeError that starts with its key path (``model.layers.3 (maxpool)``,
    ``model.layers.2.layers.0 (affine)`` inside a residual block)."""
    layers = [component(cfg, f"model.layers.{i}", spec, LAYERS)
              for i, spec in enumerate(cfg.model.layers)]
    return Model(layers, in_shape, loss=component(cfg, "model.loss", cfg.model.loss, LOSSES),
                 init=cfg.model.init, l1=cfg.regularization.l1, l2=cfg.regularization.l2,
                 dtype=dtype or cfg.train.dtype, seed=cfg.seed, path="model.layers")
