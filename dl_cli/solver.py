"""The Solver: minibatch training with validation, checkpoints and early stopping.

The model must provide ``loss(X, y) -> (loss, grads)`` (grads keyed like
``model.params``), ``params``/``buffers``/``decay`` dicts, ``scores(X)`` in eval mode and
``rngs()`` (its layers' run-time generators). Use:

```python
model = Model(layers, splits.in_shape, loss="softmax_cross_entropy", seed=0)
optimizer = OPTIMIZERS.create({"type": "adam", "lr": 1e-3})
solver = Solver(model, splits, optimizer, TrainConfig(epochs=10, batch_size=64))
summary = solver.train()          # keeps the parameters with the best validation metric
solver.best_value, solver.history # best val/acc, one record per epoch
```

Observers (``Solver(..., observers=[...])`` or ``solver.observers``) are called as
``observer(event, payload)``, in order, and must not raise (``loggers.Guarded`` wraps a
logger so): ``start`` {epoch, step} when ``train`` begins (a resumed run from its
checkpoint); ``iteration`` {record} at every ``log_every`` iterations; ``epoch`` {record,
params, grads} as an epoch ends, with the record of metrics.jsonl, the parameters and the
last update's gradients; ``end`` {summary} once the summary is built (``finish``).
``dl train``'s line per epoch (``progress.EpochLines``) is one of them.

Each epoch: a fresh permutation of the training set, ``ceil(N / batch_size)`` calls to
``step`` (the last batch may be smaller; a lone last sample joins the batch before
it), the learning rate from the schedule, then
``check_accuracy`` on the validation set and a training subsample. The test split is
scored once, at the end, with the best parameters, and never used for any choice.

Who computes a step's loss and gradients, and the scores, is the ``source``
(``distributed.source.GradientSource``): the model in this process by default, or
workers that each hold a shard of the data (``distributed.dask_sync``). The loop, the
optimizer, the checkpoints and the run folder are the same whichever it is.
"""

from __future__ import annotations

import contextlib
import math
import signal
import time

import numpy as np

from . import threads
from .checkpoints import check_batch_order, copy_into, pack_checkpoint, versions
from .data import Splits
from .diagnostics import Diagnostics
from .distributed.source import GradientSource, LocalSource, WorkersLost
from .metrics import resolve_monitor, run_task, scored
from .nn import ShapeError
from .nn.model import Model
from .optim import clip_grad_norm, clip_grad_value, global_norm
from .progress import batch_bar
from .runs import Run
from .schema import CheckpointConfig, TrainConfig
from .stopping import Diverged, Interrupted, improves, signal_name, stop_requests
from .storage import RunError


