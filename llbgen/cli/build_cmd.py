"""``llbgen build`` (build the PyTorch image) and ``llbgen plan`` (show its layers).

Every flag is parsed and the spec resolved before anything connects, so bad
input fails in one line without a builder. ``--dry-run`` and ``plan`` print the
layer plan: each layer, its digest, what its cache key depends on and — when a
builder answers — whether the builder already has it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated

import typer

from llbgen.cli.common import (
    BuilderOpt,
    CacheFromOpt,
    CacheToOpt,
    LoadOpt,
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
    plan_outputs,
)
from llbgen.cli.main import app
from llbgen.cli.spec_options import (  # noqa: F401  (spec_overrides, network_mode: imported from here by tests)
    AptMirrorOpt,
    AptPackageOpt,
    BaseImageOpt,
    BuilderImageOpt,
    CaCertOpt,
    CondaChannelOpt,
    ConfigOpt,
    CpuOpt,
    CudaOpt,
    CudnnOpt,
    DistroOpt,
    FlavourOpt,
    HttpProxyOpt,
    HttpsProxyOpt,
    MinicondaInstallerOpt,
    MinicondaShaOpt,
    MinicondaUrlOpt,
    NetworkOpt,
    NoProxyOpt,
    PipExtraIndexOpt,
    PipIndexOpt,
    PipPackageOpt,
    PythonOpt,
    TagTemplateOpt,
    TorchaudioOpt,
    TorchIndexOpt,
    TorchOpt,
    TorchvisionOpt,
    load_resolved,
    network_mode,
    spec_overrides,
)

if TYPE_CHECKING:
    from llbgen.builder.address import BuilderAddress
    from llbgen.llb import State
    from llbgen.spec import ResolvedSpec
    from stages import LayerPlan

# --- build options -----------------------------------------------------------------------
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print the layer plan and exit without building.")]
AlwaysSolveOpt = Annotated[bool, typer.Option(
    "--always-solve",
    help="Solve even when every tag already holds the image this exact graph makes (by default llbgen then "
         "skips BuildKit and says the image is up to date).")]

PROBE_TIMEOUT = 5.0

CACHED_LEGEND = ("CACHED: no = the builder has no result of this layer's step, it will run; likely = it has a "
                 "result of the same command (inputs not compared); unknown = cannot tell cheaply")


@app.command("build")
def build_command(
    torch: TorchOpt = None,
    torchvision: TorchvisionOpt = None,
    torchaudio: TorchaudioOpt = None,
    cuda: CudaOpt = None,
    cpu: CpuOpt = None,
    cudnn: CudnnOpt = None,
    python: PythonOpt = None,
    distro: DistroOpt = None,
    flavour: FlavourOpt = None,
    base_image: BaseImageOpt = None,
    builder_image: BuilderImageOpt = None,
    apt_package: AptPackageOpt = None,
    pip_package: PipPackageOpt = None,
    apt_mirror: AptMirrorOpt = None,
    pip_index_url: PipIndexOpt = None,
    pip_extra_index_url: PipExtraIndexOpt = None,
    miniconda_url: MinicondaUrlOpt = None,
    miniconda_installer: MinicondaInstallerOpt = None,
    miniconda_sha256: MinicondaShaOpt = None,
    conda_channel: CondaChannelOpt = None,
    torch_index_url: TorchIndexOpt = None,
    ca_cert: CaCertOpt = None,
    http_proxy: HttpProxyOpt = None,
    https_proxy: HttpsProxyOpt = None,
    no_proxy: NoProxyOpt = None,
    tag_template: TagTemplateOpt = None,
    config: ConfigOpt = None,
    builder: BuilderOpt = None,
    tag: TagOpt = None,
    load: LoadOpt = False,
    push: PushOpt = False,
    output: OutputOpt = None,
    cache_to: CacheToOpt = None,
    cache_from: CacheFromOpt = None,
    secret: SecretOpt = None,
    network: NetworkOpt = "default",
    progress: ProgressOpt = "auto",
    dry_run: DryRunOpt = False,
    always_solve: AlwaysSolveOpt = False,
    tlscacert: TlsCaOpt = None,
    tlscert: TlsCertOpt = None,
    tlskey: TlsKeyOpt = None,
    tls_server_name: TlsNameOpt = None,
) -> None:
    """Build the PyTorch image: os on the base; python, jupyter, torch as shared layers; init."""
    from llbgen.builder.address import resolve_builder_address
    from llbgen.builder.options import CacheEntry, Output, parse_secret
    from llbgen.recipe import build_image, check_secret_ids, stage_secrets

    # Everything the user typed is checked before any connection is made.
    resolved = load_resolved(locals())
    mode = check_progress(progress)
    net = network_mode(network)
    address = resolve_builder_address(builder, tls_ca=tlscacert, tls_cert=tlscert, tls_key=tlskey,
                                      tls_server_name=tls_server_name)
    tags = check_tags(tag) or [resolved.tag]
    if dry_run:  # nothing is exported, but what was given must still be valid
        outputs = [Output.parse(o) for o in output or []]
    else:
        outputs = plan_outputs(outputs=output, tags=tags, load=load, push=push,
                               docker_builder=address.kind == "docker")
    caches_to = [CacheEntry.parse(c, export=True) for c in cache_to or []]
    caches_from = [CacheEntry.parse(c, export=False) for c in cache_from or []]
    user_secrets = dict(parse_secret(s) for s in secret or [])
    check_secret_ids(user_secrets)

    if dry_run:
        _print_plan(resolved, address, tag=tags[0], network=net, cache_from_given=bool(caches_from))
        return

    if any(o.load for o in outputs):
        from llbgen.builder.engine_load import require_local_engine

        require_local_engine(str(address))
    secrets = stage_secrets(resolved, user_secrets)  # the CA file is read now
    if not always_solve and _up_to_date(resolved, address, outputs=outputs, caches_to=caches_to, network=net,
                                        mode=mode):
        return

    from llbgen.builder.client import Builder

    with Builder.connect(address) as b:

        def show(plan: LayerPlan) -> None:
            if plan.notice:
                typer.echo(f"llbgen: notice: {b.info.address}: {plan.notice}", err=True)
            for warning in plan.warnings:
                typer.echo(f"llbgen: warning: {warning}", err=True)
            if mode != "quiet":
                _echo_plan(plan, err=True)

        outcome = build_image(b, resolved, tags=tags, outputs=outputs, cache_to=caches_to, cache_from=caches_from,
                              secrets=secrets, network=net, progress=mode, on_plan=show)  # type: ignore[arg-type]
        engine = b.connection.engine
        in_engine = any(o.type == "moby" for o in outputs) and engine is not None
        size = None
        if in_engine and mode != "quiet":
            from llbgen.bake.size import engine_image_size

            size = engine_image_size(engine, outcome.tag)
    if mode != "quiet":
        echo_loaded(outcome.result.loaded_images)
    if outcome.image_digest:
        typer.echo(outcome.image_digest)  # stdout: for scripts
    if mode != "quiet":
        from llbgen.cli.build_summary import format_build_summary

        for line in format_build_summary(tags=outcome.tags, digest=outcome.image_digest, size=size,
                                         layers=outcome.layers, seconds=outcome.seconds, in_engine=in_engine):
            typer.echo(line, err=True)


def _up_to_date(resolved: ResolvedSpec, address: BuilderAddress, *, outputs, caches_to, network: str,
                mode: str) -> bool:
    """Report and return True when the engine already holds this build's image under every tag."""
    from llbgen.uptodate import check_up_to_date

    done = check_up_to_date(address, resolved, outputs=outputs, cache_to=caches_to, network=network)
    if done is None:
        return False
    for warning in done.plan.warnings:
        typer.echo(f"llbgen: warning: {warning}", err=True)
    if mode != "quiet":
        _echo_plan(done.plan, err=True)
        verb = "holds" if len(done.tags) == 1 else "hold"
        typer.echo(f"llbgen: up to date: {', '.join(done.tags)} already {verb} the image of this exact graph "
                   f"(build fingerprint {done.fingerprint[:19]}); nothing to solve (--always-solve to solve anyway)",
                   err=True)
    typer.echo(done.image_id)
    return True


