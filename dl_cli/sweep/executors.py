"""Where trials run: one ``concurrent.futures.Executor`` interface, four backends.

| backend | executor | notes |
|---|---|---|
| ``local``, 1 worker | ``InProcessExecutor`` | one thread of the driver's process |
| ``local``, N workers | ``ProcessPoolExecutor`` (forkserver) | BLAS threads pinned per worker |
| ``dask`` | ``distributed.Client(...).get_executor()`` | a scheduler address or file, else a LocalCluster |
| ``ray`` | ``RayExecutor`` (``ray.remote(fn).remote(...).future()``) | ``ray.init(address)`` |

The driver only calls ``submit`` and waits on the futures, so the sweep is one code path
whatever runs the trials. A cluster's workers must see the sweep folder (a shared file
system) and have ``dl-cli`` installed.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from threadpoolctl import threadpool_limits

from ..layout import RunLayout
from ..locks import Lock, process_alive, process_start
from ..runs import HELD_LOCKS, release_held_locks
from ..stopping import Interrupted, signal_name, stop_training

BACKENDS = ("local", "dask", "ray")
# What every local worker imports: preloaded once by the fork server, inherited by each worker.
WORKER_MODULES = ["dl_cli.quick_exit", "dl_cli.sweep.trial", "dl_cli.sweep.executors", "numpy.random",
                  "numpy.ma", "threadpoolctl"]  # numpy.ma: np.unique imports it
BLAS_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                  "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


class BackendError(RuntimeError):
    """A backend cannot be used: not installed, or its cluster cannot be reached."""


class InProcessExecutor(Executor):
    """Runs each submitted call on its own daemon thread of this process, one at a time
    when the driver submits one at a time. Daemon threads: a second Ctrl-C can leave at
    once, and the abandoned trial continues from its last checkpoint on resume."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        future.set_running_or_notify_cancel()

        def call():
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as error:
                future.set_exception(error)

        threading.Thread(target=call, daemon=True, name="dl-trial").start()
        return future

    def shutdown(self, wait=True, *, cancel_futures=False):
        pass


def stop_worker(signum, frame) -> None:
    """SIGTERM outside training (inside it, the Solver's own handler stops cleanly): the
    trial's run lock is released at once, wherever its setup was, then it unwinds."""
    release_held_locks()
    raise Interrupted(f"interrupted ({signal_name(signum)})")


def worker_context():
    """How local worker processes start: forked from a server process (``forkserver``,
    Python 3.14's default on Linux) that imported NumPy and ``dl``'s training code once,
    so a worker is ready in milliseconds instead of the ~0.3 s a fresh interpreter takes
    to import them. The server is itself a fresh interpreter, so like ``spawn`` no worker
    inherits the driver's threads or state. ``spawn`` where there is no fork (Windows)."""
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(WORKER_MODULES)
    return context


def start_worker_server() -> None:
    """Start the fork server now, so that it imports while the driver plans the trials
    (a no-op where workers are spawned, or when the server runs already)."""
    context = worker_context()
    if context.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


def init_worker(threads: int, driver: int, driver_start: int | None) -> None:
    """Initializer of a local worker process: its own process group, so a Ctrl-C at the
    terminal reaches the driver alone (which then decides); SIGTERM unwinds the trial
    (releasing its run's lock) instead of killing the process outright, so the driver
    can tell a stopped worker from a killed one; ``threads`` BLAS threads; and a watch on
    the driver (process ``driver``, started at ``driver_start``), so that a worker never
    outlives it (``watch_driver``)."""
    if hasattr(os, "setpgrp"):
        os.setpgrp()
    signal.signal(signal.SIGTERM, stop_worker)
    for name in BLAS_VARIABLES:
        os.environ[name] = str(threads)
    threadpool_limits(limits=threads)
    threading.Thread(target=watch_driver, args=(driver, driver_start), daemon=True,
                     name="dl-driver-watch").start()


