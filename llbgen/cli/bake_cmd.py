"""``llbgen bake FILE``: build a matrix of images, concurrently, on one or more builders.

Everything is checked before any builder is contacted: the file, every variant's
spec (all invalid combinations listed together), tags, caches and outputs.
``--print`` stops there and shows the variants. Then every builder is connected once
(one that does not answer is skipped with one line, as long as another answers),
the variants run (bounded, spread across the builders), and one summary table ends
the run; the exit code is 0 only when every variant succeeded.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from llbgen.cli.common import SecretOpt, TlsCaOpt, TlsCertOpt, TlsKeyOpt, TlsNameOpt
from llbgen.cli.main import app
from llbgen.errors import UsageError

DEFAULT_MAX_PARALLEL = 4

FileArg = Annotated[Path, typer.Argument(help="Bake file (TOML): shared spec values, axes, include/exclude lists, tag and cache templates.")]
PrintOpt = Annotated[bool, typer.Option("--print", help="Show the resolved variants and exit (no builder needed).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="JSON instead of tables (--print and the summary).")]
BuildersOpt = Annotated[Optional[list[str]], typer.Option("--builder", help="BuildKit address (repeatable): variants are spread across them. Default: the file's builders, else $BUILDKIT_HOST, else the local Docker Engine.")]
BakePushOpt = Annotated[bool, typer.Option("--push", help="Push every image to its registry (tags must name one).")]
BakeLoadOpt = Annotated[bool, typer.Option("--load", help="Load every image into the Docker Engine that built it (default with docker builders).")]
MaxParallelOpt = Annotated[Optional[int], typer.Option("--max-parallel", min=1, help=f"Variants built at once (default: the file's max_parallel, else {DEFAULT_MAX_PARALLEL}).")]
BakeProgressOpt = Annotated[str, typer.Option("--progress", help="auto or plain (lines prefixed with the variant), rawjson, quiet.")]
BakeNetworkOpt = Annotated[Optional[str], typer.Option("--network", help="default or host (download steps use the host's network); default: the file's.")]
BakeTagOpt = Annotated[Optional[list[str]], typer.Option("--tag", "-t", help="Tag template for every variant, e.g. 'reg/pytorch:{torch}-{cuda}' (repeatable; replaces the file's).")]
BakeCacheToOpt = Annotated[Optional[list[str]], typer.Option("--cache-to", help="Cache export for every variant, a template: type=registry,ref=REG/cache:{name},mode=max (repeatable; replaces the file's).")]
BakeCacheFromOpt = Annotated[Optional[list[str]], typer.Option("--cache-from", help="Cache import for every variant, a template: type=registry,ref=REG/cache:{name} (repeatable; replaces the file's).")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="KEY=VALUE spec value for every variant, e.g. mirrors.pip_index_url=URL or pip_packages=a,b (repeatable).")]
BakeCaCertOpt = Annotated[Optional[Path], typer.Option("--ca-cert", help="PEM CA bundle trusted by download steps of every variant (a secret mount; never in an image).")]


@app.command("bake")
def bake_command(
    file: FileArg,
    print_only: PrintOpt = False,
    as_json: JsonOpt = False,
    builder: BuildersOpt = None,
    push: BakePushOpt = False,
    load: BakeLoadOpt = False,
    tag: BakeTagOpt = None,
    cache_to: BakeCacheToOpt = None,
    cache_from: BakeCacheFromOpt = None,
    max_parallel: MaxParallelOpt = None,
    progress: BakeProgressOpt = "auto",
    network: BakeNetworkOpt = None,
    set_values: SetOpt = None,
    ca_cert: BakeCaCertOpt = None,
    secret: SecretOpt = None,
    tlscacert: TlsCaOpt = None,
    tlscert: TlsCertOpt = None,
    tlskey: TlsKeyOpt = None,
    tls_server_name: TlsNameOpt = None,
) -> None:
    """Build a matrix of images from a TOML file: variants run concurrently, spread across builders; one summary."""
    from llbgen.bake import Overrides, load_bake, parse_sets, resolve_variants
    from llbgen.bake.progress import check_bake_progress
    from llbgen.bake.report import variants_json, variants_table
    from llbgen.builder.address import resolve_builder_address
    from llbgen.builder.options import parse_secret
    from llbgen.cli.build_cmd import network_mode
    from llbgen.recipe import check_secret_ids

    # --- everything the user gave is checked before any builder is contacted -------------------
    problems: list[str] = []  # the file's and --set's, reported with the variants' in one error
    bake = load_bake(file.expanduser(), problems)
    spec_overrides = parse_sets(set_values or [], problems)
    if ca_cert is not None:
        spec_overrides["ca_cert"] = str(ca_cert.expanduser().absolute())
    overrides = Overrides(spec=spec_overrides, tag=tuple(tag) if tag else None, cache_to=tuple(cache_to) if cache_to else None,
                          cache_from=tuple(cache_from) if cache_from else None)
    variants = resolve_variants(bake, overrides, problems)
    if print_only:
        for line in ([variants_json(variants)] if as_json else variants_table(variants)):
            typer.echo(line)
        return

    mode = check_bake_progress(progress)
    net = network_mode(network or bake.network)
    push = push or bake.push
    load = load or bake.load
    parallel = max_parallel or bake.max_parallel or DEFAULT_MAX_PARALLEL
    addresses = []
    for given in (builder or list(bake.builders) or [None]):
        address = resolve_builder_address(given, tls_ca=tlscacert, tls_cert=tlscert, tls_key=tlskey,
                                          tls_server_name=tls_server_name)
        if str(address) not in {str(a) for a in addresses}:  # one connection per endpoint
            addresses.append(address)
    _check_outputs(variants, addresses, push=push, load=load)
    user_secrets = dict(parse_secret(s) for s in secret or [])
    check_secret_ids(user_secrets)

    results, wall = _build(variants, addresses, push=push, load=load, network=net, parallel=parallel, mode=mode,
                           user_secrets=user_secrets)

    from llbgen.bake.report import summary_json, summary_table

    typer.echo(summary_json(results) if as_json else "\n".join(summary_table(results, wall)))
    if not all(r.ok for r in results):
        raise typer.Exit(1)


def _check_outputs(variants, addresses, *, push: bool, load: bool) -> None:
    """What each variant exports must be possible on every kind of builder it may land on."""
    from llbgen.cli.common import plan_outputs

    for kind in sorted({a.kind for a in addresses}):
        for v in variants:
            try:
                plan_outputs(outputs=None, tags=list(v.tags), load=load, push=push, docker_builder=kind == "docker")
            except UsageError as err:
                raise UsageError(f"{v.name}: {err}") from None
    standalone = [a for a in addresses if a.kind != "docker"]
    if load and standalone:
        from llbgen.builder.engine_load import require_local_engine

        require_local_engine(str(standalone[0]))


def _build(variants, addresses, *, push, load, network, parallel, mode, user_secrets):
    from contextlib import ExitStack

    from llbgen.bake.run import run_bake

    started = time.monotonic()
    with ExitStack() as stack:
        builders = _live_builders(stack, addresses)
        if mode != "quiet":
            typer.echo(f"llbgen: baking {len(variants)} variant{'s' if len(variants) != 1 else ''} on "
                       f"{', '.join(str(b.address) for b in builders)} (at most {parallel} at once)", err=True)
        results = run_bake(variants, builders, push=push, load=load, network=network, max_parallel=parallel,
                           progress=mode, user_secrets=user_secrets)
    return results, time.monotonic() - started


def _live_builders(stack, addresses):
    """The builders that answer, connected; one line per one that does not. Fails only when none answers."""
    from llbgen.builder.client import Builder
    from llbgen.errors import BuilderUnavailable

    live = []
    for address in addresses:
        builder = Builder.connect(address)
        try:
            stack.enter_context(builder)
            _ = builder.info  # asked once, before the threads share the connection
        except BuilderUnavailable as err:
            builder.connection.close()
            if len(addresses) == 1:
                raise
            typer.echo(f"llbgen: skipping builder {address}: {err}", err=True)
            continue
        live.append(builder)
    if not live:
        raise BuilderUnavailable(f"none of the {len(addresses)} builders answered (each is named above)")
    return live
