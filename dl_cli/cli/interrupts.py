"""One answer to a Ctrl-C that lands outside the training loop's and the sweep runner's
own handling: one line saying what it leaves on disk and what to do with it, exit 130.

A command says what it is writing as it makes or opens a folder (``writing``), inside
``interrupts_held`` so that a Ctrl-C cannot fall between the two; ``leave`` reads it.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer

from ..layout import RunLayout
from .output import AS_IS, EXIT_INTERRUPTED, err

# What the command is writing: ("run" | "kfold" | "sweep", its folder), or ("done", a
# finished run). Set as a folder is made or opened, None until then.
_writing: Optional[tuple[str, Path]] = None


def reset() -> None:
    """A command starts: it has written nothing yet."""
    global _writing
    _writing = None


def writing(kind: str, folder) -> None:
    global _writing
    _writing = (kind, Path(folder))


@contextmanager
def interrupts_held():
    """A Ctrl-C waits for the end of the block: a folder being made is then made, and
    ``writing`` has said which."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        signal.raise_signal(signal.SIGINT)  # to the handler as it was


def interrupted(command: Optional[str]) -> str:
    """The line a Ctrl-C prints: what it leaves on disk, and what to do with it."""
    if _writing is None:
        stage = {"train": "training", "sweep": "the sweep"}.get(command)
        if stage is not None:
            return f"interrupted before {stage} started; nothing was written"
        return "interrupted" if command in ("plot", "report") else "interrupted; nothing was written"
    kind, folder = _writing
    if kind == "done":
        return f"interrupted after training ended; the run in {folder} is complete"
    if kind == "sweep":
        return f"interrupted; the sweep folder stays: dl sweep --resume {folder} runs what is left"
    if kind == "kfold" or RunLayout(folder).checkpoint("last").exists():
        return f"interrupted; continue with dl train --resume {folder}"
    return (f"interrupted before any checkpoint was saved; {folder} cannot be resumed: "
            f"remove it")


def leave(command: Optional[str]) -> None:
    """Say what a Ctrl-C leaves behind (``interrupted``) and exit 130."""
    if _writing is not None:  # a run's lock taken before training.train would release it
        from ..runs import release_held_locks

        release_held_locks()
    err.print(interrupted(command), **AS_IS)
    raise typer.Exit(EXIT_INTERRUPTED)