class Solver:
    def __init__(self, model: Model, splits: Splits, optimizer, train: TrainConfig,
                 schedule=None, checkpoint: CheckpointConfig | None = None, augment=None,
                 seed: int = 0, run: Run | None = None, progress: bool = True,
                 source: GradientSource | None = None, observers=(), record: dict | None = None):
        """``record``: entries every checkpoint's meta holds besides the training state
        (the run's config, which a resume compares with its config.yaml)."""
        self.record = record or {}
        self.model, self.splits, self.optimizer = model, splits, optimizer
        self.schedule, self.run = schedule, run
        self.source = source or LocalSource(model, splits, augment, seed)  # computes each step
        self.observers = list(observers)  # observer(event, payload): see the module docstring
        self.cfg, self.progress = train, progress
        n = len(splits.train.X)
        if n == 0:
            raise ValueError("the training split is empty")
        self.batch_size = n if train.batch_size == "full" else min(int(train.batch_size), n)
        # A lone last sample joins the batch before it (batchnorm needs two per batch).
        lone_last = n % self.batch_size == 1 and n > self.batch_size
        self.iters_per_epoch = n // self.batch_size if lone_last else math.ceil(n / self.batch_size)
        task = run_task(model.loss_fn.task, splits.task == "regression", splits.train.y.ndim == 3)
        checkpoint = checkpoint or CheckpointConfig()
        self.monitor, self.mode = resolve_monitor(checkpoint.monitor, checkpoint.mode, task)
        stopping = train.early_stopping
        if stopping is not None:
            self.stop_monitor, self.stop_mode = resolve_monitor(stopping.monitor, stopping.mode, task)
        subset_rng = np.random.default_rng([seed, 2])
        self.train_subset = np.sort(subset_rng.choice(
            n, size=min(train.eval_train_samples, n), replace=False))

        # Models whose layers want it cut each batch over the cores themselves (threads.py);
        # both counts go into the checkpoints, for a resume to compute as the run did
        self.thread_count = threads.blas_threads()
        self.parts = self.thread_count if model.wants_batch_parts else None
        self.rng = np.random.default_rng([seed, 1])  # batch order
        self.epoch = 0               # completed epochs
        self.iteration = 0           # completed iterations of the current epoch
        self.step_count = 0          # completed iterations in all
        self.perm: np.ndarray | None = None
        self.loss_sum = 0.0          # sum of this epoch's minibatch losses
        self.last_finite_loss: float | None = None
        self.grads: dict[str, np.ndarray] | None = None  # of the last update, as applied
        self.best_value: float | None = None
        self.best_epoch: int | None = None
        self.best_params: dict | None = None
        self.best_buffers: dict | None = None
        self.stop_best: float | None = None
        self.stale_epochs = 0
        self.history: list[dict] = []
        self.status = "new"
        self.elapsed = 0.0
        self._stop_signal: int | None = None
        self.diagnostics = Diagnostics(model) if train.diagnostics else None
        self.save_every = checkpoint.every_seconds
        self._pending_best: dict[str, np.ndarray] | None = None  # best not yet on disk
        self._last_saved = -math.inf
        self._bar = None  # the batch bar of the epoch being trained, on a terminal

    def computing(self):
        """Where steps run: a convolutional model's layers cut the batch into one part per
        BLAS thread, BLAS itself on one thread; other models leave the threads to BLAS."""
        return threads.computing_on(self.parts) if self.parts else contextlib.nullcontext()

    def request_stop(self, signum: int = signal.SIGINT) -> None:
        """Ask training to stop after the current iteration, as SIGINT or SIGTERM does: it
        saves ``last.npz`` and raises Interrupted. A second SIGINT raises KeyboardInterrupt
        at once (a second Ctrl-C)."""
        if self._stop_signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self._stop_signal = signum

    # -- one iteration ---------------------------------------------------------------
    def step(self, idx: np.ndarray) -> float:
        """One update on the training samples ``idx``; raises Diverged on NaN/inf, and
        ShapeError when a layer refuses the batch (batchnorm given a single sample)."""
        if self.diagnostics is not None:
            self.diagnostics.before_step()
        with np.errstate(over="ignore", invalid="ignore"):  # divergence is checked below
            try:
                loss, grads = self.source.gradients(idx, self.epoch)
            except ValueError as error:
                shape = (len(idx), *self.splits.train.X.shape[1:])
                raise ShapeError(f"epoch {self.epoch + 1}, iteration {self.iteration + 1}: "
                                 f"the model cannot train on a batch of shape {shape}: "
                                 f"{error}") from error
            norm = global_norm(grads)
        if not (math.isfinite(loss) and math.isfinite(norm)):
            what = "loss" if not math.isfinite(loss) else "gradient norm"
            value = loss if not math.isfinite(loss) else norm
            raise Diverged(f"{what} became {value} at epoch {self.epoch + 1}, iteration "
                           f"{self.iteration + 1}; last finite loss: {self.last_finite_loss}")
        if self.cfg.clip_grad_value is not None:
            clip_grad_value(grads, self.cfg.clip_grad_value)
        if self.cfg.clip_grad_norm is not None:
            clip_grad_norm(grads, self.cfg.clip_grad_norm)
        self.optimizer.step(self.model.params, grads, self.model.decay)
        if self.diagnostics is not None:
            self.diagnostics.after_step(grads)
        self.last_finite_loss, self.grads = loss, grads
        return loss

    def check_accuracy(self, split: str) -> dict[str, float]:
        """Eval-mode metrics on ``train`` (the fixed subsample), ``val`` or ``test``."""
        idx = self.train_subset if split == "train" else None
        y = getattr(self.splits, split).y
        if len(y) == 0 or idx is not None and len(idx) == 0:
            return {}
        return scored(self.model.loss_fn, self.source.scores(split, idx),
                      y if idx is None else y[idx], split)

    # -- the loop --------------------------------------------------------------------
    def train(self, score_test: bool = True) -> dict:
        """Train until the last epoch or early stopping; return the summary. Without
        ``score_test`` (a sweep's rung, to be continued) the test split is scored only if
        training stopped early, which ends the run."""
        self.status = "early_stopped" if self.patience_ran_out() else "running"
        started = time.perf_counter() - self.elapsed
        self._notify("start", epoch=self.epoch, step=self.step_count)
        try:
            with stop_requests(self), self.computing():
                while self.epoch < self.cfg.epochs and self.status == "running":
                    self._run_epoch(started)
            self._save(force=True)
        except Diverged as error:
            self.status = "diverged"
            self.elapsed = time.perf_counter() - started
            self._log({"epoch": self.epoch + 1, "step": self.step_count, "status": "diverged",
                       "error": str(error)})
            self._save(force=True)  # the failing update was not applied
            raise
        except (Interrupted, WorkersLost):  # the last completed step is saved to resume from
            self.status = "interrupted"
            self.elapsed = time.perf_counter() - started
            self._save(force=True)
            raise
        except Exception:  # a checkpoint that cannot be written, for one
            self.status = "failed"
            self.elapsed = time.perf_counter() - started
            raise
        finally:  # gone before anything else prints, a stop's message included
            self._close_bar()
        if self.status == "running":
            self.status = "completed"
        self.elapsed = time.perf_counter() - started
        return self.finish(score_test or self.status == "early_stopped")

    def _run_epoch(self, started: float) -> None:
        n, bs = len(self.splits.train.X), self.batch_size
        if self.perm is None:  # a new epoch; one stopped midway keeps its order
            self.perm = self.rng.permutation(n)
            self.loss_sum = 0.0
        base_lr = self.optimizer.base_lr
        self.optimizer.lr = (self.schedule.lr_at(self.epoch, base_lr, self.cfg.epochs)
                             if self.schedule is not None else base_lr)
        bar = self._bar = self._progress_bar()
        for it in range(self.iteration, self.iters_per_epoch):
            end = n if it == self.iters_per_epoch - 1 else (it + 1) * bs
            loss = self.step(self.perm[it * bs:end])
            self.loss_sum += loss
            self.iteration, self.step_count = it + 1, self.step_count + 1
            if self.cfg.log_every and self.step_count % self.cfg.log_every == 0:
                record = {"step": self.step_count, "epoch": self.epoch + 1, "train/batch_loss": loss}
                self._log(record)
                self._notify("iteration", record=record)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{self.loss_sum / (it + 1):.4f}", refresh=False)
            if self._stop_signal is not None:
                raise Interrupted(f"interrupted ({signal_name(self._stop_signal)}) at epoch "
                                  f"{self.epoch + 1}, iteration {self.iteration}")
        self._close_bar()
        self._end_epoch(started)

    def _end_epoch(self, started: float) -> None:
        scores = {**self.check_accuracy("train"), **self.check_accuracy("val")}
        self.epoch += 1  # once scored: a stop while scoring resumes by scoring again
        self.iteration, self.perm = 0, None
        record = {"epoch": self.epoch, "step": self.step_count, "lr": self.optimizer.lr,
                  "train/objective": self.loss_sum / self.iters_per_epoch, **scores}
        self.elapsed = time.perf_counter() - started
        record["time"] = round(self.elapsed, 3)
        if self.diagnostics is not None:
            record["layers"] = self.diagnostics.summary()
        value = record.get(self.monitor)
        if self.schedule is not None and value is not None:
            self.schedule.observe(value, self.mode)
        if improves(value, self.best_value, self.mode):
            self.best_value, self.best_epoch = value, self.epoch
            self.best_params = {k: v.copy() for k, v in self.model.params.items()}
            self.best_buffers = {k: v.copy() for k, v in self.model.buffers.items()}
            if self.run is not None:
                self._pending_best = {k: np.array(v) for k, v in self._checkpoint().items()}
        if self.cfg.early_stopping is not None:
            stop_value = record.get(self.stop_monitor)
            if improves(stop_value, self.stop_best, self.stop_mode, self.cfg.early_stopping.min_delta):
                self.stop_best, self.stale_epochs = stop_value, 0
            else:
                self.stale_epochs += 1
            if self.patience_ran_out():
                self.status = "early_stopped"
                record["status"] = "early_stopped"
        self.history.append(record)
        self._log(record)
        self._notify("epoch", record=record, params=self.model.params, grads=self.grads)
        self._save(force=False)

    def patience_ran_out(self) -> bool:
        """Early stopping's verdict: ``patience`` epochs in a row without improvement. A
        run resumed after it stopped this way has nothing left to train."""
        stopping = self.cfg.early_stopping
        return stopping is not None and self.stale_epochs >= stopping.patience

    def finish(self, score_test: bool = True) -> dict:
        """Load the best parameters, score the test split once with them (only for a
        run that ended normally) and build the summary, which the observers hear."""
        if self.best_params is not None:
            copy_into(self.model.params, self.best_params)
            copy_into(self.model.buffers, self.best_buffers)
        test = self.check_accuracy("test") if score_test and self.best_params is not None else {}
        best_record = next((r for r in self.history if r["epoch"] == self.best_epoch), None)
        summary = {
            "status": self.status,
            "monitor": self.monitor,
            "mode": self.mode,
            "best_epoch": self.best_epoch,
            "best_value": self.best_value,
            "best": best_record,
            "final": self.history[-1] if self.history else None,
            "test": test,
            "epochs": self.epoch,
            "steps": self.step_count,
            "time_s": round(self.elapsed, 3),
        }
        self._notify("end", summary=summary)
        return summary

    # -- checkpoints and resume ------------------------------------------------------
    def _meta(self) -> dict:
        return {
            "epoch": self.epoch, "iteration": self.iteration, "step": self.step_count,
            "loss_sum": self.loss_sum, "last_finite_loss": self.last_finite_loss,
            "best_value": self.best_value, "best_epoch": self.best_epoch,
            "stop_best": self.stop_best, "stale_epochs": self.stale_epochs,
            "monitor": self.monitor, "threads": self.thread_count, "parts": self.parts,
            "rng": self.rng.bit_generator.state,
            "layer_rngs": {k: g.bit_generator.state for k, g in self.model.rngs().items()},
            "versions": versions(), **self.record,
        }

    def _checkpoint(self) -> dict[str, np.ndarray]:
        arrays = pack_checkpoint(self.model.params, self.model.buffers,
                                 self.optimizer.state_dict(),
                                 self.schedule.state_dict() if self.schedule else {},
                                 self._meta())
        if self.perm is not None:  # stopped within an epoch (maybe before its first step)
            arrays["perm"] = self.perm
            if self.diagnostics is not None:
                arrays.update({f"diagnostics/{k}": v for k, v in self.diagnostics.state_dict().items()})
        return arrays

    def _save(self, force: bool) -> None:
        """Write a pending best checkpoint, then ``last.npz``: at the end of training, on
        a stop, and otherwise at most every ``checkpoint.every_seconds`` (each write is
        fsynced, which costs more than a small model's epoch). Written in this order, the
        best metric recorded in ``last.npz`` always belongs to the ``best.npz`` on disk."""
        if self.run is None:
            return
        if not force and time.monotonic() - self._last_saved < self.save_every:
            return
        if self._pending_best is not None:
            self.run.save_checkpoint("best", self._pending_best)
            self._pending_best = None
        self.run.save_checkpoint("last", self._checkpoint())
        self._last_saved = time.monotonic()

    def restore(self, state: dict, best: dict | None) -> None:
        """Continue from an unpacked ``last`` checkpoint (and the ``best`` one); RunError,
        before anything is written to the run folder, when its optimizer, schedule or
        generator state does not fit."""
        try:
            self.optimizer.load_state_dict(state["optim"], self.model.params)
            if self.schedule is not None:
                self.schedule.load_state_dict(state["schedule"])
        except ValueError as error:
            raise RunError(f"{self.run.layout.checkpoint('last') if self.run else 'checkpoint'}: "
                           f"{error}; nothing was resumed and the run folder is unchanged") from None
        copy_into(self.model.params, state["params"])
        copy_into(self.model.buffers, state["buffers"])
        meta = state["meta"]
        try:
            self._restore_epoch(state)
        except RunError as error:
            source = self.run.layout.checkpoint("last") if self.run else "checkpoint"
            raise RunError(f"{source}: {error}; nothing was resumed and the run folder is "
                           f"unchanged") from None
        self.epoch, self.iteration, self.step_count = meta["epoch"], meta["iteration"], meta["step"]
        self.loss_sum, self.last_finite_loss = meta["loss_sum"], meta["last_finite_loss"]
        self.best_value, self.best_epoch = meta["best_value"], meta["best_epoch"]
        self.stop_best, self.stale_epochs = meta["stop_best"], meta["stale_epochs"]
        try:
            self.rng.bit_generator.state = meta["rng"]
            for path, generator in self.model.rngs().items():
                generator.bit_generator.state = meta["layer_rngs"][path]
        except (KeyError, TypeError, ValueError) as error:
            raise RunError(f"checkpoint 'meta' holds no usable generator state ({error!r}); "
                           f"nothing was resumed and the run folder is unchanged") from None
        self.perm = state.get("perm")
        if best is not None:
            self.best_params, self.best_buffers = best["params"], best["buffers"]
        if self.run is not None:
            self.history = [r for r in self.run.read_metrics()  # epoch records carry lr
                            if "lr" in r and r["epoch"] <= self.epoch]
            # the training time so far, as the last epoch's line has it (an epoch stopped
            # midway counts from its resumption: checkpoints hold no times, so that the
            # same config and seed give the same bytes)
            self.elapsed = float(self.history[-1].get("time", 0.0)) if self.history else 0.0

    def _restore_epoch(self, state: dict) -> None:
        """The epoch a checkpoint stopped midway: its batch order (checked) and its
        diagnostics so far; RunError when they do not fit."""
        meta = state["meta"]
        check_batch_order(state.get("perm"), meta["iteration"], len(self.splits.train.X),
                          self.iters_per_epoch)
        if self.diagnostics is not None and meta["iteration"] and state["diagnostics"]:
            self.diagnostics.load_state_dict(state["diagnostics"])

    # -- plumbing --------------------------------------------------------------------
    def _log(self, record: dict) -> None:
        if self.run is not None:
            self.run.log_metrics(record)

    def _notify(self, event: str, **payload) -> None:
        for observer in self.observers:
            observer(event, payload)

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _progress_bar(self):
        return (batch_bar(self.iters_per_epoch, self.iteration, self.epoch + 1, self.cfg.epochs)
                if self.progress else None)
