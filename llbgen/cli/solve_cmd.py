"""``llbgen llb`` (print a graph's Definition) and ``llbgen solve`` (build any Python graph)."""

from __future__ import annotations

import sys
from enum import Enum
from typing import Annotated

import typer

from llbgen.cli.common import (
    AllowOpt,
    BuilderOpt,
    CacheFromOpt,
    CacheToOpt,
    LoadOpt,
    LocalOpt,
    OutputOpt,
    ProgressOpt,
    PushOpt,
    SecretOpt,
    TagOpt,
    TlsCaOpt,
    TlsCertOpt,
    TlsKeyOpt,
    TlsNameOpt,
    check_progress,
    check_tags,
    echo_loaded,
    parse_locals,
    plan_outputs,
)
from llbgen.cli.main import app

GraphArg = Annotated[str, typer.Argument(help="FILE.py:NAME or module:NAME — a State, or a function returning one.")]


class LlbFormat(str, Enum):
    pb = "pb"
    json = "json"


@app.command("llb")
def llb_command(
    graph: GraphArg,
    format: Annotated[LlbFormat, typer.Option("--format", help="pb: Definition bytes for `buildctl build`; json: one op per line.")] = LlbFormat.pb,
) -> None:
    """Write a graph's LLB Definition to stdout (no builder needed)."""
    from llbgen.graphfile import load_graph
    from llbgen.llb import marshal

    definition = marshal(load_graph(graph))
    if format is LlbFormat.pb:
        if sys.stdout.isatty():
            typer.echo("llbgen: refusing to write binary protobuf to a terminal; redirect stdout or use --format json", err=True)
            raise typer.Exit(2)
        sys.stdout.buffer.write(definition.to_bytes())
        sys.stdout.buffer.flush()
    else:
        for line in definition.json_lines():
            typer.echo(line)


@app.command("solve")
def solve_command(
    graph: GraphArg,
    builder: BuilderOpt = None,
    output: OutputOpt = None,
    tag: TagOpt = None,
    load: LoadOpt = False,
    push: PushOpt = False,
    cache_to: CacheToOpt = None,
    cache_from: CacheFromOpt = None,
    secret: SecretOpt = None,
    local: LocalOpt = None,
    allow: AllowOpt = None,
    progress: ProgressOpt = "auto",
    tlscacert: TlsCaOpt = None,
    tlscert: TlsCertOpt = None,
    tlskey: TlsKeyOpt = None,
    tls_server_name: TlsNameOpt = None,
) -> None:
    """Build any Python LLB graph on a BuildKit builder and export it."""
    from llbgen.builder.address import resolve_builder_address
    from llbgen.builder.client import Builder
    from llbgen.builder.options import CacheEntry, parse_secret
    from llbgen.builder.solve import SolveOptions
    from llbgen.graphfile import find_graph

    # Everything the user typed is checked before any connection is made: the graph file too.
    target = find_graph(graph)
    state = None if target.needs_builder else target.evaluate()
    mode = check_progress(progress)
    address = resolve_builder_address(builder, tls_ca=tlscacert, tls_cert=tlscert, tls_key=tlskey,
                                      tls_server_name=tls_server_name)
    outputs = plan_outputs(outputs=output, tags=check_tags(tag), load=load, push=push, docker_builder=address.kind == "docker")
    if any(o.load for o in outputs):
        from llbgen.builder.engine_load import require_local_engine

        require_local_engine(str(address))
    options = SolveOptions(
        outputs=outputs,
        cache_to=[CacheEntry.parse(c, export=True) for c in cache_to or []],
        cache_from=[CacheEntry.parse(c, export=False) for c in cache_from or []],
        secrets=dict(parse_secret(s) for s in secret or []),
        local_dirs=parse_locals(local),
        entitlements=list(allow or []),
        progress=mode,  # type: ignore[arg-type]
    )
    with Builder.connect(address) as builder:
        if state is None:
            state = target.evaluate(resolve=builder.resolve)
        result = builder.solve(state, options)
    if mode != "quiet":
        echo_loaded(result.loaded_images)
    if result.image_digest:
        typer.echo(result.image_digest)
