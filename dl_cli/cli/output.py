"""What the commands print, and how they stop: consoles, errors, warnings, exit codes.

Exit codes: 0 success; 1 a gradient check failed, a write failed, a sweep in which no
trial completed (or that --fail-fast stopped), or a run whose Dask workers were all lost
(the resume command is printed); 2 bad input (config, path, option, data file,
checkpoint) or a sweep whose workers die as they start; 3 training diverged; 130
interrupted (the resume command is printed; a Ctrl-C before training or a sweep starts
says what it leaves behind, see ``interrupts.interrupted``).
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from ..memory import out_of_memory, too_large

EXIT_BAD_INPUT, EXIT_DIVERGED, EXIT_INTERRUPTED = 2, 3, 130

# Text we did not write (paths, names, messages) is printed AS_IS or escaped: Rich would
# read "[minmax]" as a tag and drop it. No emoji codes either (":x:" stays as it is).
# In a pipe or a file, tables are as wide as their content (Rich would cut them at 80
# columns, breaking run paths and values); a terminal's width, or COLUMNS, still rules.
PIPE_WIDTH = 1000
READING_WIDTH = 100  # prose (dl layers' descriptions) in a pipe wraps here instead


def console(stream) -> Console:
    piped = not stream.isatty() and "COLUMNS" not in os.environ
    return Console(stderr=stream is sys.stderr, emoji=False, width=PIPE_WIDTH if piped else None)


def reading_width(shown: Console) -> int | None:
    """The width to print prose at: the terminal's (None), or ``READING_WIDTH`` in a pipe."""
    return READING_WIDTH if shown.width == PIPE_WIDTH else None


out = console(sys.stdout)
err = console(sys.stderr)
AS_IS = {"markup": False, "highlight": False, "soft_wrap": True}  # and paths stay on one line


def fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    """Print ``message`` (taken literally, never as Rich markup) to stderr and exit."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)


def flag(*decls: str, help: str, **options):
    """An on/off option."""
    # metavar="": typer's Rich help would show "--quiet <bool>", as if a flag took a value
    return typer.Option(False, *decls, metavar="", help=help, **options)


def allow_plugins_flag():
    """``--allow-plugins``, for the commands that read a run folder's config."""
    return flag("--allow-plugins", help="Import the plugins the run's config.yaml names "
                "(its own Python code); without it such a run is refused, so that a run "
                "folder from elsewhere cannot run code by being read.")


@contextmanager
def within_memory():
    """Exit 2 with ``out_of_memory``'s advice when the work asks for arrays that cannot
    be made (``memory.too_large``); any other error goes on."""
    try:
        yield
    except (MemoryError, ValueError) as error:
        if not too_large(error):
            raise
        fail(out_of_memory(error))


def load_or_fail(path: Path, overrides: list[str], saved: bool = False,
                 allow_plugins: bool = False):
    """The config at ``path``, or exit 2 with every mistake; ``saved``: a run folder's
    config.yaml, whose mistakes name the file (and whose plugins are refused unless
    ``allow_plugins``)."""
    from ..checks import ConfigError
    from ..config import load_config, load_saved_config

    try:
        return load_saved_config(path, allow_plugins) if saved else load_config(path, overrides)
    except ConfigError as error:
        fail(f"{error}")


# -- the command line's own checks ---------------------------------------------------
def at_least(option: str, value: int, minimum: int) -> None:
    """Refuse an integer option below ``minimum`` (typer's ``min=`` message omits the value)."""
    if value < minimum:
        fail(f"{option}: expected an integer >= {minimum}, got {value}")


def at_most_blas(name: str, count: int) -> None:
    """Refuse more threads than NumPy's BLAS runs: it would quietly run fewer."""
    from ..threads import blas_most

    most = blas_most(count)
    if most < count:
        fail(f"{name}: expected an integer from 1 to {most}, the most threads NumPy's BLAS "
             f"runs here, got {count}")


def check_folder(path: Path, name: str) -> None:
    """Refuse a folder to write runs into (made if missing) whose path runs through a file."""
    for part in (path, *path.parents):
        if part.exists():
            if not part.is_dir():
                what = "a file" if part == path else f"inside the file {part}"
                fail(f"{name}: expected a folder (made if missing), got {path}, {what}")
            return


def run_folder(path: Path, command: str) -> Path:
    """The run folder ``path`` stands for (``layout.resolve_run``: a config's name folder
    means its newest finished run), refused (exit 2) when it is a k-fold run folder or a
    name folder of unfinished runs."""
    from ..layout import resolve_run
    from ..storage import RunError

    try:
        resolved = resolve_run(path)
    except RunError as error:
        fail(str(error))
    one_run(resolved, command)
    return resolved


def one_run(path: Path, command: str) -> None:
    """Exit 2 for a k-fold run folder given to ``dl command``, which reads one run
    (``crossval.refuse_kfold_root`` says which folders to give instead)."""
    from ..crossval import refuse_kfold_root
    from ..storage import RunError

    try:
        refuse_kfold_root(path, command)
    except RunError as error:
        fail(str(error))
