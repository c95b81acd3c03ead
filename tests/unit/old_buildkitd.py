"""A stand-in for an old or trimmed buildkitd on a unix socket: the real gRPC API, a chosen capability list.

It answers what ``llbgen builder inspect`` and a gateway build's ``Ping`` ask (ListWorkers,
Info, Solve/Ping/Return of an empty gateway build) and nothing else: enough to see that
llbgen believes the daemon's own capability list, not a profile of a recent BuildKit.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from concurrent import futures
from pathlib import Path

import grpc

from llbgen._proto.buildkit import (
    caps_pb2,
    control_pb2,
    control_pb2_grpc,
    gateway_pb2,
    gateway_pb2_grpc,
    ops_pb2,
    worker_pb2,
)

# Roughly BuildKit v0.9's caps: no mergeop/diffop (v0.10), no cache.gha (v0.10), no exporter.multiple (v0.13).
OLD_LLB_CAPS = ("source.image", "source.local", "source.http", "exec.meta.base", "exec.mount.bind",
                "exec.mount.cache", "exec.mount.secret", "file.base", "meta.description", "platform")
FRONTEND_CAPS = ("solve.base", "resolveimage", "return", "proto.refarray")


class OldBuildkitd(control_pb2_grpc.ControlServicer, gateway_pb2_grpc.LLBBridgeServicer):
    def __init__(self, socket_path: Path, *, llb_caps: Iterable[str] = OLD_LLB_CAPS,
                 frontend_caps: Iterable[str] = FRONTEND_CAPS) -> None:
        self.address = f"unix://{socket_path}"
        self.llb_caps = tuple(llb_caps)
        self.frontend_caps = tuple(frontend_caps)
        self._returned: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        control_pb2_grpc.add_ControlServicer_to_server(self, self._server)
        gateway_pb2_grpc.add_LLBBridgeServicer_to_server(self, self._server)
        self._server.add_insecure_port(self.address)

    def __enter__(self) -> OldBuildkitd:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop(grace=None)

    def _build(self, ref: str) -> threading.Event:
        with self._lock:
            return self._returned.setdefault(ref, threading.Event())

    # --- Control
    def ListWorkers(self, request, context):
        worker = worker_pb2.WorkerRecord(
            ID="old0", Labels={"org.mobyproject.buildkit.worker.executor": "oci",
                               "org.mobyproject.buildkit.worker.snapshotter": "overlayfs"},
            platforms=[ops_pb2.Platform(OS="linux", Architecture="amd64")])
        return control_pb2.ListWorkersResponse(record=[worker])

    def Info(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "unknown method Info")  # before BuildKit v0.11

    def Solve(self, request, context):
        if not self._build(request.Ref).wait(30):
            context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "no Return")
        return control_pb2.SolveResponse()

    # --- LLBBridge (the build is named by the buildkit-controlapi-buildid metadata)
    def _ref(self, context) -> str:
        return dict(context.invocation_metadata()).get("buildkit-controlapi-buildid", "")

    def Ping(self, request, context):
        self._build(self._ref(context))
        return gateway_pb2.PongResponse(
            FrontendAPICaps=[caps_pb2.APICap(ID=cap, Enabled=True) for cap in self.frontend_caps],
            LLBCaps=[caps_pb2.APICap(ID=cap, Enabled=True) for cap in self.llb_caps])

    def Return(self, request, context):
        self._build(self._ref(context)).set()
        return gateway_pb2.ReturnResponse()
