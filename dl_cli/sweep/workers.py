"""What a sweep driver can tell of the processes that train its trials: how a trial's
future ended, and, from the trials' run locks (``locks.Lock``: a killed process leaves
its lock behind, naming a process that no longer exists; a stopped one releases it),
whether its worker was killed or is still saving."""

from __future__ import annotations

import contextlib
import time
import traceback
from concurrent.futures import CancelledError, Future
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from ..layout import RunLayout
from ..locks import Lock
from ..storage import RunError, write_text

POOL_BROKE = "stopped because another worker process died"


def trial_result(future: Future, until: int | None, trial_dir: Path, stopping: bool) -> dict:
    """The result of the trial whose ``future`` is done (``trial.run_trial``'s, or what
    its end says): cancelled or stopped (``stopping``: the driver asked the trials to
    stop) is ``interrupted``; a worker killed under it, ``failed``; a bystander of a
    pool broken by another worker's death, ``interrupted`` with ``POOL_BROKE`` (it goes
    on from its last checkpoint); an executor's error, ``failed`` with the traceback in
    the trial's ``error.txt``."""
    try:
        return future.result()
    except CancelledError:
        return {"status": "interrupted", "error": "cancelled", "until": until}
    except BrokenProcessPool:
        if stopping:
            return {"status": "interrupted", "until": until, "error": "stopped"}
        if died_abruptly(trial_dir):
            return {"status": "failed", "until": until,
                    "error": "the worker process died (killed, or out of memory)"}
        return {"status": "interrupted", "until": until, "error": POOL_BROKE}
    except Exception as error:
        trial = RunLayout(trial_dir)
        with contextlib.suppress(RunError, OSError):  # the result says what failed
            trial.path.mkdir(parents=True, exist_ok=True)
            write_text(trial.error, "".join(
                traceback.format_exception(type(error), error, error.__traceback__)))
        return {"status": "failed", "until": until, "error": f"{type(error).__name__}: {error}"}


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
