"""A sweep driver killed or sent SIGTERM: its worker processes never outlive it, a resume
waits for them, and SIGTERM is answered as Ctrl-C is.

docs/reliability.md, point 8b.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dl_cli.cli.app import app
from dl_cli.locks import process_start
from dl_cli.sweep.ledger import Ledger

pytestmark = pytest.mark.reliability

FOUR = {"method": "grid", "params": {"model.layers.0.units": {"values": [4, 8, 16, 32]}}}


@pytest.fixture
def start_sweep(tmp_path, write_sweep, tiny_config, processes_of_session):
    """Start `dl sweep --workers 2` of endless trials in a session of its own; return it
    and its folder once both trials train. What it leaves running is killed at the end."""
    started = []

    def start():
        endless = tiny_config(train={"epochs": 100000, "batch_size": 16})  # trials never end
        started.append(sweep_of_endless_trials(write_sweep(tmp_path, FOUR, endless),
                                               tmp_path / "sweep"))
        return started[-1]

    yield start
    for proc, _ in started:
        for pid in processes_of_session(proc.pid):
            os.kill(pid, signal.SIGKILL)
        proc.wait()


def sweep_of_endless_trials(spec: Path, folder: Path) -> tuple[subprocess.Popen, Path]:
    proc = subprocess.Popen([sys.executable, "-m", "dl_cli", "sweep",
                             str(spec), "--sweep-dir", str(folder),
                             "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    while not all((folder / f"trial-000{i}" / "metrics.jsonl").exists() for i in (0, 1)):
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return proc, folder


def test_the_workers_of_a_killed_driver_save_their_trials_and_exit(
        start_sweep, processes_of_session, session_left):
    proc, folder = start_sweep()
    assert len(processes_of_session(proc.pid)) >= 4  # driver, fork server, two workers
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)  # every process holding the driver's output has closed it
    assert session_left(proc.pid) == []
    for i in (0, 1):  # each worker stopped its trial as the driver would: saved, unlocked
        trial = folder / f"trial-000{i}"
        assert (trial / "checkpoints/last.npz").exists() and not (trial / "run.lock").exists()


def test_sigterm_stops_a_sweep_as_ctrl_c_does_and_says_how_to_resume(start_sweep, session_left):
    proc, folder = start_sweep()
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, output
    assert "SIGTERM: stopping the running trials" in output
    assert f"continue with: dl sweep --resume {folder}" in " ".join(output.split())
    table = Ledger(folder / "ledger.jsonl").table()
    assert [table[i].status for i in range(4)] == ["interrupted", "interrupted", "pending", "pending"]
    assert session_left(proc.pid) == []
    for i in (0, 1):
        assert (folder / f"trial-000{i}" / "checkpoints/last.npz").exists()


def test_a_resume_waits_for_the_workers_of_a_killed_driver_to_stop(reference, tmp_path):
    """A driver resumed at once after one was killed finds trials still held by their
    workers, which are saving their state: it waits for them instead of failing them."""
    folder = Path(shutil.copytree(reference, tmp_path / "sweep"))
    ledger = Ledger(folder / "ledger.jsonl")
    ledger.append("retry", trial=3)  # trial 3 starts over, and is running when the driver dies
    ledger.append("start", trial=3, until=None)
    shutil.rmtree(folder / "trial-0003")
    lock = folder / "trial-0003" / "run.lock"
    lock.parent.mkdir()
    stopping = subprocess.Popen([sys.executable, "-c", "import sys, time; time.sleep(1.5); "
                                 f"__import__('os').unlink({str(lock)!r})"])
    try:
        lock.write_text(json.dumps({"pid": stopping.pid, "host": socket.gethostname(),
                                    "start": process_start(stopping.pid)}))
        result = CliRunner().invoke(app, ["sweep", "--resume", str(folder)])
    finally:
        stopping.wait()
    assert result.exit_code == 0, result.output
    table = Ledger(folder / "ledger.jsonl").table()
    assert table[3].status == "completed" and table[3].metric == \
        Ledger(reference / "ledger.jsonl").table()[3].metric
