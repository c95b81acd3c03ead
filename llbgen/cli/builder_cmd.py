"""``llbgen builder inspect``: which BuildKit we would build with, and what it can do."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from llbgen.cli.main import app, fail
from llbgen.errors import LlbgenError

if TYPE_CHECKING:
    from llbgen.builder.capabilities import BuilderInfo

builder_app = typer.Typer(
    name="builder",
    help="Inspect the BuildKit builder llbgen talks to.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(builder_app, name="builder")

BUILDER_HELP = "docker://, docker://unix:///PATH, docker://tcp://HOST:PORT, unix:///PATH or tcp://HOST:PORT (default: $BUILDKIT_HOST, else the Docker Engine)"


@builder_app.command("inspect")
def inspect(
    builder: Annotated[
        str | None, typer.Option("--builder", help=BUILDER_HELP, show_default=False)
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the builder description as JSON.")
    ] = False,
    tlscacert: Annotated[
        Path | None,
        typer.Option("--tlscacert", help="CA certificate for a TLS builder."),
    ] = None,
    tlscert: Annotated[
        Path | None,
        typer.Option("--tlscert", help="Client certificate for a TLS builder."),
    ] = None,
    tlskey: Annotated[
        Path | None, typer.Option("--tlskey", help="Client key for a TLS builder.")
    ] = None,
    tls_server_name: Annotated[
        str | None,
        typer.Option(
            "--tls-server-name",
            help="Server name expected in the builder's certificate.",
        ),
    ] = None,
) -> None:
    """Show the builder's address, BuildKit version, workers, image store and capabilities."""
    # Imported here so `llbgen --help` does not load grpc and the generated protobuf code.
    from llbgen.builder.address import resolve_builder_address
    from llbgen.builder.capabilities import inspect_builder
    from llbgen.builder.connection import BuilderConnection

    try:
        address = resolve_builder_address(
            builder,
            tls_ca=tlscacert,
            tls_cert=tlscert,
            tls_key=tlskey,
            tls_server_name=tls_server_name,
        )
        with BuilderConnection(address) as conn:
            conn.wait_ready()
            info = inspect_builder(conn)
    except LlbgenError as err:
        fail(err)
        return
    if as_json:
        typer.echo(info.model_dump_json(indent=2))
    else:
        _print_table(info)


def _print_table(info: BuilderInfo) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    def yes_no(flag: bool) -> str:
        return "[green]yes[/green]" if flag else "[red]no[/red]"

    table = Table(title="BuildKit builder", show_header=False, title_justify="left")
    table.add_column("property", style="bold")
    table.add_column("value")
    table.add_row("address", info.address)
    if info.buildkit_version:
        table.add_row("BuildKit version", info.buildkit_version)
    elif info.buildkit_version_inferred:
        table.add_row("BuildKit version", f"{info.buildkit_version_inferred}.x (inferred: the engine does not report it)")
    else:
        table.add_row("BuildKit version", "unknown")
    if info.engine_version:
        table.add_row("Docker Engine", info.engine_version)
    table.add_row("workers", ", ".join(w.id for w in info.workers) or "none")
    table.add_row("platforms", ", ".join(info.platforms) or "none")
    def source(field: str) -> str:
        # Asked (the daemon said so) or assumed (what such a daemon has): see BuilderInfo.sources.
        how = info.sources.get(field)
        return f"  [dim]({escape(how)})[/dim]" if how else ""

    table.add_row("image store", info.image_store + source("image_store"))
    table.add_row("MergeOp", yes_no(info.merge_op) + source("merge_op"))
    table.add_row("DiffOp", yes_no(info.diff_op) + source("diff_op"))
    table.add_row("direct push", yes_no(info.direct_push) + source("direct_push"))
    table.add_row("several outputs", yes_no(info.multiple_exporters) + source("multiple_exporters"))
    table.add_row("exporters", ", ".join(info.exporters) + source("exporters"))
    table.add_row("cache export", ", ".join(info.cache_exporters) + source("cache_exporters"))
    table.add_row("cache import", ", ".join(info.cache_importers) + source("cache_importers"))
    Console().print(table)
