"""What a run says as it trains: one line per epoch, as Keras's ``verbose=2`` prints.

```
epoch  3/30  train/loss 0.1043  train/acc 0.9700  val/loss 0.1311  val/acc 0.9638  lr 0.01  0.31s  * best
```

The epoch, the scores of the training subsample and of the validation split, the
learning rate the epoch trained with, the seconds it took, and ``* best`` when the
monitored metric improved (its checkpoint is the one kept). The minibatch average
``train/objective`` (loss plus regularization) stands in for ``train/loss`` only when
the training subsample is not scored (``train.eval_train_samples: 0``). The same lines
go to ``train.log``; on a terminal they print above the batch bar, elsewhere (a pipe,
a file, a batch scheduler) as each epoch ends.
"""

from __future__ import annotations

import math
from typing import Callable

SPLITS = ("train/", "val/")


def score(value) -> str:
    """A score at four decimals, so that the lines of a run align (``0.0659`` under
    ``0.2655``), two from 10 on; scientific notation outside [0.001, 10⁴); ``-`` for a
    missing one."""
    if value is None:
        return "-"
    if not math.isfinite(value) or value != 0 and not 1e-3 <= abs(value) < 1e4:
        return f"{value:.3e}"
    return f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}"


def epoch_scores(record: dict) -> dict:
    """The scores an epoch line shows, training first, in the record's order."""
    scores = {key: value for split in SPLITS for key, value in record.items()
              if key.startswith(split) and key not in ("train/objective", "train/batch_loss")}
    if not any(key.startswith("train/") for key in scores) and "train/objective" in record:
        scores = {"train/objective": record["train/objective"], **scores}
    return scores


def epoch_line(record: dict, epochs: int, seconds: float, best: bool) -> str:
    """One epoch as a line (see the module's docstring)."""
    width = len(str(epochs))
    parts = [f"epoch {record['epoch']:>{width}}/{epochs}"]
    parts += [f"{key} {score(value)}" for key, value in epoch_scores(record).items()]
    parts.append(f"lr {record['lr']:.3g}")
    parts.append(f"{seconds:.2f}s")
    if best:
        parts.append("* best")
    if record.get("status") == "early_stopped":
        parts.append("(early stop)")
    return "  ".join(parts)


class EpochLines:
    """An observer of a Solver (``Solver.observers``) that hands each epoch's line to
    ``say``; the seconds are those of the epoch, from the run's clock (which a resumed
    run takes up where it stopped)."""

    def __init__(self, solver, say: Callable[[str], None]):
        self.solver, self.say = solver, say
        self.clock = solver.elapsed

    def __call__(self, event: str, payload: dict) -> None:
        if event != "epoch":
            return
        record = payload["record"]
        seconds, self.clock = record["time"] - self.clock, record["time"]
        best = self.solver.best_epoch == record["epoch"]
        self.say(epoch_line(record, self.solver.cfg.epochs, seconds, best))


def batch_bar(total: int, done: int, epoch: int, epochs: int):
    """The bar of epoch ``epoch`` of ``epochs`` on a terminal: ``done`` of its ``total``
    batches trained (tqdm, gone once the epoch ends)."""
    from tqdm import tqdm

    return tqdm(total=total, initial=done, leave=False, desc=f"epoch {epoch}/{epochs}",
                unit="batch")
