"""Solve a Definition on a builder: session, exporters, cache, progress, cancellation.

The Status stream is read on the calling thread while Solve runs as a future, so
Ctrl-C cancels the RPC (BuildKit then cancels the build) and nothing keeps running.
"""

from __future__ import annotations

import json
import secrets as random
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import grpc

from llbgen.builder.address import BuilderAddress
from llbgen.builder.capabilities import BuilderInfo
from llbgen.builder.connection import (
    BuilderConnection,
    describe_rpc_error,
    freeze_detection_seconds,
    is_keepalive_timeout,
)
from llbgen.builder.engine_load import EngineImageLoad, local_engine
from llbgen.builder.options import CacheEntry, Output
from llbgen.builder.progress import BuildSummary, ProgressMode, VertexState, format_failure, make_renderer
from llbgen.errors import BuilderUnavailable, BuildFailed, Cancelled, CapabilityMissing, UsageError
from llbgen.llb.definition import Definition


@dataclass
class SolveOptions:
    """Everything about a solve except the graph."""

    outputs: Sequence[Output] = ()
    cache_to: Sequence[CacheEntry] = ()
    cache_from: Sequence[CacheEntry] = ()
    secrets: Mapping[str, bytes] = field(default_factory=dict)
    local_dirs: Mapping[str, Path] = field(default_factory=dict)
    entitlements: Sequence[str] = ()
    image_config: Mapping | None = None
    progress: ProgressMode = "auto"
    progress_stream: IO[str] | None = None
    # Run as a client-side gateway build (the image config travels as result metadata);
    # always done for the Docker Engine's classic image store, see gateway.py.
    via_gateway: bool = False


@dataclass(frozen=True)
class SolveResult:
    exporter_response: dict[str, str]
    # Every step the builder reported, in first-seen order, and their totals.
    vertices: tuple[VertexState, ...] = ()
    summary: BuildSummary | None = None
    # What the local Docker Engine said it loaded (``--load`` with a standalone buildkitd).
    loaded_images: tuple[str, ...] = ()

    @property
    def image_digest(self) -> str | None:
        return self.exporter_response.get("containerimage.digest")


def exporter_for(output: Output, info: BuilderInfo) -> tuple[str, dict[str, str]]:
    """Map a user-facing output to the exporter this builder has."""
    attrs = dict(output.attrs)
    kind = output.type
    if info.kind == "docker" and kind in ("image", "moby"):
        # The engine's exporter stores into its own image store (and pushes when asked).
        kind = "moby"
    if kind == "moby" and info.kind != "docker":
        raise UsageError("type=moby needs the Docker Engine builder; with a standalone buildkitd use --load "
                         "(the image is streamed into the local Docker Engine), --output type=image,push=true "
                         "or type=docker,dest=FILE")
    wanted = "image" if kind == "moby" else kind
    if kind not in info.exporters and not (kind == "moby" and "moby" in info.exporters):
        raise CapabilityMissing(f"builder {info.address} has no {wanted!r} exporter "
                                f"(it has: {', '.join(info.exporters)})"
                                + ("; enable the containerd image store in the Docker Engine"
                                   if info.image_store == "classic" else ""))
    if attrs.get("push") == "true" and info.kind == "docker" and not info.direct_push:
        raise CapabilityMissing(f"the Docker Engine at {info.address} cannot push from a build with the classic "
                                "image store; enable the containerd image store or push with `docker push`")
    return kind, attrs


def check_cache_support(options: SolveOptions, info: BuilderInfo) -> None:
    for entry in options.cache_to:
        if not info.supports(f"cache_export:{entry.type}"):
            raise CapabilityMissing(
                f"builder {info.address} cannot export cache of type {entry.type!r} "
                f"(it can: {', '.join(info.cache_exporters) or 'none'})"
                + ("; enable the containerd image store in the Docker Engine" if info.image_store == "classic" else ""))
    for entry in options.cache_from:
        if not info.supports(f"cache_import:{entry.type}"):
            raise CapabilityMissing(f"builder {info.address} cannot import cache of type {entry.type!r} "
                                    f"(it can: {', '.join(info.cache_importers) or 'none'})")


def check_graph_support(definition: Definition, info: BuilderInfo) -> None:
    """Refuse before solving when the graph needs MergeOp/DiffOp the builder lacks."""
    caps = set()
    for _, md in definition.metadata:
        caps |= md.caps
    for cap, feature in (("mergeop", "merge_op"), ("diffop", "diff_op")):
        if cap in caps:
            info.require(feature)


