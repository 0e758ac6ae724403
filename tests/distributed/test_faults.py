"""Workers lost while training: a killed worker process costs a recomputed step and
changes no number; when every worker is gone the run stops with last.npz, exit 1 and
the resume command, and the resumed run ends as an undisturbed one."""

import json
import os
import signal
import time

import numpy as np
import pytest

from dl_cli import training
from dl_cli.config import load_config
from dl_cli.distributed.cluster import connect
from dl_cli.distributed.dask_sync import DaskSource
from dl_cli.solver import Solver

pytestmark = pytest.mark.slow


class KillingSource(DaskSource):
    """Kills the process of the worker holding shard 1 before step ``before`` and,
    in step ``during``, while the parts wait at a batchnorm layer for the batch's
    statistics."""

    def __init__(self, *args, before: int, during: int, **options):
        super().__init__(*args, **options)
        self.before, self.during = before, during
        self.steps, self.killed = 0, []

    def gradients(self, idx, epoch):
        self.steps += 1
        if self.steps == self.before:
            self.kill_shard_1()
        return super().gradients(idx, epoch)

    def join(self, messages):
        if self.steps == self.during and self.during not in self.killed:
            self.kill_shard_1()
        return super().join(messages)

    def kill_shard_1(self):
        address = self.addresses[1]
        os.kill(self.client.run(os.getpid, workers=[address])[address], signal.SIGKILL)
        self.killed.append(self.steps)


def test_a_killed_worker_costs_a_recomputed_step_and_changes_no_number(cluster, digits_mlp,
                                                                        exact):
    """On two of the cluster's three workers: a lost shard moves to the third, or to the
    process the nanny restarts."""
    local_cfg = load_config(digits_mlp, exact)
    local = training.make_solver(local_cfg, training.assemble(local_cfg), None, progress=False)
    local.train()
    cfg = load_config(digits_mlp, [*exact, "parallel.workers=2"])
    parts = training.assemble(cfg)
    heard = []
    source = KillingSource(cluster.client, parts.model, parts.splits, cfg, 2,
                           before=5, during=20, log=heard.append)
    solver = Solver(parts.model, parts.splits, parts.optimizer, cfg.train,
                    schedule=parts.schedule, checkpoint=cfg.checkpoint, seed=cfg.seed,
                    progress=False, source=source)
    solver.train()
    assert source.killed == [5, 20] and source.recoveries == 2
    assert len(heard) == 2 and "lost the worker holding shard 1" in heard[0]
    assert solver.step_count == local.step_count == 34  # no step lost, none taken twice
    for record, local_record in zip(solver.history, local.history, strict=True):
        for name, value in record.items():
            if name != "time":
                assert value == pytest.approx(local_record[name], rel=1e-10), name
    for name, value in parts.model.params.items():  # (0.b, before batchnorm, is rounding noise)
        np.testing.assert_allclose(value, local.model.params[name], rtol=1e-7, atol=1e-9)


@pytest.fixture
def dask_workers(start_python):
    """``dask_workers(address, count)``: ``count`` worker processes without a nanny (none
    restarts them), once connected to the scheduler at ``address``."""
    from distributed import Client

    def start(address: str, count: int) -> list:
        workers = [start_python("distributed.cli.dask_worker", address, "--no-nanny",
                                "--nthreads", "1") for _ in range(count)]
        with Client(address) as client:
            client.wait_for_workers(count, timeout=120)
        return workers
    return start


def epochs_done(run_dir) -> int:
    metrics = run_dir / "metrics.jsonl"
    lines = metrics.read_text().splitlines() if metrics.exists() else []
    return sum(1 for line in lines if "lr" in json.loads(line))


def test_every_worker_lost_stops_with_last_npz_exit_1_and_the_resume_command(
        tmp_path, digits_mlp, exact, start_python, dask_workers):
    """On a cluster whose workers have no nanny: killed, none comes back."""
    overrides = [*exact, "train.epochs=3", "parallel.wait=2"]
    run_dir = tmp_path / "run"
    scheduler = connect(0, None)  # a scheduler alone; the workers come from dask_workers
    try:
        address = scheduler.client.scheduler.address
        workers = dask_workers(address, 2)
        training_run = start_python("dl_cli", "train", digits_mlp, *overrides, "--backend",
                                    "dask", "--workers", "2", "--address", address,
                                    "--run-dir", run_dir, "-q")
        deadline = time.monotonic() + 120
        while epochs_done(run_dir) < 1 and training_run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        for worker in workers:
            worker.kill()
        _, stderr = training_run.communicate(timeout=120)
        message = " ".join(stderr.split())
        assert training_run.returncode == 1, stderr
        assert "training stopped: the Dask workers are lost" in message
        assert f"Resume with: dl train --resume {run_dir}" in message
        assert (run_dir / "checkpoints/last.npz").exists()
        assert json.loads((run_dir / "summary.json").read_text())["status"] == "interrupted"
        assert 1 <= epochs_done(run_dir) < 3

        scheduler_file = tmp_path / "scheduler.json"  # as dask scheduler --scheduler-file writes it
        scheduler_file.write_text(json.dumps({"address": address}))
        workers = dask_workers(address, 2)
        resumed = start_python("dl_cli", "train", "--resume", run_dir, "--address",
                               scheduler_file, "-q")
        _, stderr = resumed.communicate(timeout=180)
        for worker in workers:
            worker.kill()
    finally:
        scheduler.close()
    assert resumed.returncode == 0, stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    local_cfg = load_config(digits_mlp, overrides)
    local = training.make_solver(local_cfg, training.assemble(local_cfg), None, progress=False)
    local_summary = local.train()
    assert summary["status"] == "completed" and summary["epochs"] == 3
    for name, value in {**summary["final"], **summary["test"]}.items():
        if "/" in name:
            assert value == pytest.approx({**local_summary["final"], **local_summary["test"]}[name],
                                          rel=1e-6), name
