"""The `dl` command: ``python -m dl_cli`` or the ``dl`` script.

The command line is imported inside ``main()``, not at the top: a sweep's worker
processes start by importing the script that started their driver, and this way they
skip typer and rich.
"""


def main() -> None:
    from . import quick_exit  # noqa: F401  (first: its exit handler runs last)
    from .cli import app

    app(prog_name="dl")


if __name__ == "__main__":
    main()
