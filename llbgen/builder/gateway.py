"""A client-side gateway build: we act as the build's frontend over the same connection.

A ``Control.Solve`` with neither a Definition nor a Frontend makes BuildKit register
an LLBBridge for the build (keyed by the Solve's ``Ref``) and wait until the client
calls ``LLBBridge.Return``. Meanwhile the client may ``Ping`` (caps),
``ResolveImageConfig`` and ``Solve`` definitions on that bridge; every call carries
the gRPC metadata ``buildkit-controlapi-buildid: <Ref>`` (BuildKit's client/build.go).

Why bother, when a Definition-only Solve is simpler:

* the Docker Engine's classic image store exporter takes the image config only from
  the result's metadata (``containerimage.config``), never from exporter attrs, so a
  plain solve there yields an image with an empty config (research notes §5.3);
* ``ResolveImageConfig`` is how any builder (a standalone buildkitd too) tells us a
  base image's digest and config, exactly as it will resolve it during the build.
"""

from __future__ import annotations

import json
import secrets as random
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

import grpc

from llbgen.builder.connection import BuilderConnection, describe_rpc_error
from llbgen.errors import BuilderUnavailable, BuildFailed, CapabilityMissing, UsageError

if TYPE_CHECKING:
    from typing_extensions import Self

    from llbgen._proto.buildkit import control_pb2, gateway_pb2, ops_pb2
    from llbgen.builder.session import Session
    from llbgen.llb.platform import Platform

BUILD_ID_METADATA = "buildkit-controlapi-buildid"
# The daemon waits only 3 s for a build to register its bridge (control/gateway), and
# the Solve RPC may reach it a little after our first bridge call: retry until this.
REGISTER_TIMEOUT = 15.0
PING_FIRST_PAUSE = 0.002
PING_MAX_PAUSE = 0.1
CALL_TIMEOUT = 60.0
# Resolving may pull a manifest and config from a registry.
RESOLVE_TIMEOUT = 300.0
IMAGE_CONFIG_KEY = "containerimage.config"
RESOLVE_MODES = ("default", "pull", "local")