def watch_driver(driver: int, driver_start: int | None, every_s: float = 0.25,
                 grace_s: float = 5.0) -> None:
    """Stop this worker once the driver is gone (killed outright, or it left without
    waiting): its trial is asked to stop as by the driver (SIGTERM: it saves ``last.npz``
    and releases its run's lock), and the process exits at the latest ``grace_s`` seconds
    later. The driver is watched, not the parent: a worker's parent is the fork server,
    which lives on as long as any worker holds its pipe, and so would they all, holding
    the driver's output open."""
    while process_alive(driver) and process_start(driver) in (None, driver_start):
        time.sleep(every_s)
    os.kill(os.getpid(), signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while HELD_LOCKS and time.monotonic() < deadline:
        time.sleep(0.05)
    os._exit(1)


class RayExecutor(Executor):
    """``submit`` as a Ray task of one CPU; Ray's object references give the futures."""

    def __init__(self, ray):
        self.ray = ray
        self.remote: dict = {}  # fn → its Ray task, made once

    def submit(self, fn, /, *args, **kwargs) -> Future:
        if fn not in self.remote:
            self.remote[fn] = self.ray.remote(num_cpus=1)(fn)
        return self.remote[fn].remote(*args, **kwargs).future()

    def shutdown(self, wait=True, *, cancel_futures=False):
        self.ray.shutdown()


@dataclass
class Backend:
    """An executor, how many trials it runs at once, and how to stop its running trials."""

    name: str
    executor: Executor
    slots: int
    description: str
    can_terminate: bool = False          # running trials can be asked to save and stop
    in_process: bool = False             # trials run on threads of the driver's process
    closers: list[Callable] = field(default_factory=list)
    renew: Callable[[], Executor] | None = None  # a fresh pool after a worker process died
    signalled: set[int] = field(default_factory=set)  # worker processes sent SIGTERM

    def replace_broken(self) -> None:
        if self.renew is None:
            raise BackendError(f"the {self.name} executor broke and cannot be renewed")
        self.executor.shutdown(wait=False)
        self.executor = self.renew()

    def terminate(self, trial_dirs: list[Path]) -> None:
        """Ask the trials training in ``trial_dirs`` to stop: their Solvers save
        ``last.npz`` and return ``interrupted`` after the current iteration. A trial on a
        thread of this process is asked directly; a local process is sent SIGTERM, once.
        The driver asks on every pass until they have stopped, so that a trial still
        setting up at the first request is stopped too."""
        if not self.can_terminate:
            return
        if self.in_process:
            stop_training(signal.SIGTERM)
            return
        for path in (p for d in trial_dirs for p in RunLayout(d).locks()):
            holder = Lock(path).holder()
            if holder is None or not holder.here or holder.pid in self.signalled:
                continue
            try:
                os.kill(holder.pid, signal.SIGTERM)
                self.signalled.add(holder.pid)
            except OSError:
                continue

    def close(self, wait: bool = True) -> None:
        """Release the workers; ``wait=False`` leaves abandoned trials behind at once."""
        self.executor.shutdown(wait=wait)
        for close in self.closers:
            close()


def local_backend(workers: int, threads: int) -> Backend:
    if workers == 1:
        return Backend("local", InProcessExecutor(), 1,
                       f"1 worker, in process, {threads} BLAS thread{'s' * (threads > 1)}",
                       can_terminate=True, in_process=True)
    context = worker_context()

    driver = (os.getpid(), process_start(os.getpid()))

    def pool() -> Executor:
        return ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                   initializer=init_worker, initargs=(threads, *driver))

    return Backend("local", pool(), workers,
                   f"{workers} worker processes × {threads} BLAS thread{'s' * (threads > 1)}",
                   can_terminate=True, renew=pool)


def dask_backend(workers: int, address: str | None) -> Backend:
    from ..distributed.cluster import ClusterError, connect

    try:
        cluster = connect(workers, address)
    except ClusterError as error:
        raise BackendError(str(error)) from None
    client = cluster.client
    slots = sum(client.nthreads().values()) or workers
    # pure=False: a call with the same arguments is a new task, never a cached result.
    return Backend("dask", client.get_executor(pure=False), slots,
                   f"Dask, {slots} worker threads at {cluster.where}", closers=cluster.closers)


def ray_backend(workers: int, address: str | None) -> Backend:
    try:
        import ray
    except ImportError:
        raise BackendError("the ray backend needs Ray: pip install 'dl-cli[ray]'") from None
    try:
        ray.init(address=address, num_cpus=None if address else workers,
                 ignore_reinit_error=True, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise BackendError(f"cannot start or reach Ray at {address or 'this machine'}: {error}") from None
    slots = int(ray.cluster_resources().get("CPU", workers))
    return Backend("ray", RayExecutor(ray), slots,
                   f"Ray, {slots} CPUs at {address or 'a local instance'}")


def make_backend(name: str, workers: int, address: str | None = None, threads: int = 1) -> Backend:
    """The executor for ``--backend name``; ``threads`` BLAS threads per local worker
    (each trial also pins its own, on every backend)."""
    if name == "local":
        return local_backend(workers, threads)
    if name == "dask":
        return dask_backend(workers, address)
    return ray_backend(workers, address)
