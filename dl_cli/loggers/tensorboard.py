"""TensorBoard: event files in ``RUN/tensorboard/``, written with tensorboard's own event
writer and summary protos (``pip install 'dl-cli[tensorboard]'``; no TensorFlow, no torch).

```
tensorboard --logdir runs            # every run (and every sweep trial) under runs/
```

What a run shows there:

- Scalars, at the record's ``step`` (iterations so far, as in metrics.jsonl): each epoch's
  record under its metrics.jsonl names (``val/acc``, ``train/loss``, ``lr``, ``time``, ...)
  and ``epoch``; ``train/batch_loss`` (``train.log_every``); with ``train.diagnostics``
  the per-layer statistics
  (``layers/0.affine/grad_norm``, ``.../update_ratio``, ``.../act_std``, ...) and weight norms
  (``layers/0.affine/weight_norm``). At the end the test metrics of the best parameters
  (``test/acc``) and ``best/<monitor>`` at the best epoch's step.
- Histograms: ``weights/<param>`` and ``gradients/<param>`` (the epoch's last update)
  every ``train.tensorboard.histograms_every`` epochs.
- HParams: the resolved config as flat dotted keys, and ``run_dir``, the run folder; the
  session's status at the end. The HParams dashboard lines runs up by them.

A resumed run opens a new event file in the same folder, which starts with a session
START at the step after its checkpoint's: TensorBoard drops the points of the old file
from that step on (they were trained again), so the curves join. One step axis for every
scalar is what makes that work.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from tensorboard.compat.proto.event_pb2 import Event, SessionLog
from tensorboard.compat.proto.summary_pb2 import HistogramProto, Summary
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
from tensorboard.plugins.hparams.summary_v2 import hparams_pb
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from ..layout import RunLayout
from ..schema import Config
from .base import Logger, LoggerError, hyperparameters, scalars, test_metrics, weight_norms

HISTOGRAM_BUCKETS = 30


def histogram(values: np.ndarray):
    """A ``HistogramProto`` of the finite values: ``bucket[i]`` values up to
    ``bucket_limit[i]`` (and above the previous limit)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    if x.size == 0:
        return HistogramProto()
    counts, edges = np.histogram(x, bins=HISTOGRAM_BUCKETS)
    return HistogramProto(min=float(x.min()), max=float(x.max()), num=float(x.size),
                          sum=float(x.sum()), sum_squares=float(np.dot(x, x)),
                          bucket_limit=edges[1:].tolist(), bucket=counts.astype(float).tolist())


class TensorBoardLogger(Logger):
    """Writes a run's events to ``RUN/tensorboard``. It starts once its package is
    imported; ``open`` makes the event file, LoggerError when the folder cannot be written."""

    name = "tensorboard"

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.every = cfg.train.tensorboard.histograms_every
        self.layer_names = {i: spec if isinstance(spec, str) else spec["type"]
                            for i, spec in enumerate(cfg.model.layers)}
        self.writer: EventFileWriter | None = None

    def open(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.folder = RunLayout(self.run_dir).tensorboard
        try:
            self.writer = EventFileWriter(str(self.folder), flush_secs=10)
        except OSError as error:
            raise LoggerError(f"train.loggers: tensorboard cannot write to {self.folder} "
                              f"({error.strerror or error})") from None

    # -- writing ---------------------------------------------------------------------
    def write(self, step: int, values: list) -> None:
        """One event holding ``values`` (``Summary.Value`` protos) at ``step``."""
        self.writer.add_event(Event(wall_time=time.time(), step=int(step),
                                    summary=Summary(value=values)))

    def write_scalars(self, step: int, numbers: dict[str, float]) -> None:
        if numbers:
            self.write(step, [Summary.Value(tag=tag, simple_value=value)
                              for tag, value in numbers.items()])

    def write_hparams_status(self, status: int) -> None:
        """The HParams session's end: ``api_pb2.STATUS_SUCCESS`` or ``STATUS_FAILURE``."""
        info = plugin_data_pb2.SessionEndInfo(status=status, end_time_secs=time.time())
        data = metadata.create_summary_metadata(plugin_data_pb2.HParamsPluginData(session_end_info=info))
        self.write(0, [Summary.Value(tag=metadata.SESSION_END_INFO_TAG, metadata=data,
                                     tensor=metadata.NULL_TENSOR)])

    # -- the Solver's events ---------------------------------------------------------
    def start(self, epoch: int, step: int) -> None:
        if step > 0:  # resumed: what the old files hold from step + 1 on is trained again
            self.writer.add_event(Event(wall_time=time.time(), step=step + 1,
                                        session_log=SessionLog(status=SessionLog.START)))
        values = {**hyperparameters(self.cfg), "run_dir": str(self.run_dir)}
        self.writer.add_event(Event(wall_time=time.time(), step=0,
                                    summary=hparams_pb(values, trial_id=str(self.run_dir))))
        self.writer.flush()

    def iteration(self, record: dict) -> None:
        self.write_scalars(record["step"], scalars(record))

    def epoch(self, record: dict, params: dict | None = None, grads: dict | None = None) -> None:
        numbers = {"epoch": float(record["epoch"]), **scalars(record)}
        if params is not None and "layers" in record:
            numbers.update(weight_norms(params, self.layer_names))
        self.write_scalars(record["step"], numbers)
        if params is not None and self.every and record["epoch"] % self.every == 0:
            values = [Summary.Value(tag=f"weights/{key}", histo=histogram(w))
                      for key, w in params.items()]
            values += [Summary.Value(tag=f"gradients/{key}", histo=histogram(g))
                       for key, g in (grads or {}).items()]
            self.write(record["step"], values)
        self.writer.flush()

    def end(self, summary: dict) -> None:
        self.write_scalars(summary.get("steps") or 0, test_metrics(summary))
        best = summary.get("best")
        if summary.get("best_value") is not None and best is not None:
            self.write_scalars(best["step"], {f"best/{summary['monitor']}": float(summary["best_value"])})
        finished = summary.get("status") in ("completed", "early_stopped")
        self.write_hparams_status(api_pb2.STATUS_SUCCESS if finished else api_pb2.STATUS_FAILURE)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
