"""``llbgen version``."""

import typer

from llbgen import __version__
from llbgen.cli.main import app


@app.command()
def version() -> None:
    """Print llbgen's version."""
    typer.echo(__version__)
