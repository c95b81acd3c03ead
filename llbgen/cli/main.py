"""The ``llbgen`` command line: thin typer commands over the library.

Heavy imports (grpc, docker, generated protobuf) happen inside the commands so
``--help`` stays instant. Known errors become one line on stderr and an exit code.
"""

from __future__ import annotations

import os
import sys

import typer

from llbgen.errors import LlbgenError

app = typer.Typer(
    name="llbgen",
    help="Build PyTorch GPU-cloud images as BuildKit LLB, layer by layer.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Build PyTorch GPU-cloud images as BuildKit LLB, layer by layer."""


def fail(err: LlbgenError) -> None:
    """Print a user-facing error as one line and exit with its code."""
    typer.echo(f"llbgen: error: {err}", err=True)
    raise typer.Exit(err.exit_code)


def _register_subcommands() -> None:
    from llbgen.cli import commands

    commands.register(sys.argv[1:])


def main() -> None:
    """Console entry point: run the app, turning user errors into one line."""
    # grpc's C core logs connection errors to stderr itself; llbgen reports them as one line.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    # No third-party pydantic plugins in llbgen's own models (typer turns them off for its
    # parameters too); finding them means reading every installed package's entry points.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    _register_subcommands()
    try:
        app()
    except LlbgenError as err:
        typer.echo(f"llbgen: error: {err}", err=True)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        typer.echo("llbgen: cancelled", err=True)
        sys.exit(130)
