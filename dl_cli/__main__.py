"""``python -m dl_cli`` runs the `dl` command line."""

from .cli import app

app(prog_name="dl")
