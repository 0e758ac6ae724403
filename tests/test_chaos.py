"""Chaos on sweeps: worker processes and drivers killed at seeded moments, on local
workers, a Dask LocalCluster and a local Ray. Every trial ends completed exactly once,
with the results of an undisturbed sweep, and the ledger replays to them.

docs/reliability.md, point 8c. Each test runs in about 10 to 30 s on two cores.
"""

import csv
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from dl_cli.locks import Lock
from dl_cli.sweep.ledger import Ledger

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

SPEC = {"method": "random", "trials": 40, "seed": 0,
        "params": {"optimizer.lr": {"loguniform": [1.0e-3, 1.0e-1]},
                   "model.layers.0.units": {"values": [4, 8, 16]}}}
VARYING = ("time_s", "dir")  # what results.csv may differ in between two sweeps


@pytest.fixture(scope="module")
def chaos(tmp_path_factory, write_sweep, tiny_config, dl) -> tuple[Path, Path]:
    """The sweep spec (40 trials of 5 epochs over ``tiny_config``), and the folder of the
    same sweep run undisturbed."""
    tmp = tmp_path_factory.mktemp("chaos")
    spec = write_sweep(tmp, SPEC, tiny_config(train={"epochs": 5, "batch_size": 8}))
    assert dl("sweep", spec, "--sweep-dir", tmp / "undisturbed").exit_code == 0
    return spec, tmp / "undisturbed"


def results(folder: Path, trials: int = SPEC["trials"]) -> list[dict]:
    with open(folder / "results.csv") as f:
        rows = [{k: v for k, v in row.items() if k not in VARYING} for row in csv.DictReader(f)]
    return rows[:trials]


def ended(folder: Path) -> int:
    """Results the ledger holds so far (read while a driver appends to it)."""
    try:
        return sum(e["event"] == "result" for e in Ledger(folder / "ledger.jsonl").events())
    except FileNotFoundError:
        return 0


def training(folder: Path) -> list[int]:
    """The processes of this machine that hold a trial's lock (train it) right now."""
    found = []
    for path in sorted(folder.glob("trial-*/run.lock")):
        holder = Lock(path).holder()
        if holder is not None and holder.here and holder.alive():
            found.append(holder.pid)
    return found


def driver(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dl_cli", "sweep", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def wait_until(proc: subprocess.Popen, folder: Path, results: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while ended(folder) < results:
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline, "the sweep made no progress"
        time.sleep(0.01)


def kill_workers(proc: subprocess.Popen, folder: Path, moments: list[int], seed: int) -> list[int]:
    """At each moment (a number of ended trials), kill -9 one process training a trial,
    chosen by ``seed``; return the processes killed."""
    rng, killed = random.Random(seed), []
    for moment in moments:
        wait_until(proc, folder, moment)
        while True:
            running = training(folder)
            if running:
                victim = rng.choice(running)
                try:
                    os.kill(victim, signal.SIGKILL)
                    break
                except ProcessLookupError:  # its trial ended since the look: choose again
                    pass
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.005)
        killed.append(victim)
    return killed


def finish(proc: subprocess.Popen, session_left) -> str:
    """The driver's output once it ended well and every process of its session is gone
    (``session_left``, the fixture)."""
    output, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, output
    assert session_left(proc.pid) == []
    return output


def check_the_end(folder: Path, undisturbed: Path, trials: int = SPEC["trials"]) -> Counter:
    """Every trial completed exactly once, with the undisturbed results, and the ledger
    replays to them; return how many results of each status the ledger holds."""
    events = Ledger(folder / "ledger.jsonl").events()
    completed = Counter(e["trial"] for e in events if e["event"] == "result"
                        and e["status"] == "completed")
    assert completed == Counter(range(trials))
    assert results(folder, trials) == results(undisturbed, trials)
    replayed = Ledger(folder / "ledger.jsonl").table()
    reference = Ledger(undisturbed / "ledger.jsonl").table()
    assert {i: (s.status, s.metric, s.epochs) for i, s in replayed.items()} == \
        {i: (s.status, s.metric, s.epochs) for i, s in reference.items() if i < trials}
    return Counter(e["status"] for e in events if e["event"] == "result")


def test_local_workers_killed_at_seeded_moments(chaos, tmp_path, dl, session_left):
    spec, undisturbed = chaos
    folder = tmp_path / "sweep"
    proc = driver(spec, "--sweep-dir", folder, "--workers", "2")
    killed = kill_workers(proc, folder, moments=[6, 17, 28], seed=0)
    finish(proc, session_left)
    failed = {i for i, s in Ledger(folder / "ledger.jsonl").table().items() if s.status == "failed"}
    assert 1 <= len(failed) <= len(killed)  # a worker killed between trials fails none
    retried = dl("sweep", "--resume", folder, "--retry-failed", "--workers", "2")
    assert retried.exit_code == 0, retried.output
    statuses = check_the_end(folder, undisturbed)
    assert statuses["failed"] == len(failed)


def test_a_driver_killed_and_resumed_twice(chaos, tmp_path, session_left):
    spec, undisturbed = chaos
    folder = tmp_path / "sweep"
    proc = driver(spec, "--sweep-dir", folder, "--workers", "2")
    for moment in (8, 24):
        wait_until(proc, folder, moment)
        os.kill(proc.pid, signal.SIGKILL)  # its workers save their trials and leave
        proc.wait()
        proc = driver("--resume", folder, "--workers", "2")
    finish(proc, session_left)
    statuses = check_the_end(folder, undisturbed)
    assert statuses["failed"] == 0


def test_dask_workers_killed_at_seeded_moments(chaos, tmp_path, session_left):
    pytest.importorskip("distributed")
    spec, undisturbed = chaos
    folder = tmp_path / "sweep"
    proc = driver(spec, "--sweep-dir", folder, "--backend", "dask", "--workers", "2")
    kill_workers(proc, folder, moments=[6, 20], seed=1)  # Dask runs their trials again
    finish(proc, session_left)
    statuses = check_the_end(folder, undisturbed)
    assert statuses["failed"] == 0


def test_ray_resumes_a_sweep_runs_the_same_trials_and_retries_a_killed_worker(
        chaos, tmp_path, session_left):
    """One Ray start (about 10 s here): the sweep begun on local workers, whose driver is
    killed, resumes on Ray, where a worker is killed too."""
    pytest.importorskip("ray")
    spec, undisturbed = chaos
    folder, trials = tmp_path / "sweep", 12  # the first 12 trials of the same sweep
    proc = driver(spec, f"sweep.trials={trials}", "--sweep-dir", folder, "--workers", "2")
    wait_until(proc, folder, 3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc = driver("--resume", folder, "--backend", "ray", "--workers", "2")
    kill_workers(proc, folder, moments=[6], seed=2)  # Ray runs its trial again
    output = finish(proc, session_left)
    assert "Ray, 2 CPUs at a local instance" in output
    statuses = check_the_end(folder, undisturbed, trials)
    assert statuses["failed"] == 0
