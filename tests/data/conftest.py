"""Fixtures of the data tests."""

import numpy as np
import pytest

from dl_cli.registry import DATASETS


@pytest.fixture(scope="session")
def raw():
    """``raw(spec, seed=0)``: the raw data the data set of ``spec`` loads, before any split."""
    def load(spec, seed=0):
        return DATASETS.create(spec).load(np.random.default_rng(seed))
    return load
