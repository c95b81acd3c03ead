"""The BuildKit session llbgen attaches to every solve.

A session is a gRPC server *we* run for the daemon to call back into: it pulls
``local://`` sources (FileSync), pushes tar/oci exports and ``local`` directory
exports (FileSend), asks for secrets (Secrets) and registry credentials (Auth),
and health-checks us every few seconds — two failed checks and it drops the
session (session/grpc.go), so Health must be served and say SERVING for "".

The server listens on a unix socket in a private 0700 directory; ``attach_*``
connects it to the daemon (see attach.py). The daemon learns the session from
the ``X-Docker-Expose-Session-*`` headers: the id (``SolveRequest.Session``), a
shared key (scopes its cache of local sources) and the methods we serve, one
header value per method — FileSync/FileSend are only called when advertised.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from llbgen._proto.session import (
    auth_pb2,
    auth_pb2_grpc,
    filesync_pb2,
    filesync_pb2_grpc,
    secrets_pb2,
    secrets_pb2_grpc,
)
from llbgen.builder.session.attach import ControlStreamAttachment, SocketAttachment
from llbgen.builder.session.auth import DockerAuthProvider
from llbgen.builder.session.filereceive import DirOutputs
from llbgen.builder.session.filesend import FileSendServicer, exporter_id
from llbgen.builder.session.filesync import FileSyncServicer
from llbgen.builder.session.secrets import SecretsServicer
from llbgen.errors import BuilderUnavailable, UsageError

if TYPE_CHECKING:
    from llbgen.builder.endpoint import EngineEndpoint

HEADER_UUID = "X-Docker-Expose-Session-Uuid"
HEADER_SHARED_KEY = "X-Docker-Expose-Session-Sharedkey"
HEADER_METHOD = "X-Docker-Expose-Session-Grpc-Method"

# Same limits as BuildKit's session client conn (containerd defaults).
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
# Each DiffCopy/FileSend stream holds a worker for its whole life. Health checks
# must never queue behind them, so keep far more workers than concurrent transfers.
MAX_WORKERS = 64
ATTACH_TIMEOUT = 15.0


def default_shared_key() -> str:
    """Stable per user and machine, so the daemon reuses its copy of a local source
    across builds and only transfers what changed."""
    return hashlib.sha256(f"llbgen:{socket.gethostname()}:{os.getuid()}".encode()).hexdigest()[:32]


class Session:
    """Run with ``with Session(...) as s: s.attach_control(stub); ... Solve(Session=s.id)``.

    ``local_dirs`` maps local source names (``local://NAME``) to directories,
    ``secrets`` secret ids to values, ``file_outputs`` exporter indexes (in
    ``SolveRequest.Exporters``) to output files, ``dir_outputs`` exporter
    indexes to the (new or empty) directories of ``local`` exports, ``auth``
    answers registry credential requests (None: the daemon pulls anonymously).

    Leaving the ``with`` block by an exception (a failed or cancelled build)
    removes the directory exports this session had already put in place.
    """

    def __init__(
        self,
        local_dirs: Mapping[str, Path] | None = None,
        secrets: Mapping[str, bytes] | None = None,
        file_outputs: Mapping[int, Path] | None = None,
        auth: DockerAuthProvider | None = None,
        *,
        shared_key: str | None = None,
        dir_outputs: Mapping[int, Path] | None = None,
    ):
        dirs = {name: Path(path) for name, path in (local_dirs or {}).items()}
        for name, path in dirs.items():
            if not path.is_dir():
                raise UsageError(f"local source {name!r}: {path} is not a directory")
        self._dir_outputs = DirOutputs(dir_outputs or {})
        self.id = uuid.uuid4().hex
        self.shared_key = shared_key if shared_key is not None else default_shared_key()
        self._attachments: list[ControlStreamAttachment | SocketAttachment] = []
        self._closed = False

        self._dir = tempfile.mkdtemp(prefix="llbgen-session-", dir=_short_tmpdir())  # mode 0700
        self.socket_path = os.path.join(self._dir, "session.sock")
        self._executor = ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="llbgen-session-rpc")
        self._server = grpc.server(
            self._executor,
            options=[
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ],
        )
        self._health = health.HealthServicer()
        self._health.set("", health_pb2.HealthCheckResponse.SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        filesync_pb2_grpc.add_FileSyncServicer_to_server(FileSyncServicer(dirs), self._server)
        self._server.add_generic_rpc_handlers((_FileSendRouter(FileSendServicer(file_outputs or {}), self._dir_outputs),))
        secrets_pb2_grpc.add_SecretsServicer_to_server(SecretsServicer(secrets or {}), self._server)
        self._services = [
            health_pb2.DESCRIPTOR.services_by_name["Health"],
            filesync_pb2.DESCRIPTOR.services_by_name["FileSync"],
            filesync_pb2.DESCRIPTOR.services_by_name["FileSend"],
            secrets_pb2.DESCRIPTOR.services_by_name["Secrets"],
        ]
        if auth is not None:
            auth_pb2_grpc.add_AuthServicer_to_server(auth, self._server)
            self._services.append(auth_pb2.DESCRIPTOR.services_by_name["Auth"])
        try:
            if not self._server.add_insecure_port(f"unix:{self.socket_path}"):
                raise OSError(f"cannot listen on {self.socket_path}")
            self._server.start()
        except BaseException:
            self._executor.shutdown(wait=False)
            shutil.rmtree(self._dir, ignore_errors=True)
            raise

    def advertised_methods(self) -> list[str]:
        """Every method of every service served, as ``/package.Service/Method`` (like Go's GetServiceInfo)."""
        return [f"/{svc.full_name}/{method.name}" for svc in self._services for method in svc.methods]

    def headers(self) -> list[tuple[str, str]]:
        """The session headers, canonical case, one entry per advertised method."""
        out = [(HEADER_UUID, self.id), (HEADER_SHARED_KEY, self.shared_key)]
        out += [(HEADER_METHOD, method) for method in self.advertised_methods()]
        return out

    def attach_control(self, control, timeout: float = ATTACH_TIMEOUT) -> None:
        """Attach over ``Control.Session`` (buildkitd, or dockerd via its /grpc endpoint).

        gRPC metadata keys must be lower case (grpchijack does the same).
        """
        self._check_open()
        metadata = [(key.lower(), value) for key, value in self.headers()]
        attachment = ControlStreamAttachment(control, self.socket_path, metadata)
        self._adopt(attachment, "Control.Session", timeout)

    def attach_docker(self, engine: EngineEndpoint, timeout: float = ATTACH_TIMEOUT) -> None:
        """Attach over the Docker Engine's ``POST /session`` upgrade (as buildx's docker driver does).

        The session headers are HTTP/1.1 request headers, one line per method value.
        """
        from llbgen.builder.docker_relay import open_upgraded_socket

        self._check_open()
        upstream = open_upgraded_socket(engine, "/session", self.headers(), timeout)
        self._adopt(SocketAttachment(upstream, self.socket_path), f"{engine} /session", timeout)

    def _adopt(self, attachment: ControlStreamAttachment | SocketAttachment, via: str, timeout: float) -> None:
        self._attachments.append(attachment)
        # The daemon dials its HTTP/2 client over the new stream at once. Waiting for
        # its first bytes turns "the daemon refused the session" into an error here
        # instead of a solve that waits forever for a session that never came.
        attachment.settled.wait(timeout)
        if attachment.first_bytes.is_set():
            return
        reason = _describe(attachment.error) if attachment.ended.is_set() else f"no answer within {timeout:g}s"
        self._attachments.remove(attachment)
        attachment.close()
        raise BuilderUnavailable(f"BuildKit did not take the build session over {via}: {reason}")

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("session is closed")
        # The daemon knows a session by its id; a second attachment would be refused
        # (/session) or silently replace the first (Control.Session).
        if self._attachments:
            raise RuntimeError("session is already attached")

    def close(self) -> None:
        """Detach from the daemon, stop the server, join every thread. Idempotent."""
        self._close(rollback=False)

    def _close(self, rollback: bool) -> None:
        if self._closed:
            return
        self._closed = True
        for attachment in self._attachments:
            attachment.close()
        self._attachments.clear()
        self._health.enter_graceful_shutdown()
        # No grace: in-flight transfers belong to a build that is over.
        self._server.stop(None).wait()
        self._executor.shutdown(wait=True)
        self._dir_outputs.close(rollback=rollback)
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._close(rollback=exc_type is not None)


class _FileSendRouter(grpc.GenericRpcHandler):
    """FileSend.DiffCopy on raw bytes: one method, two payloads, chosen by exporter id.

    tar/oci/docker exports stream BytesMessages (FileSendServicer); ``local``
    exports stream fsutil Packets over the same method (filesync.go SyncTarget).
    """

    METHOD = f"/{filesync_pb2.DESCRIPTOR.services_by_name['FileSend'].full_name}/DiffCopy"

    def __init__(self, files: FileSendServicer, dirs: DirOutputs):
        self._files = files
        self._dirs = dirs
        # No (de)serializers: the handler sees and returns bytes.
        self._handler = grpc.stream_stream_rpc_method_handler(self._diffcopy)

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        return self._handler if handler_call_details.method == self.METHOD else None

    def _diffcopy(self, request_iterator: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        metadata = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
        index = exporter_id(metadata)
        if index in self._dirs:
            return self._dirs.serve(index, request_iterator, context)
        messages = (filesync_pb2.BytesMessage.FromString(raw) for raw in request_iterator)
        return (m.SerializeToString() for m in self._files.DiffCopy(messages, context))


def _describe(error: BaseException | None) -> str:
    if isinstance(error, grpc.RpcError) and isinstance(error, grpc.Call):
        details = " ".join((error.details() or "").split())
        return f"{error.code().name.lower()}: {details}" if details else error.code().name.lower()
    if error is not None:
        return str(error) or type(error).__name__
    return "the connection closed"


def _short_tmpdir() -> str | None:
    """AF_UNIX paths are limited to ~107 bytes; fall back to /tmp if TMPDIR is deep."""
    base = tempfile.gettempdir()
    return None if len(base) < 60 else "/tmp"
