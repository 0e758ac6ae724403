"""What a sweep driver can tell of the processes that train its trials, from the trials'
run locks (``locks.Lock``: a killed process leaves its lock behind, naming a process
that no longer exists; a stopped one releases it)."""

from __future__ import annotations

import time
from pathlib import Path

from ..layout import RunLayout
from ..locks import Lock


def died_abruptly(trial_dir: Path, wait_s: float = 10.0) -> bool:
    """Whether the process training in ``trial_dir`` was killed (SIGKILL, out of memory)
    rather than stopped. When one worker dies the pool sends SIGTERM to the others; their
    Solvers save ``last.npz`` and release the run's lock. A killed process leaves its
    lock behind, naming a process that no longer exists."""
    deadline = time.monotonic() + wait_s
    for path in RunLayout(trial_dir).locks():
        lock = Lock(path)
        while path.exists() and time.monotonic() < deadline:
            holder = lock.holder()
            if holder is None or not holder.here:
                break
            if not holder.alive():
                return path.exists()
            time.sleep(0.05)
    return False


def wait_for_earlier_workers(trial_dirs: list[Path], wait_s: float = 15.0) -> None:
    """Wait (at most ``wait_s`` in all) until no live process of this machine holds the
    run lock of a trial in ``trial_dirs`` (those the ledger says are running): the workers
    of a driver killed outright, which save their trials' state and leave within seconds
    (``executors.watch_driver``). A trial still held after that fails as in use, for
    ``--retry-failed``."""
    deadline = time.monotonic() + wait_s
    for trial_dir in trial_dirs:
        for path in RunLayout(trial_dir).locks():
            while time.monotonic() < deadline:
                holder = Lock(path).holder()
                if holder is None or not holder.here or not holder.alive():
                    break
                time.sleep(0.1)
