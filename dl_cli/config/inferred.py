"""Sizes a config may leave to its data: the vocabulary of a data set of tokens.

With a data set of token sequences (``text``, ``hello``: ``Dataset.token_count``), a
model whose first layer is an ``embedding`` without ``vocab`` gets the number of
distinct tokens there, and one whose last layer (``temporal_affine`` or ``affine``)
has no ``units`` gets it too: one score per token that may come next. The sizes are
written into the config, so the run folder's ``config.yaml`` states them.
"""

from __future__ import annotations

import copy

from ..data import DataError
from ..registry import DATASETS, Registry, RegistryError

EMBEDDINGS = ("embedding",)
OUTPUTS = ("temporal_affine", "affine")


def token_count(raw: dict) -> int | None:
    """The number of distinct tokens of the config's data set, or None (not tokens, or a
    data spec or file that validation and loading will name)."""
    data = raw.get("data")
    spec = data.get("dataset") if isinstance(data, dict) else None
    if spec is None:
        return None
    try:
        return DATASETS.create(spec).token_count()
    except (RegistryError, ValueError, TypeError, DataError, OSError):
        return None


def with_option(spec, key: str, value: int, kinds: tuple[str, ...]):
    """``spec`` with ``key: value`` when it names one of ``kinds`` and leaves ``key`` out."""
    if not (isinstance(spec, str) or isinstance(spec, dict) and isinstance(spec.get("type"), str)):
        return spec
    name, options = Registry.split_spec(spec)
    if name not in kinds or key in options:
        return spec
    return {"type": name, **options, key: value}


def fill_token_sizes(raw: dict) -> dict:
    """``raw`` with the embedding's ``vocab`` and the output layer's ``units`` filled in
    from the data's tokens when the config leaves them out."""
    model = raw.get("model") if isinstance(raw, dict) else None
    layers = model.get("layers") if isinstance(model, dict) else None
    if not isinstance(layers, list) or not layers:
        return raw
    if (with_option(layers[0], "vocab", 0, EMBEDDINGS) is layers[0]
            and with_option(layers[-1], "units", 0, OUTPUTS) is layers[-1]):
        return raw  # nothing to fill in: the data set is not built for it
    count = token_count(raw)
    if count is None:
        return raw
    filled = copy.deepcopy(raw)
    layers = filled["model"]["layers"]
    layers[0] = with_option(layers[0], "vocab", count, EMBEDDINGS)
    layers[-1] = with_option(layers[-1], "units", count, OUTPUTS)
    return filled