def solve(conn: BuilderConnection, info: BuilderInfo, definition: Definition, options: SolveOptions) -> SolveResult:
    """Run one solve to completion, rendering progress; raise BuildFailed/Cancelled on failure."""
    from llbgen._proto.buildkit import control_pb2
    from llbgen.builder.gateway import attach_session
    from llbgen.builder.session import Session
    from llbgen.builder.session.auth import DockerAuthProvider

    check_graph_support(definition, info)
    check_cache_support(options, info)
    exporters: list[control_pb2.Exporter] = []
    file_outputs: dict[int, Path | EngineImageLoad] = {}
    loads: dict[int, EngineImageLoad] = {}
    dir_outputs: dict[int, Path] = {}
    for index, output in enumerate(options.outputs):
        kind, attrs = exporter_for(output, info)
        if options.image_config is not None and kind in ("moby", "image", "docker", "oci"):
            attrs.setdefault("containerimage.config", json.dumps(options.image_config, sort_keys=True))
        if output.load:
            loads[index] = EngineImageLoad(local_engine())
            file_outputs[index] = loads[index]
        elif output.dest is not None:
            (dir_outputs if kind == "local" else file_outputs)[index] = output.dest
        exporters.append(control_pb2.Exporter(Type=kind, Attrs=attrs))

    if len(exporters) > 1 and not info.multiple_exporters:
        # Such a daemon reads only the single legacy exporter field: the rest would be dropped silently.
        raise CapabilityMissing(f"BuildKit at {info.address} takes one output per build (it lacks the "
                                "'exporter.multiple' cap of BuildKit 0.13+): give one of --load, --push, --output, "
                                "or upgrade it")

    ref = random.token_hex(13)
    request = control_pb2.SolveRequest(
        Ref=ref,
        Definition=definition.to_pb(),
        Exporters=exporters,
        Entitlements=list(options.entitlements),
        Cache=control_pb2.CacheOptions(
            Exports=[control_pb2.CacheOptionsEntry(Type=c.type, Attrs=c.attrs) for c in options.cache_to],
            Imports=[control_pb2.CacheOptionsEntry(Type=c.type, Attrs=c.attrs) for c in options.cache_from],
        ),
    )
    if len(exporters) == 1:
        # Daemons before BuildKit 0.13 only read the single legacy exporter fields.
        request.ExporterDeprecated = exporters[0].Type
        request.ExporterAttrsDeprecated.update(exporters[0].Attrs)

    index = definition.vertex_index()
    renderer = make_renderer(options.progress, stream=options.progress_stream, name_for=index.name_for)
    session = Session(local_dirs=dict(options.local_dirs), secrets=dict(options.secrets),
                      file_outputs=file_outputs, dir_outputs=dir_outputs, auth=DockerAuthProvider())
    with session, renderer:
        attach_session(session, conn)
        request.Session = session.id
        if options.via_gateway or info.image_store == "classic":
            future = _start_gateway_solve(conn, request, definition, options)
        else:
            future = conn.control.Solve.future(request)
        status_error: list[BaseException] = []
        status_done = threading.Event()

        def read_status() -> None:
            try:
                for resp in conn.control.Status(control_pb2.StatusRequest(Ref=ref)):
                    renderer.update(resp)
            except grpc.RpcError as err:
                if err.code() != grpc.StatusCode.CANCELLED:
                    status_error.append(err)
            finally:
                status_done.set()

        reader = threading.Thread(target=read_status, name="llbgen-status", daemon=True)
        reader.start()
        try:
            exporter_response = dict(_wait(future).ExporterResponse)
        except KeyboardInterrupt:
            future.cancel()
            status_done.wait(5)
            raise Cancelled("build cancelled") from None
        except grpc.RpcError as err:
            status_done.wait(10)
            exporter_response = _settle_naming_race(conn, options, renderer.recorder)
            if exporter_response is None:
                raise _build_error(err, renderer, conn.address) from None
        status_done.wait(30)
    recorder = renderer.recorder
    return SolveResult(exporter_response, tuple(recorder.vertex_states()), recorder.summary(),
                       loaded_images=tuple(name for load in loads.values() for name in load.loaded))


def _start_gateway_solve(conn: BuilderConnection, request, definition: Definition,
                         options: SolveOptions) -> grpc.Future:
    """The gateway hook: the classic store's exporter reads the image config only from the
    result's metadata, never from the ``containerimage.config`` exporter attr."""
    from llbgen.builder.gateway import start_gateway_solve

    request.ClearField("Definition")
    return start_gateway_solve(conn, request, definition.to_pb(), options.image_config,
                               cache_imports=[(c.type, c.attrs) for c in options.cache_from])


def _settle_naming_race(conn: BuilderConnection, options: SolveOptions, recorder) -> dict[str, str] | None:
    """A concurrent build named the tag first, with this very image: done, and said so (see tag_race)."""
    from llbgen.builder.tag_race import settle_naming_race

    response = settle_naming_race(conn, options.outputs, recorder)
    if response is not None:  # even with --progress quiet: the engine reported an error that is not one
        stream = options.progress_stream or sys.stderr
        stream.write(f"llbgen: notice: {response['image.name']} already named by a concurrent build of the same "
                     f"image ({response['containerimage.digest'][:19]}); this build is done\n")
    return response


def _wait(future: grpc.Future):
    # Waiting in short slices keeps the main thread responsive to Ctrl-C.
    while True:
        try:
            return future.result(timeout=0.25)
        except grpc.FutureTimeoutError:
            continue


def _build_error(err: grpc.RpcError, renderer,
                 address: BuilderAddress) -> BuildFailed | BuilderUnavailable | CapabilityMissing:
    from llbgen.builder.diagnose import refused_entitlement

    failure = format_failure(renderer.recorder)
    if failure:
        return BuildFailed(failure)
    refused = refused_entitlement(err.details() or "", str(address)) if isinstance(err, grpc.Call) else None
    if refused:
        return CapabilityMissing(refused)
    if err.code() == grpc.StatusCode.UNAVAILABLE and is_keepalive_timeout(err):
        return BuilderUnavailable(f"BuildKit at {address} stopped answering during the build (no reply to "
                                  f"keepalive pings; noticed within {freeze_detection_seconds(address):g}s): "
                                  "is the daemon or its host hung? the build's state there is unknown")
    if err.code() == grpc.StatusCode.UNAVAILABLE:
        return BuilderUnavailable(f"lost the connection to BuildKit at {address} during the build: "
                                  f"{describe_rpc_error(err)}")
    return BuildFailed(f"build failed: {describe_rpc_error(err)}")