class GatewayBuild:
    """One gateway build: ``Control.Solve`` runs as a future while we drive the bridge.

        with GatewayBuild(conn, request) as build:   # request has no Definition/Frontend
            digest, config = build.resolve_image_config("debian:bookworm")
            build.return_result(definition.to_pb(), image_config)
            response = build.wait()

    Build failures are not raised by the bridge calls that cause them: they are handed
    to the daemon through ``Return`` and come back as the failure of ``Control.Solve``
    (``future``/``wait``), the one place a caller already reports build errors from.
    """

    def __init__(self, conn: BuilderConnection, request: control_pb2.SolveRequest) -> None:
        if request.HasField("Definition") or request.Frontend:
            raise ValueError("a gateway build's SolveRequest has no Definition and no Frontend")
        if not request.Ref:
            request.Ref = random.token_hex(13)
        self.conn = conn
        self.request = request
        self.ref = request.Ref
        self.caps: frozenset[str] = frozenset()
        # LLB caps the daemon has and enabled (an old daemon lacks newer ones altogether).
        self.llb_caps: frozenset[str] = frozenset()
        # LLB caps the daemon disabled, with its reason (e.g. mergeop on the classic store).
        self.disabled_llb_caps: dict[str, str] = {}
        self._future: grpc.Future | None = None
        self._returned = False
        self._bridge = None

    @property
    def metadata(self) -> list[tuple[str, str]]:
        return [(BUILD_ID_METADATA, self.ref)]

    @property
    def future(self) -> grpc.Future:
        if self._future is None:
            raise RuntimeError("gateway build not started")
        return self._future

    def start(self, timeout: float = REGISTER_TIMEOUT) -> Self:
        """Send the Solve and wait until its bridge answers ``Ping``."""
        from llbgen._proto.buildkit import gateway_pb2, gateway_pb2_grpc

        if self._future is not None:
            return self
        self._bridge = gateway_pb2_grpc.LLBBridgeStub(self.conn.channel)
        self._future = self.conn.control.Solve.future(self.request)
        deadline = time.monotonic() + timeout
        pause = PING_FIRST_PAUSE
        while True:
            try:
                pong = self._bridge.Ping(gateway_pb2.PingRequest(), metadata=self.metadata,
                                         timeout=max(0.1, deadline - time.monotonic()))
                break
            except grpc.RpcError as err:
                if self._future.done():
                    # The Solve itself was refused (bad exporter, unknown cache type, ...).
                    self._future.result()
                if time.monotonic() >= deadline:
                    self._future.cancel()
                    raise BuilderUnavailable(f"BuildKit at {self.conn.address} did not start the gateway build: "
                                             f"{describe_rpc_error(err)}") from None
                # The bridge usually answers within milliseconds, and every gateway build waits here.
                time.sleep(pause)
                pause = min(pause * 2, PING_MAX_PAUSE)
        self.caps = frozenset(cap.ID for cap in pong.FrontendAPICaps if cap.Enabled)
        self.llb_caps = frozenset(cap.ID for cap in pong.LLBCaps if cap.Enabled)
        self.disabled_llb_caps = {cap.ID: cap.DisabledReasonMsg for cap in pong.LLBCaps if not cap.Enabled}
        if "return" not in self.caps:
            self._future.cancel()
            raise CapabilityMissing(f"BuildKit at {self.conn.address} is too old for client-side gateway builds "
                                    "(its gateway lacks the 'return' cap); upgrade it")
        return self

    def resolve_image_config(self, ref: str, platform: Platform | None = None, *,
                             resolve_mode: str = "default") -> tuple[str, dict[str, Any]]:
        """``(digest, config)`` of image ``ref`` as the builder resolves it.

        The digest is ``""`` when the Docker Engine's classic store answered from its
        local images: it never reports a manifest digest for them (moby's
        containerimage source), so such an image is used by name.
        """
        from llbgen._proto.buildkit import gateway_pb2

        if resolve_mode not in RESOLVE_MODES:
            raise UsageError(f"invalid resolve mode {resolve_mode!r}: use {', '.join(RESOLVE_MODES)}")
        request = gateway_pb2.ResolveImageConfigRequest(Ref=ref, ResolveMode=resolve_mode)
        if platform is not None:
            request.Platform.CopyFrom(platform.to_pb())
        try:
            reply = self._call("ResolveImageConfig", request, RESOLVE_TIMEOUT)
        except grpc.RpcError as err:
            raise UsageError(f"cannot resolve image {ref}: {describe_rpc_error(err)}") from None
        try:
            config = json.loads(reply.Config) if reply.Config else {}
        except ValueError:
            raise BuilderUnavailable(f"BuildKit at {self.conn.address} sent an unreadable config for {ref}") from None
        return reply.Digest, config

    def solve(self, definition: ops_pb2.Definition,
              cache_imports: Sequence[tuple[str, Mapping[str, str]]] = ()) -> gateway_pb2.Ref:
        """Load ``definition`` into the build; the returned ref is built lazily on ``Return``.

        Raises ``grpc.RpcError`` when the daemon rejects the graph.
        """
        from llbgen._proto.buildkit import gateway_pb2

        request = gateway_pb2.SolveRequest(
            Definition=definition,
            allowResultReturn=True,
            allowResultArrayRef=True,
            # A gateway build ignores the Control request's cache imports; BuildKit's
            # Go client passes them with every bridge Solve.
            CacheImports=[gateway_pb2.CacheOptionsEntry(Type=t, Attrs=dict(a)) for t, a in cache_imports],
        )
        reply = self._call("Solve", request, CALL_TIMEOUT)
        return reply.result.ref

    def return_result(self, definition: ops_pb2.Definition, image_config: Mapping | None = None, *,
                      cache_imports: Sequence[tuple[str, Mapping[str, str]]] = ()) -> None:
        """Solve ``definition`` and make it the build's result, with ``image_config`` as its
        ``containerimage.config`` metadata (what every image exporter reads).

        A rejected graph is returned as the build's error instead of raised here.
        """
        from llbgen._proto.buildkit import gateway_pb2

        try:
            ref = self.solve(definition, cache_imports)
        except grpc.RpcError as err:
            self.return_error(err)
            return
        result = gateway_pb2.Result()
        if "proto.refarray" in self.caps:
            result.ref.CopyFrom(ref)
        else:
            result.refDeprecated = ref.id
        if image_config is not None:
            result.metadata[IMAGE_CONFIG_KEY] = json.dumps(image_config, sort_keys=True).encode()
        self._return(gateway_pb2.ReturnRequest(result=result))

    def return_empty(self) -> None:
        """End the build with no result (after only resolving, say)."""
        from llbgen._proto.buildkit import gateway_pb2

        self._return(gateway_pb2.ReturnRequest(result=gateway_pb2.Result()))

    def return_error(self, error: BaseException | str) -> None:
        """End the build with ``error``; ``Control.Solve`` then fails with it."""
        from google.rpc import status_pb2

        from llbgen._proto.buildkit import gateway_pb2

        if isinstance(error, grpc.RpcError) and isinstance(error, grpc.Call):
            status = status_pb2.Status(code=error.code().value[0], message=error.details() or "")
        else:
            status = status_pb2.Status(code=grpc.StatusCode.UNKNOWN.value[0], message=str(error))
        self._return(gateway_pb2.ReturnRequest(error=status))

    def wait(self) -> control_pb2.SolveResponse:
        """Block until ``Control.Solve`` ends (call after a ``return_*``)."""
        return self.future.result()

    def _return(self, request: gateway_pb2.ReturnRequest) -> None:
        if self._returned:
            raise RuntimeError("gateway build already returned")
        self._returned = True
        try:
            self._call("Return", request, CALL_TIMEOUT)
        except grpc.RpcError as err:
            if self.future.done():
                return  # the Solve already ended: its error is the real reason
            # Without a Return the daemon would wait for one until the client disconnects.
            self.future.cancel()
            raise BuildFailed(f"BuildKit at {self.conn.address} did not take the build result: "
                              f"{describe_rpc_error(err)}") from None

    def _call(self, method: str, request, timeout: float):
        if self._bridge is None:
            raise RuntimeError("gateway build not started")
        return getattr(self._bridge, method)(request, metadata=self.metadata, timeout=timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._future is None:
            return
        if exc is not None:
            # Ctrl-C or our own failure: the daemon must not wait for a Return forever.
            self._future.cancel()
        elif not self._returned:
            self.return_error("the client ended the build without a result")


def start_gateway_solve(conn: BuilderConnection, request: control_pb2.SolveRequest,
                        definition: ops_pb2.Definition, image_config: Mapping | None, *,
                        cache_imports: Sequence[tuple[str, Mapping[str, str]]] = ()) -> grpc.Future:
    """Run ``request`` (no Definition) as a gateway build whose result is ``definition``
    with ``image_config`` as its metadata; return the ``Control.Solve`` future.

    For a caller that already waits on a Solve future (solve.py): every build failure,
    including a Solve the daemon refused outright, surfaces from that future.
    """
    build = GatewayBuild(conn, request)
    try:
        build.start()
        build.return_result(definition, image_config, cache_imports=cache_imports)
    except grpc.RpcError:
        # Raised only by the Solve future itself (start() re-raises its failure).
        pass
    except BaseException:
        if build._future is not None:
            build._future.cancel()
        raise
    return build.future


def attach_session(session: Session, conn: BuilderConnection) -> None:
    """Attach ``session`` the way a solve does: dockerd's /session, else ``Control.Session``."""
    if conn.engine is not None:
        session.attach_docker(conn.engine)
    else:
        session.attach_control(conn.control)


def resolve_image_config_via_gateway(conn: BuilderConnection, session: Session | None, ref: str,
                                     platform: Platform | None = None, *,
                                     resolve_mode: str = "default") -> tuple[str, dict[str, Any]]:
    """``(digest, config)`` of image ``ref`` from any builder, through a short gateway build.

    ``session`` (attached, or None for a fresh one) answers registry credential requests.
    """
    from llbgen._proto.buildkit import control_pb2

    if session is None:
        from llbgen.builder.session import DockerAuthProvider, Session

        with Session(auth=DockerAuthProvider()) as own:
            attach_session(own, conn)
            return resolve_image_config_via_gateway(conn, own, ref, platform, resolve_mode=resolve_mode)

    try:
        with GatewayBuild(conn, control_pb2.SolveRequest(Session=session.id)) as build:
            try:
                resolved = build.resolve_image_config(ref, platform, resolve_mode=resolve_mode)
            except BaseException:
                build.return_error("resolving the image failed")
                raise
            build.return_empty()
            build.wait()
    except grpc.RpcError as err:
        raise BuilderUnavailable(f"BuildKit at {conn.address} failed a resolve-only build: "
                                 f"{describe_rpc_error(err)}") from None
    return resolved
