"""The Solver's loop around a parameter server: asynchronous SGD (``parallel: {mode:
async}``), whose updates the server applies as K workers push them.

An epoch is as many updates as a synchronous epoch has steps (``ceil(N / batch_size)``),
so the two compare at equal numbers of gradients. The driver opens the server for them
(``ParameterServer.open``), waits, then takes the parameters, the optimizer's state and
the record of the updates back, and the Solver's end of epoch follows: scoring (in this
process), the schedule, checkpoints, early stopping, unchanged. ``metrics.jsonl``
gets one line per update, in the order applied:

    {"step": 118, "epoch": 7, "worker": 2, "batch": 29, "staleness": 1, "train/batch_loss": 0.21}

``staleness`` counts the updates applied between the worker's pull and its push. With
the run's seed, these lines replay the run exactly (``replay``). A checkpoint records
each worker's next batch, so ``dl train --resume`` continues where the workers were.
"""

from __future__ import annotations

import contextlib
import time

from ..checkpoints import copy_into
from ..solver import Solver
from ..stopping import Diverged, Interrupted
from .cluster import free_workers
from .parameter_server import ParameterServer, work
from .shard_worker import Shard, shards
from .source import WorkersLost, augment_stream

POLL = 0.02  # seconds between the driver's looks at the server


class AsyncSolver(Solver):
    """A Solver whose epochs are the updates of a ``ParameterServer`` (see the module).

    ``cluster`` holds the Dask client; ``config`` the run's config (its ``parallel``
    section: workers, and how long to wait for a lost one).
    """

    def __init__(self, model, splits, optimizer, train, *, cluster, config, log=None,
                 **options):
        super().__init__(model, splits, optimizer, train, **options)
        self.client, self.config = cluster.client, config
        self.workers, self.wait = config.parallel.workers, config.parallel.wait
        self.log = log or (lambda message: None)
        self.batches = [0] * self.workers  # each worker's next batch number
        self.server = None
        self.addresses: list[str] = []
        self.tasks: list = []

    def train(self, score_test: bool = True) -> dict:
        try:
            return super().train(score_test)
        finally:
            if self.server is not None:
                self.stop_workers()

    def stop_workers(self) -> None:
        """Stop the server, and wait for the workers' loops to see it and end (so that
        none asks a server already gone); a server lost with its worker is let be."""
        with contextlib.suppress(Exception):
            self.server.stop().result()
            for task in self.tasks:
                task.result(timeout=self.wait)

    # -- the server and its workers --------------------------------------------------
    def start(self) -> None:
        """Start the server (on the first worker) with the model's parameters and the
        optimizer's state, and each worker's loop with its shard."""
        self.addresses = free_workers(self.client, self.workers, [], self.wait)
        self.server = self.client.submit(
            ParameterServer, {k: v.copy() for k, v in self.model.params.items()},
            {k: v.copy() for k, v in self.model.buffers.items()}, self.optimizer,
            self.model.decay, self.cfg.clip_grad_value, self.cfg.clip_grad_norm, self.batches,
            self.step_count, actor=True, workers=self.addresses[:1], allow_other_workers=False,
            pure=False).result()
        self.tasks = [self.launch(k, address) for k, address in enumerate(self.addresses)]

    def launch(self, k: int, address: str):
        train = self.splits.train
        indices = shards(len(train.X), self.workers)[k]
        shard = Shard(train.X[indices], train.y[indices], indices, train.X[:0], train.X[:0])
        data = self.client.scatter(shard, workers=[address], hash=False)
        return self.client.submit(work, self.server, k, data, self.config, self.splits.in_shape,
                                  augment_stream(self.config.seed), workers=[address],
                                  allow_other_workers=False, pure=False)

    def relaunch_lost(self) -> None:
        """Start again, on a free worker, the loop of each worker that left the cluster
        (its batch number is the server's, so no batch is skipped or applied twice)."""
        alive = set(self.client.scheduler_info()["workers"])
        for k, address in enumerate(self.addresses):
            if address not in alive:
                self.tasks[k].cancel()
                (new,) = free_workers(self.client, 1, [a for a in self.addresses if a in alive],
                                      self.wait)
                self.log(f"lost worker {k} ({address}); its loop continues on {new}")
                self.addresses[k], self.tasks[k] = new, self.launch(k, new)

    # -- an epoch of updates -----------------------------------------------------------
    def _run_epoch(self, started: float) -> None:
        if self.server is None:
            self.start()
        if self.iteration == 0:  # a new epoch; one stopped midway keeps its sum
            self.loss_sum = 0.0
        base_lr = self.optimizer.base_lr
        self.optimizer.lr = (self.schedule.lr_at(self.epoch, base_lr, self.cfg.epochs)
                             if self.schedule is not None else base_lr)
        until = self.step_count + self.iters_per_epoch - self.iteration
        bar = self._progress_bar()
        try:
            self.server.open(until, self.optimizer.lr).result()
            failure = self.await_updates(until, bar)
        except (OSError, RuntimeError, TimeoutError) as error:  # the server's worker is gone
            raise WorkersLost(f"the parameter server is lost ({error})") from None
        finally:
            if bar is not None:
                bar.close()
        self.take_back()
        if failure is not None:
            raise Diverged(f"{failure} (epoch {self.epoch + 1}); last finite loss: "
                           f"{self.last_finite_loss}")
        if self._stop_signal is not None:
            raise Interrupted(f"stopped by signal {self._stop_signal} at epoch "
                              f"{self.epoch + 1}, iteration {self.iteration}")
        self._end_epoch(started)

    def await_updates(self, until: int, bar) -> str | None:
        """Wait until the server has applied update ``until`` (or failed, or a signal
        asked to stop: then it takes no more); the failure, if any."""
        seen, since = self.step_count, time.monotonic()
        while True:
            version, failure = self.server.progress().result()
            if bar is not None:
                bar.update(version - seen if version > seen else 0)
            if version > seen:
                seen, since = version, time.monotonic()
            if failure is not None or version >= until:
                return failure
            if self._stop_signal is not None:
                self.server.open(version, self.optimizer.lr).result()
                return None
            if time.monotonic() - since > self.wait:
                raise WorkersLost(f"no update for {self.wait:g} s")
            self.relaunch_lost()
            time.sleep(POLL)

    def take_back(self) -> None:
        """Record the updates applied since the last look, and copy the server's
        parameters, buffers and optimizer state into this process's model."""
        for update in self.server.drain().result():
            self.loss_sum += update["loss"]
            self.last_finite_loss = update["loss"]
            self.iteration, self.step_count = self.iteration + 1, update["step"]
            record = {"step": update["step"], "epoch": self.epoch + 1,
                      "worker": update["worker"], "batch": update["batch"],
                      "staleness": update["staleness"], "train/batch_loss": update["loss"]}
            self._log(record)  # every update: the order a replay follows
            if self.cfg.log_every and self.step_count % self.cfg.log_every == 0:
                self._notify("iteration", record=record)
        params, buffers, optimizer_state, self.batches = self.server.state().result()
        copy_into(self.model.params, params)
        copy_into(self.model.buffers, buffers)
        self.optimizer.load_state_dict(optimizer_state, self.model.params)

    # -- checkpoints -------------------------------------------------------------------
    def _meta(self) -> dict:
        return {**super()._meta(), "batches": list(self.batches)}

    def _restore_epoch(self, state: dict) -> None:
        """An epoch stopped midway goes on from each worker's count of batches (the
        server's ``batches``), not from a batch order: each worker draws its own."""
        self.batches = [int(b) for b in state["meta"]["batches"]]
