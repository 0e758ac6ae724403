"""The `dl` command line: the Typer app, its commands in the order ``dl --help`` lists
them, and one answer to a Ctrl-C as a command starts."""

from __future__ import annotations

from inspect import cleandoc

import typer
from typer.core import TyperGroup

from .. import __version__
from . import interrupts
from .inspect import compare, diagnose, evaluate_run, gradcheck, layers, runs, sample, summary
from .habits import habit_hint
from .output import fail, flag, out
from .sweep import plot, report, sweep
from .train import train
from .use import export, predict


class Commands(TyperGroup):
    """The commands, with one answer to a Ctrl-C (or a SIGTERM, answered the same way)
    that lands outside the training loop's and the sweep runner's own handling: as typer
    reads the command line (its first use imports pydantic) or as a command starts. Typer
    alone exits 130 in silence."""

    def main(self, *args, **options):
        with interrupts.terminate_as_interrupt():
            return super().main(*args, **options)

    def make_context(self, info_name, args, parent=None, **extra):
        interrupts.reset()
        hint = habit_hint(args)
        if hint is not None:
            fail(hint)
        command = next((arg for arg in args if not arg.startswith("-")), None)
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except KeyboardInterrupt:
            interrupts.leave(command)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            interrupts.leave(ctx.invoked_subcommand)


def reflowed(doc: str) -> str:
    """A docstring as help text: its paragraphs, each on one line, for the terminal's
    width to wrap (typer would keep the line breaks within every paragraph but the first)."""
    return "\n\n".join(" ".join(p.split()) for p in cleandoc(doc).split("\n\n"))


def version_callback(value: bool) -> None:
    if value:
        out.print(f"dl {__version__}")
        raise typer.Exit()


def main(version: bool = flag("--version", callback=version_callback, is_eager=True,
                              help="Print the version and exit.")):
    """A deep-learning lab in NumPy: train, gradient-check and compare models from YAML,
    every layer, loss and optimizer written out by hand.

    Start with `dl train configs/quickstart.yaml`, look at a model with
    `dl summary CONFIG`, check its backward pass with `dl gradcheck CONFIG`;
    `dl COMMAND --help` for each command.
    """


COMMANDS = {"train": train, "gradcheck": gradcheck, "summary": summary, "layers": layers,
            "eval": evaluate_run, "predict": predict, "export": export, "sample": sample,
            "diagnose": diagnose, "runs": runs, "compare": compare, "sweep": sweep, "plot": plot,
            "report": report}

app = typer.Typer(cls=Commands, no_args_is_help=True, add_completion=True,
                  pretty_exceptions_enable=False)
app.callback(help=reflowed(main.__doc__))(main)
for name, command in COMMANDS.items():
    app.command(name, help=reflowed(command.__doc__))(command)