@app.command("plan")
def plan_command(
    torch: TorchOpt = None,
    torchvision: TorchvisionOpt = None,
    torchaudio: TorchaudioOpt = None,
    cuda: CudaOpt = None,
    cpu: CpuOpt = None,
    cudnn: CudnnOpt = None,
    python: PythonOpt = None,
    distro: DistroOpt = None,
    flavour: FlavourOpt = None,
    base_image: BaseImageOpt = None,
    builder_image: BuilderImageOpt = None,
    apt_package: AptPackageOpt = None,
    pip_package: PipPackageOpt = None,
    apt_mirror: AptMirrorOpt = None,
    pip_index_url: PipIndexOpt = None,
    pip_extra_index_url: PipExtraIndexOpt = None,
    miniconda_url: MinicondaUrlOpt = None,
    miniconda_installer: MinicondaInstallerOpt = None,
    miniconda_sha256: MinicondaShaOpt = None,
    conda_channel: CondaChannelOpt = None,
    torch_index_url: TorchIndexOpt = None,
    ca_cert: CaCertOpt = None,
    http_proxy: HttpProxyOpt = None,
    https_proxy: HttpsProxyOpt = None,
    no_proxy: NoProxyOpt = None,
    tag_template: TagTemplateOpt = None,
    config: ConfigOpt = None,
    builder: BuilderOpt = None,
    tag: TagOpt = None,
    network: NetworkOpt = "default",
    tlscacert: TlsCaOpt = None,
    tlscert: TlsCertOpt = None,
    tlskey: TlsKeyOpt = None,
    tls_server_name: TlsNameOpt = None,
) -> None:
    """Show the image's layers, what each depends on, and which the builder already has (same as build --dry-run)."""
    from llbgen.builder.address import resolve_builder_address

    resolved = load_resolved(locals())
    tags = check_tags(tag) or [resolved.tag]
    net = network_mode(network)
    address = resolve_builder_address(builder, tls_ca=tlscacert, tls_cert=tlscert, tls_key=tlskey,
                                      tls_server_name=tls_server_name)
    _print_plan(resolved, address, tag=tags[0], network=net, cache_from_given=False)


