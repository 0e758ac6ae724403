"""Layers that cut their batch into parts on threads give what they give on one thread,
and the Solver cuts the batches of convolutional models only."""

import os
import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from dl_cli import gradcheck, threads
from dl_cli.data.loading import Split, Splits
from dl_cli.nn.model import Model
from dl_cli.registry import LAYERS, OPTIMIZERS
from dl_cli.schema import TrainConfig
from dl_cli.solver import Solver

# (spec, input shape per sample): the layers that cut their batch, conv2d with stride 1
# (wide columns, and narrow ones for a thin input) and 2, conv2d_transpose, maxpool
# with tiling and other windows, relu, batchnorm over channels and over features; and
# affine, which computes on the whole batch inside ``computing_on`` too
SPLIT_LAYERS = [
    ({"type": "conv2d", "filters": 4, "kernel": 3, "pad": 1}, (3, 6, 7)),
    ({"type": "conv2d", "filters": 12, "kernel": 3, "pad": 1}, (1, 6, 7)),
    ({"type": "conv2d", "filters": 3, "kernel": 3, "stride": 2, "pad": 1}, (2, 7, 5)),
    ({"type": "conv2d_transpose", "filters": 3, "kernel": 3, "stride": 2, "pad": 1,
      "output_padding": 1}, (2, 4, 5)),
    ("maxpool", (3, 6, 8)),
    ({"type": "maxpool", "pool": 3, "stride": 2}, (2, 7, 7)),
    ("relu", (3, 5, 5)),
    ("batchnorm", (3, 4, 5)),
    ("batchnorm", (6,)),
    ({"type": "affine", "units": 5}, (2, 3, 4)),
]


@pytest.fixture
def split_everything(monkeypatch):
    """Cut even the tests' small batches (no minimum size)."""
    monkeypatch.setattr(threads, "SMALL", 0)


def build(spec, in_shape, seed=0):
    layer = LAYERS.create(spec)
    layer.configure(np.float64, "he_normal")
    layer.build(in_shape, np.random.default_rng(seed))
    return layer


def forward_backward(layer, x, dout_seed=1):
    out = layer.forward(x)
    dout = np.random.default_rng(dout_seed).standard_normal(out.shape)
    dx = layer.backward(dout)
    return out, dx, {k: g.copy() for k, g in layer.grads.items()}


def test_split_covers_the_range_in_even_contiguous_parts():
    assert threads.split(10, 3) == [slice(0, 3), slice(3, 6), slice(6, 10)]
    assert threads.split(2, 4) == [slice(0, 1), slice(1, 2)]  # never an empty part
    assert threads.split(5, 1) == [slice(0, 5)]


def test_in_parts_runs_the_parts_at_once_and_returns_them_in_order(split_everything):
    together = threading.Barrier(3, timeout=10)  # passes only when all three parts run at once

    def work(part):
        together.wait()
        return part.start

    with threads.computing_on(3):
        assert threads.in_parts(9, work, size=9) == [0, 3, 6]
    assert threads.in_parts(9, lambda part: part, size=9) == [slice(0, 9)]  # outside: one part


def test_computing_on_holds_blas_to_one_thread_and_restores_it():
    before = [pool["num_threads"] for pool in threadpool_info()]
    with threads.computing_on(2):
        assert threads.parts() == 2
        assert all(pool["num_threads"] == 1
                   for pool in threadpool_info() if pool["user_api"] == "blas")
    assert threads.parts() == 1
    assert [pool["num_threads"] for pool in threadpool_info()] == before


def test_a_failing_part_raises_after_every_part_ended(split_everything):
    ended = []

    def work(part):
        if part.start == 0:
            raise ValueError("part 0")
        ended.append(part.start)

    with threads.computing_on(2), pytest.raises(ValueError, match="part 0"):
        threads.in_parts(4, work, size=4)
    assert ended == [2]


