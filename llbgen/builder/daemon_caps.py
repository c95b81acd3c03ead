"""Ask a BuildKit daemon what it supports: the capability lists of its gateway's ``Ping``.

BuildKit publishes two lists (solver/pb/caps.go, frontend/gateway/pb/caps.go): the LLB
caps a graph may use (``mergeop``, ``diffop``, ``cache.gha``/``cache.s3``/``cache.azblob``,
``exporter.multiple``, ...) and the frontend API caps (``return``, ``resolveimage``, ...).
A cap the daemon predates is simply missing; one it turned off is listed as disabled
with a reason (the Docker Engine's classic image store disables ``mergeop``/``diffop``).
The lists are only served inside a build, so a build with no result is started, pinged
and ended (about 0.1 s; no session needed). Exporters are not published at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc

from llbgen.builder.connection import BuilderConnection, describe_rpc_error
from llbgen.errors import BuilderUnavailable

CAP_MERGE_OP = "mergeop"
CAP_DIFF_OP = "diffop"
CAP_MULTIPLE_EXPORTERS = "exporter.multiple"
# Remote cache backends beyond registry/inline/local, which every supported BuildKit has.
CACHE_BACKEND_CAPS = {"gha": "cache.gha", "s3": "cache.s3", "azblob": "cache.azblob"}


@dataclass(frozen=True)
class DaemonCaps:
    """What a daemon's gateway said it supports."""

    llb: frozenset[str]
    frontend: frozenset[str]
    disabled: dict[str, str] = field(default_factory=dict)

    def has(self, cap: str) -> bool:
        return cap in self.llb


def ask_daemon_caps(conn: BuilderConnection) -> DaemonCaps:
    """Start an empty gateway build, read its ``Ping``, end it.

    Raises ``CapabilityMissing`` when the daemon is too old for gateway builds (which
    llbgen needs to resolve base images on it) and ``BuilderUnavailable`` when it fails.
    """
    from llbgen._proto.buildkit import control_pb2
    from llbgen.builder.gateway import GatewayBuild

    try:
        with GatewayBuild(conn, control_pb2.SolveRequest()) as build:
            caps = DaemonCaps(llb=build.llb_caps, frontend=build.caps, disabled=dict(build.disabled_llb_caps))
            build.return_empty()
            build.wait()
    except grpc.RpcError as err:
        raise BuilderUnavailable(f"BuildKit at {conn.address} failed to report its capabilities: "
                                 f"{describe_rpc_error(err)}") from None
    return caps