# --- the plan, with what the builder can tell ------------------------------------------------


def _print_plan(resolved: ResolvedSpec, address: BuilderAddress, *, tag: str, network: str,
                cache_from_given: bool) -> None:
    from llbgen.errors import LlbgenError
    from stages import StageContext, layer_plan

    notes: list[str] = []
    base = builder_state = None
    merge_ok = True
    descriptions: set[str] | None = None
    b = _probe(address, notes)
    if b is not None:
        try:
            merge_ok = b.info.merge_op and b.info.diff_op
            base = _try_resolve(b, resolved.base_image, notes)
            builder_state = base if resolved.builder_image == resolved.base_image else _try_resolve(
                b, resolved.builder_image, notes)
            descriptions = _cache_records(b, notes)
        except LlbgenError as err:
            notes.append(f"builder {address}: {err}")
        finally:
            b.connection.close()
    ctx = StageContext.create(resolved, base=base, builder=builder_state, image_tag=tag, network=network)  # type: ignore[arg-type]
    plan = layer_plan(ctx, merge_supported=merge_ok)
    if b is None:
        notes.append("MergeOp/DiffOp assumed (no builder to ask)")
    cached = None
    if descriptions is not None:
        cached = cached_layers(plan, descriptions, cache_from_given=cache_from_given)
    _echo_plan(plan, cached=cached, base_note="" if base is not None else "not pinned")
    for note in (*plan.notes, *notes):
        typer.echo(f"note: {note}")
    for warning in plan.warnings:
        typer.echo(f"warning: {warning}")
    if plan.notice:
        typer.echo(f"notice: {plan.notice}")


def _echo_plan(plan: LayerPlan, *, cached: Mapping[str, str] | None = None, base_note: str = "",
               err: bool = False) -> None:
    from stages.plan import format_table

    joined = ("MergeOp/DiffOp: python, jupyter and torch built on the builder image, independent of the base"
              if plan.merged else "linear chain")
    typer.echo(f"Layer plan for {_tag_of(plan)} ({joined})", err=err)
    for line in format_table(plan, cached, base_note=base_note):
        typer.echo(line, err=err)
    if cached is not None:
        typer.echo(CACHED_LEGEND, err=err)


def _tag_of(plan: LayerPlan) -> str:
    init = plan.layer("init").stage
    return dict(getattr(init, "info", ())).get("IMAGE", "")


def _probe(address: BuilderAddress, notes: list[str]):
    """A connected Builder, or None (and a note) when none answers within a few seconds."""
    from llbgen.builder.client import Builder
    from llbgen.errors import LlbgenError

    b = Builder.connect(address)
    try:
        b.connection.open()
        b.connection.wait_ready(timeout=PROBE_TIMEOUT)
    except LlbgenError as err:
        b.connection.close()
        notes.append(f"no builder: {err}; digests use unpinned base images, CACHED unknown")
        return None
    except Exception as err:  # a builder that cannot be reached is not an error for a plan
        b.connection.close()
        notes.append(f"no builder at {address}: {err}; digests use unpinned base images, CACHED unknown")
        return None
    return b


def _try_resolve(b, ref: str, notes: list[str]) -> State | None:
    from llbgen.errors import LlbgenError
    from stages.context import PLATFORM

    try:
        return b.resolve(ref, platform=PLATFORM)
    except LlbgenError as err:
        notes.append(f"{ref} not pinned: {err}")
        return None


def _cache_records(b, notes: list[str]) -> set[str] | None:
    import grpc

    from llbgen._proto.buildkit import control_pb2
    from llbgen.builder.connection import describe_rpc_error

    try:
        reply = b.connection.control.DiskUsage(control_pb2.DiskUsageRequest(), timeout=20)
    except grpc.RpcError as err:
        notes.append(f"the builder's cache records are unavailable ({describe_rpc_error(err)}); CACHED unknown")
        return None
    return {record.Description for record in reply.record}


def cached_layers(plan: LayerPlan, descriptions: set[str], *, cache_from_given: bool = False) -> dict[str, str]:
    """Per layer: ``no``, ``likely`` or ``unknown`` (see CACHED_LEGEND).

    A layer whose step has no record will run, and so will every layer built on it: with
    MergeOp that is the python -> jupyter -> torch chain (the os layer stands alone); in a
    linear chain it is everything above.
    """
    result: dict[str, str] = {}
    below_runs = False
    for layer in plan.layers:
        in_chain = not (plan.merged and layer.name == "os")
        if not layer.steps:  # the init layer: file ops leave no record to match
            result[layer.name] = "no" if in_chain and below_runs and not plan.merged else "unknown"
            continue
        runs = not all(step.description in descriptions for step in layer.steps) or (in_chain and below_runs)
        below_runs = below_runs or (runs and in_chain)
        result[layer.name] = ("unknown (--cache-from)" if cache_from_given else "no") if runs else "likely"
    return result
