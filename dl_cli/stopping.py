"""How training stops: a loss that diverged, a signal that asked, a metric that no longer
improves.

A signal never stops training mid-update. While a Solver trains (``stop_requests``),
SIGINT and SIGTERM call its ``request_stop``: it finishes the current iteration, saves
``last.npz`` and raises ``Interrupted``; a second SIGINT raises KeyboardInterrupt at once.
Python calls signal handlers on the main thread only, so a Solver training on another
thread (a sweep's in-process trial) is asked by ``stop_training`` instead, which the
thread's owner calls when the signal reaches it.
"""

from __future__ import annotations

import math
import signal
import threading
import weakref
from contextlib import contextmanager


class Diverged(RuntimeError):
    """The loss or a gradient became NaN or infinite."""


class Interrupted(RuntimeError):
    """SIGINT or SIGTERM asked training to stop; ``last.npz`` holds the state."""


def improves(value: float, best: float | None, mode: str, min_delta: float = 0.0) -> bool:
    """Whether ``value`` beats ``best`` by more than ``min_delta`` (``mode``: ``max`` or
    ``min``); NaN never does."""
    if value is None or not math.isfinite(value):
        return False
    if best is None:
        return True
    return value > best + min_delta if mode == "max" else value < best - min_delta


def signal_name(signum: int) -> str:
    """How a stop is named to the user: ``Ctrl-C`` for SIGINT, else the signal's name."""
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name


TRAINING: weakref.WeakSet = weakref.WeakSet()  # trainers on threads other than the main one


def stop_training(signum: int) -> None:
    """Ask every trainer training on another thread of this process to stop after its
    current iteration, as ``signum`` would on the main thread."""
    for trainer in list(TRAINING):
        trainer.request_stop(signum)


@contextmanager
def stop_requests(trainer):
    """While the block runs, SIGINT and SIGTERM call ``trainer.request_stop(signum)``
    (the handlers before are put back after it); off the main thread, ``stop_training``
    does."""
    if threading.current_thread() is not threading.main_thread():
        TRAINING.add(trainer)
        try:
            yield
        finally:
            TRAINING.discard(trainer)
        return

    def on_signal(signum, frame):
        trainer.request_stop(signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