@pytest.mark.parametrize("spec,in_shape", SPLIT_LAYERS)
def test_layers_in_parts_match_one_thread(split_everything, spec, in_shape):
    x = np.random.default_rng(2).standard_normal((5, *in_shape))
    with threads.computing_on(1):  # one thread, BLAS's too
        serial = forward_backward(build(spec, in_shape), x)
    with threads.computing_on(3):
        parted = forward_backward(build(spec, in_shape), x)
    same = dict(rtol=1e-12, atol=1e-12)  # BLAS may sum a smaller block in another order
    np.testing.assert_allclose(parted[0], serial[0], **same)
    if serial[1] is not None:
        np.testing.assert_allclose(parted[1], serial[1], **same)
    for name, grad in serial[2].items():  # sums over the batch: the parts' sums added
        np.testing.assert_allclose(parted[2][name], grad, **same)


@pytest.mark.parametrize("spec,in_shape", SPLIT_LAYERS)
def test_layers_in_parts_pass_the_gradient_check(split_everything, spec, in_shape):
    layer = build(spec, in_shape)
    x = np.random.default_rng(3).standard_normal((4, *in_shape))
    with threads.computing_on(2):
        checks = gradcheck.check_layer(layer, x, np.random.default_rng(4), max_coords=None)
    assert checks and all(check.passed for check in checks), checks


def solver_for(layers, in_shape):
    X = np.random.default_rng(0).standard_normal((8, *in_shape)).astype(np.float32)
    y = np.arange(8) % 2
    split = Split(X, y)
    splits = Splits(split, split, split, task="classification", num_classes=2, info={})
    model = Model(layers, in_shape, seed=0)
    return Solver(model, splits, OPTIMIZERS.create({"type": "sgd", "lr": 0.1}),
                  TrainConfig(epochs=1, batch_size=4), run=None, progress=False)


def test_the_solver_cuts_batches_for_convolutional_models_only():
    cnn = solver_for([{"type": "conv2d", "filters": 2, "kernel": 3}, "relu",
                      {"type": "affine", "units": 2}], (1, 5, 5))
    mlp = solver_for([{"type": "affine", "units": 4}, "relu", {"type": "affine", "units": 2}],
                     (3,))
    assert cnn.parts == threads.blas_threads() and mlp.parts is None
    seen = []
    with cnn.computing():
        seen.append(threads.parts())
    with mlp.computing():
        seen.append(threads.parts())
    assert seen == [threads.blas_threads(), 1]


def test_a_convolution_inside_a_block_asks_for_batch_parts_too():
    residual = {"type": "residual", "layers": [
        {"type": "conv2d", "filters": 1, "kernel": 3, "pad": 1}, "relu"]}
    nested = solver_for([residual, {"type": "affine", "units": 2}], (1, 5, 5))
    pooled = solver_for(["maxpool", {"type": "affine", "units": 2}], (1, 4, 4))
    assert nested.model.wants_batch_parts and nested.parts == threads.blas_threads()
    assert not pooled.model.wants_batch_parts and pooled.parts is None


def test_blas_most_asks_blas_and_puts_its_threads_back():
    before = threads.blas_threads()
    most = threads.blas_most(10**6)
    assert threads.blas_most(1) == 1 and 1 <= most <= 10**6
    # past a C int, BLAS is asked for the largest one (threadpoolctl fails beyond 2**64)
    assert threads.blas_most(2**64 + 2) == threads.blas_most(threads.MOST_THREADS) <= threads.MOST_THREADS
    if most < 10**6:  # OpenBLAS: its build's maximum, whatever more it is asked
        assert threads.blas_most(most) == most and threads.blas_most(most + 1) == most
    assert threads.blas_threads() == before


def test_cores_are_the_ones_this_process_may_run_on():
    if hasattr(os, "sched_getaffinity"):
        assert threads.cores() == len(os.sched_getaffinity(0))
    assert 1 <= threads.cores() <= (os.cpu_count() or 1)
