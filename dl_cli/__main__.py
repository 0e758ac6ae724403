"""The `dl` command: ``python -m dl_cli`` or the ``dl`` script.

The command line is imported inside ``main()``, not at the top: a sweep's worker
processes start by importing the script that started their driver, and this way they
skip typer and rich.
"""


def main() -> None:
    from . import quick_exit  # noqa: F401  (first: its exit handler runs last)

    try:
        from typer.main import get_command

        from .cli.app import app

        command = get_command(app)  # what app() does first: read every command's signature
    except KeyboardInterrupt:  # once the commands run, cli.app.Commands answers a Ctrl-C
        import signal
        import sys

        signal.signal(signal.SIGINT, signal.SIG_IGN)  # leaving already
        sys.stderr.write("interrupted while dl was starting; nothing was written\n")
        raise SystemExit(130) from None
    command(prog_name="dl")


if __name__ == "__main__":
    main()
