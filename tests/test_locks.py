"""Locks of run and sweep folders: one holder, whatever the timing, the host or the PIDs.

docs/reliability.md, point 7.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from dl_cli.cli.app import app
from dl_cli.locks import GRACE_S, Holder, Lock, process_start
from dl_cli.runs import Run
from dl_cli.storage import RunError

pytestmark = pytest.mark.reliability

def text(result) -> str:
    return " ".join(result.output.split())


@pytest.fixture
def stopped_run(tmp_path, write_config, tiny, dl) -> Path:
    """A ``tiny`` run that trained one epoch of four, as if stopped there."""
    config = write_config(tmp_path, {**tiny, "train": {**tiny["train"], "epochs": 1}})
    run_dir = tmp_path / "run"
    assert dl("train", config, "--run-dir", run_dir, "-q").exit_code == 0
    raw = yaml.safe_load((run_dir / "config.yaml").read_text())
    raw["train"]["epochs"] = 3  # a longer run, resumed after its first epoch
    (run_dir / "config.yaml").write_text(yaml.safe_dump(raw))
    return run_dir


def write_lock(run_dir: Path, **fields) -> Path:
    lock = run_dir / "run.lock"
    lock.write_text(json.dumps({"pid": 1, "host": socket.gethostname(), **fields}))
    return lock


def test_a_lock_still_being_written_is_held_and_an_old_unreadable_one_is_taken(stopped_run, dl):
    lock = stopped_run / "run.lock"
    lock.write_bytes(b"")  # created, its content not yet written
    result = dl("train", "--resume", stopped_run, "-q")
    assert result.exit_code == 2, result.output
    assert "cannot be read yet; try again in a moment" in text(result)
    assert lock.read_bytes() == b""
    old = time.time() - GRACE_S - 1
    os.utime(lock, (old, old))  # its writer died long ago
    assert dl("train", "--resume", stopped_run, "-q").exit_code == 0
    assert not lock.exists()


def take_in_children(folder: Path, count: int) -> int:
    """Fork ``count`` processes that take ``folder``'s run lock at the same moment and hold
    it until all have tried; return how many took it."""
    go_r, go_w = os.pipe()
    done_r, done_w = os.pipe()
    leave_r, leave_w = os.pipe()
    children = []
    for _ in range(count):
        pid = os.fork()
        if pid == 0:
            os.close(go_w)
            os.close(leave_w)
            os.read(go_r, 1)  # every child waits here: they start together
            try:
                Run(folder).acquire()
                took = b"1"
            except RunError:
                took = b"0"
            os.write(done_w, took)
            os.read(leave_r, 1)  # holds it until every child has tried
            os._exit(0)
        children.append(pid)
    for fd in (go_r, done_w, leave_r):
        os.close(fd)
    os.write(go_w, b"x" * count)
    os.close(go_w)
    answers = b""
    while len(answers) < count:
        answers += os.read(done_r, count)
    os.close(done_r)
    os.close(leave_w)
    for pid in children:
        os.waitpid(pid, 0)
    return answers.count(b"1")


@pytest.mark.parametrize("before", ["none", "stale"])
def test_processes_taking_one_lock_at_once_leave_one_holder(tmp_path, before):
    """Twelve processes at once, twenty times: with no lock before, and with the lock of a
    process that is gone, which each of them may find stale and break."""
    for attempt in range(20):
        folder = tmp_path / f"run-{attempt}"
        folder.mkdir()
        if before == "stale":
            write_lock(folder, pid=2**22 + 7)  # no such process
        assert take_in_children(folder, 12) == 1


def test_four_resumes_of_one_run_at_once_train_it_once(stopped_run, tmp_path, dl):
    straight = tmp_path / "straight"
    shutil.copytree(stopped_run, straight)
    assert dl("train", "--resume", straight, "-q").exit_code == 0
    go_r, go_w = os.pipe()
    children = []
    for _ in range(4):
        pid = os.fork()
        if pid == 0:
            os.close(go_w)
            os.read(go_r, 1)
            code = 70
            try:
                sys.stdout = sys.stderr = open(os.devnull, "w")
                app(["train", "--resume", str(stopped_run), "-q"], prog_name="dl")
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 1
            finally:
                os._exit(code)
        children.append(pid)
    os.close(go_r)
    os.write(go_w, b"xxxx")
    os.close(go_w)
    codes = sorted(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children)
    # one trains it; the others find it locked (2), or finished (0, nothing to do) when
    # one of them starts only after the winner has ended: the metrics show one training
    assert codes[0] == 0 and set(codes) <= {0, 2}
    lines = lambda run: [{k: v for k, v in json.loads(line).items() if k != "time"}
                         for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert lines(stopped_run) == lines(straight)


def test_a_lock_of_another_host_is_held_until_broken_on_purpose(stopped_run, dl):
    lock = write_lock(stopped_run, pid=os.getpid(), host="node-elsewhere", since=time.time())
    before = lock.read_bytes()
    result = dl("train", "--resume", stopped_run, "-q")
    assert result.exit_code == 2, result.output
    message = text(result)
    assert f"is in use by process {os.getpid()} on host node-elsewhere, since" in message
    assert "cannot see whether that process still runs" in message and "--break-lock" in message
    assert lock.read_bytes() == before
    assert dl("train", "--resume", stopped_run, "-q", "--break-lock").exit_code == 0
    assert not lock.exists()


def test_a_sweep_driver_of_another_host_is_named_and_broken_on_purpose(
        tmp_path, dl, tiny, write_sweep):
    spec = write_sweep(tmp_path, {"method": "grid",
                                  "params": {"model.layers.0.units": {"values": [4, 8]}}}, tiny)
    folder = tmp_path / "sweep"
    assert dl("sweep", spec, "--sweep-dir", folder).exit_code == 0
    lock = folder / "driver.lock"
    lock.write_text(json.dumps({"pid": 4242, "host": "node-7"}))
    result = dl("sweep", "--resume", folder)
    assert result.exit_code == 2
    assert "is being run by process 4242 on host node-7" in text(result)
    assert dl("sweep", "--resume", folder, "--break-lock").exit_code == 0
    assert not lock.exists()
    assert "--break-lock goes with --resume" in text(dl("sweep", spec, "--break-lock"))


def test_a_pid_reused_by_another_process_or_a_reboot_does_not_hold_a_lock(stopped_run, dl):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        start = process_start(other.pid)
        assert start is not None
        lock = write_lock(stopped_run, pid=other.pid, start=start)  # it holds the lock
        result = dl("train", "--resume", stopped_run, "-q")
        assert result.exit_code == 2 and f"in use by process {other.pid}" in text(result)
        write_lock(stopped_run, pid=other.pid, start=start - 100)  # the holder started earlier
        assert Lock(lock).holder().alive() is False
        write_lock(stopped_run, pid=other.pid, start=start, boot="another-boot")
        assert Lock(lock).holder().alive() is False
        assert dl("train", "--resume", stopped_run, "-q").exit_code == 0
    finally:
        other.kill()
        other.wait()


def test_a_lock_names_its_holder_and_is_released_only_by_it(tmp_path):
    lock = Lock(tmp_path / "run.lock")
    lock.take()
    holder = json.loads(lock.path.read_text())
    assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
    assert holder["start"] == process_start(os.getpid()) and abs(holder["since"] - time.time()) < 60
    assert Lock(lock.path).holder() == Holder(**holder)
    assert list(tmp_path.iterdir()) == [lock.path]  # no temp file stays
    lock.path.write_text(json.dumps({**holder, "pid": 1}))
    lock.release()  # not ours any more: left alone
    assert lock.path.exists()
    lock.path.write_text(str(os.getpid()))  # the lock of an earlier version: a bare PID
    assert Lock(lock.path).holder().is_me()
    lock.release()
    assert not lock.path.exists()
