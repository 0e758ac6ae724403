"""Asynchronous SGD with a parameter server (Downpour): digits trains, every update's
staleness is recorded, and the record replays the run exactly, across a resume too."""

import json
import os
import signal
import time

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from dl_cli import training
from dl_cli.config import load_config
from dl_cli.distributed.parameter_server import batches_per_pass, worker_batch
from dl_cli.distributed.replay import replay
from dl_cli.stopping import Interrupted
from dl_cli.storage import load_npz

ASYNC = ["parallel.mode=async", "parallel.workers=3", "train.epochs=6",
         "checkpoint.every_seconds=0"]


def lines_of(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def updates_of(run_dir):
    return [line for line in lines_of(run_dir) if "staleness" in line]


def assert_replays(run_dir):
    """The record of updates, replayed in one process, gives last.npz bit for bit."""
    with threadpool_limits(1):  # as each Dask worker computes
        params, buffers = replay(run_dir)
    last = load_npz(run_dir / "checkpoints/last.npz")
    for name, value in params.items():
        np.testing.assert_array_equal(value, last[f"param/{name}"], err_msg=name)
    for name, value in buffers.items():
        np.testing.assert_array_equal(value, last[f"buffer/{name}"], err_msg=name)


def assert_each_batch_applied_once(updates, workers):
    assert [u["step"] for u in updates] == list(range(1, len(updates) + 1))
    for k in range(workers):
        assert [u["batch"] for u in updates if u["worker"] == k] == \
            list(range(sum(u["worker"] == k for u in updates)))


def test_async_training_reaches_95_percent_and_records_the_staleness_of_every_update(
        cluster, tmp_path, digits_mlp, steps_per_epoch):
    cfg = load_config(digits_mlp, [*ASYNC, "train.epochs=30"])  # the config's, early stopping
    run = training.start(cfg, tmp_path / "run")
    summary = training.train(cfg, run, progress=False, cluster=cluster)
    assert summary["test"]["test/acc"] >= 0.95
    updates = updates_of(tmp_path / "run")
    assert len(updates) == summary["epochs"] * steps_per_epoch  # a synchronous epoch's gradients
    assert_each_batch_applied_once(updates, 3)
    assert all(u["staleness"] >= 0 for u in updates) and {u["worker"] for u in updates} == {0, 1, 2}
    assert max(u["staleness"] for u in updates) >= 1  # three workers: some gradients are stale
    for record in (line for line in lines_of(tmp_path / "run") if "lr" in line):
        losses = [u["train/batch_loss"] for u in updates if u["epoch"] == record["epoch"]]
        assert record["train/objective"] == pytest.approx(np.mean(losses), rel=1e-12)
    assert_replays(tmp_path / "run")


def test_a_resumed_async_run_continues_its_record_and_still_replays(
        cluster, tmp_path, observe_solvers, digits_mlp, steps_per_epoch):
    cfg = load_config(digits_mlp, [*ASYNC, "parallel.workers=2", "train.epochs=3"])
    run_dir = tmp_path / "run"

    def ctrl_c_in_epoch_2(solver, event, payload):  # as epoch 1 ends
        if event == "epoch" and payload["record"]["epoch"] == 1:
            solver.request_stop(signal.SIGINT)

    with observe_solvers(ctrl_c_in_epoch_2), pytest.raises(Interrupted):
        training.train(cfg, training.start(cfg, run_dir), progress=False, cluster=cluster)
    stopped = updates_of(run_dir)
    assert steps_per_epoch <= len(stopped) < 2 * steps_per_epoch
    cfg, run = training.resume(run_dir)
    summary = training.train(cfg, run, resuming=True, progress=False, cluster=cluster)
    assert summary["status"] == "completed" and summary["epochs"] == 3
    updates = updates_of(run_dir)
    assert updates[:len(stopped)] == stopped and len(updates) == 3 * steps_per_epoch
    assert_each_batch_applied_once(updates, 2)
    assert_replays(run_dir)


def test_each_worker_passes_over_its_shard_in_batches_of_a_fresh_order():
    assert batches_per_pass(10, 4) == 3 and batches_per_pass(9, 4) == 2  # a lone last joins
    rows = [worker_batch(0, 1, 9, 4, number) for number in range(4)]
    assert [len(r) for r, _ in rows] == [4, 5, 4, 5] and [p for _, p in rows] == [0, 0, 1, 1]
    assert sorted(np.concatenate([rows[0][0], rows[1][0]])) == list(range(9))
    assert not np.array_equal(rows[0][0], rows[2][0])  # each pass its own order
    np.testing.assert_array_equal(worker_batch(0, 1, 9, 4, 3)[0], rows[3][0])  # a function of its arguments


def test_a_lost_worker_loop_starts_again_elsewhere_and_no_batch_is_lost(
        cluster, tmp_path, observe_solvers, digits_mlp, steps_per_epoch):
    """Worker 1's process is killed after epoch 1 (the server lives on worker 0): its
    loop starts again on another worker, at the batch the server expects from it."""
    cfg = load_config(digits_mlp, [*ASYNC, "parallel.workers=2", "train.epochs=3"])
    heard = []

    def kill_worker_1_after_epoch_1(solver, event, payload):
        if event == "epoch" and solver.epoch == 1:
            address = solver.addresses[1]
            os.kill(solver.client.run(os.getpid, workers=[address])[address], signal.SIGKILL)
            while address in solver.client.scheduler_info()["workers"]:  # until it is missed
                time.sleep(0.05)

    run = training.start(cfg, tmp_path / "run")
    with observe_solvers(kill_worker_1_after_epoch_1):
        summary = training.train(cfg, run, progress=False, cluster=cluster, warn=heard.append)
    assert summary["status"] == "completed" and summary["epochs"] == 3
    assert len(heard) == 1 and heard[0].startswith("lost worker 1")
    updates = updates_of(tmp_path / "run")
    assert len(updates) == 3 * steps_per_epoch
    assert_each_batch_applied_once(updates, 2)
    assert {u["worker"] for u in updates if u["epoch"] == 3} == {0, 1}
    assert_replays(tmp_path / "run")
