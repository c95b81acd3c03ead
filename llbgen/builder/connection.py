"""One gRPC channel to a BuildKit builder, whatever kind it is.

docker builders go through a ``DockerGrpcRelay``; standalone buildkitd is dialed
directly (unix socket, or TCP with optional mutual TLS).
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import grpc

from llbgen.builder.address import BuilderAddress
from llbgen.builder.docker_relay import DockerGrpcRelay
from llbgen.builder.endpoint import EngineEndpoint
from llbgen.errors import BuilderUnavailable

if TYPE_CHECKING:
    from typing_extensions import Self

    from llbgen._proto.buildkit.control_pb2_grpc import ControlStub

# BuildKit's Go client and dockerd's /grpc server both use containerd's 16 MiB limits;
# grpcio's default 4 MiB receive limit would reject large Status/DiskUsage replies.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
# Keepalive, so a builder that vanished or froze mid-build (host down, network cut, daemon
# hung with its socket open) is noticed within a bounded time: an unanswered ping ends
# every call on the connection. (A daemon process that exits closes its socket; gRPC sees
# that at once.) grpcio >= 1.5x times a keepalive ping out after grpc.http2.ping_timeout_ms
# (default 1 min), not only keepalive_timeout_ms, so both are set.
#
# The ping rate must stay within what the server tolerates, or the server answers
# GOAWAY "too_many_pings" and drops the connection — killing a quiet, long build step:
# * dockerd serves /grpc through golang.org/x/net/http2 (grpc.Server.ServeHTTP), which
#   answers every ping and enforces nothing: ping every 10 s (tested idle for minutes).
# * standalone buildkitd uses grpc-go's native transport with the default enforcement
#   policy (MinTime 5 min, no pings without active calls; cmd/buildkitd sets no keepalive
#   options up to v0.32). grpc-go counts a "strike" only for a ping that follows the last
#   one by less than MinTime with nothing sent by the server in between, and drops the
#   connection after 3 strikes. During a build the daemon health-checks our session every
#   5 s over this same connection (Control.Session; session/grpc.go), so a ping every 20 s,
#   only during calls, never strikes; a call without a session (DiskUsage) would need
#   80 s of server silence to.
# How long a ping's ack may take. Generous: on a loaded host (dockerd or llbgen's relay
# starved of CPU) acks took over 5 s, and a false "stopped answering" kills a healthy build.
ACK_TIMEOUT_MS = 20_000
FAST_KEEPALIVE: list[tuple[str, int]] = [
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", ACK_TIMEOUT_MS),
    ("grpc.http2.ping_timeout_ms", ACK_TIMEOUT_MS),
    ("grpc.keepalive_permit_without_calls", 1),
    # Without this grpc-core stops pinging after 2 pings with no data sent, which would
    # switch keepalive off during a long, quiet build step.
    ("grpc.http2.max_pings_without_data", 0),
]
POLITE_KEEPALIVE: list[tuple[str, int]] = [
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", ACK_TIMEOUT_MS),
    ("grpc.http2.ping_timeout_ms", ACK_TIMEOUT_MS),
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.http2.max_pings_without_data", 0),
]
MESSAGE_LIMITS: list[tuple[str, int]] = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
]


def _keepalive(address: BuilderAddress) -> list[tuple[str, int]]:
    return FAST_KEEPALIVE if address.kind == "docker" else POLITE_KEEPALIVE


def freeze_detection_seconds(address: BuilderAddress) -> float:
    """At most how long a builder that stops answering mid-call goes unnoticed (the bound the README states)."""
    options = dict(_keepalive(address))
    return (options["grpc.keepalive_time_ms"] + options["grpc.http2.ping_timeout_ms"]) / 1000


def channel_options(address: BuilderAddress) -> list[tuple[str, int | str]]:
    """gRPC channel options for this kind of builder (see the keepalive notes above)."""
    options: list[tuple[str, int | str]] = [*MESSAGE_LIMITS, *_keepalive(address)]
    if address.kind == "tcp" and address.tls_server_name:
        options.append(("grpc.ssl_target_name_override", address.tls_server_name))
    return options


DEFAULT_READY_TIMEOUT = 15.0


class BuilderConnection:
    """A context manager owning the gRPC channel (and the relay, for docker builders).

    ``control`` is the ``moby.buildkit.v1.Control`` stub. Call ``wait_ready()`` before
    the first real RPC to turn "nothing there" into a one-line ``BuilderUnavailable``.
    """

    def __init__(self, address: BuilderAddress) -> None:
        self.address = address
        self._relay: DockerGrpcRelay | None = None
        self._channel: grpc.Channel | None = None
        self._control: ControlStub | None = None

    @property
    def engine(self) -> EngineEndpoint | None:
        """The Docker Engine behind a docker builder (for /session and Engine API reads); else None."""
        return self.address.engine

    @property
    def channel(self) -> grpc.Channel:
        if self._channel is None:
            raise RuntimeError("connection not open")
        return self._channel

    @property
    def control(self) -> ControlStub:
        # Imported on first use: the generated code is slow to load, and --help needs none of it.
        if self._control is None:
            from llbgen._proto.buildkit import control_pb2_grpc

            self._control = control_pb2_grpc.ControlStub(self.channel)
        return self._control

    def open(self) -> Self:
        if self._channel is not None:
            return self
        if self.address.kind == "docker":
            self._relay = DockerGrpcRelay.for_address(self.address).start()
            self._channel = grpc.insecure_channel(
                self._relay.target, options=channel_options(self.address)
            )
        elif self.address.kind == "unix":
            self._channel = grpc.insecure_channel(
                f"unix://{self.address.target}", options=channel_options(self.address)
            )
        else:
            self._channel = _tcp_channel(self.address)
        return self

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
            self._control = None
        if self._relay is not None:
            self._relay.close()
            self._relay = None

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def wait_ready(self, timeout: float = DEFAULT_READY_TIMEOUT) -> None:
        """Block until the builder answers ListWorkers, or raise ``BuilderUnavailable`` within ``timeout``.

        Fails fast when a connection attempt fails outright (refused, no such socket):
        waiting out the timeout would not help, and the reason is only available then.
        """
        from llbgen._proto.buildkit import control_pb2

        deadline = time.monotonic() + timeout
        if self._relay is not None:
            # A refused upgrade (old engine, wrong socket) is much clearer from the probe
            # than from gRPC, which only sees the relay hang up.
            self._relay.probe()
        state = _wait_connected(
            self.channel, timeout=max(0.1, deadline - time.monotonic())
        )
        if state is None:
            raise self._unavailable(f"no answer within {timeout:g}s")
        try:
            # On TRANSIENT_FAILURE this fails at once and carries the reason (e.g. connection refused).
            self.control.ListWorkers(
                control_pb2.ListWorkersRequest(),
                timeout=max(0.1, deadline - time.monotonic()),
                wait_for_ready=False,
            )
        except grpc.RpcError as err:
            raise self._unavailable(describe_rpc_error(err)) from None

    def _unavailable(self, reason: str) -> BuilderUnavailable:
        from llbgen.builder.diagnose import unreachable_builder

        if self._relay is not None and self._relay.last_error is not None:
            return self._relay.last_error
        named_fix = unreachable_builder(self.address, reason)
        if named_fix:
            return BuilderUnavailable(named_fix)
        return BuilderUnavailable(
            f"cannot reach BuildKit at {self.address}: {reason}; {_hint(self.address)}"
        )


def _wait_connected(
    channel: grpc.Channel, timeout: float
) -> grpc.ChannelConnectivity | None:
    """Wait until the channel is READY or its first connection attempt failed; None on timeout."""
    settled = threading.Event()
    outcome: list[grpc.ChannelConnectivity] = []

    def on_change(state: grpc.ChannelConnectivity) -> None:
        if state in (
            grpc.ChannelConnectivity.READY,
            grpc.ChannelConnectivity.TRANSIENT_FAILURE,
        ):
            outcome.append(state)
            settled.set()

    channel.subscribe(on_change, try_to_connect=True)
    try:
        settled.wait(timeout)
    finally:
        channel.unsubscribe(on_change)
    return outcome[0] if outcome else None


def _tcp_channel(address: BuilderAddress) -> grpc.Channel:
    if not address.use_tls:
        return grpc.insecure_channel(address.target, options=channel_options(address))
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_read(address.tls_ca),
        private_key=_read(address.tls_key),
        certificate_chain=_read(address.tls_cert),
    )
    return grpc.secure_channel(
        address.target, credentials, options=channel_options(address)
    )


def _read(path: Path | None) -> bytes | None:
    return path.read_bytes() if path is not None else None


def _hint(address: BuilderAddress) -> str:
    if address.kind == "docker":
        return "is the Docker Engine running? check DOCKER_HOST or set --builder"
    if address.use_tls:
        return "is buildkitd running with TLS, and do --tlscacert/--tlscert/--tlskey/--tls-server-name match it? set --builder or BUILDKIT_HOST"
    return "is buildkitd running? set --builder or BUILDKIT_HOST"


def describe_rpc_error(err: grpc.RpcError) -> str:
    """A short, single-line reason from a gRPC error.

    grpc-core wraps the OS error deep inside its text ("failed to connect to all
    addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: Failed to connect to remote
    host: Connection refused"); the last clause is the part a user can act on.
    """
    code = err.code() if isinstance(err, grpc.Call) else None
    details = " ".join(
        ((err.details() if isinstance(err, grpc.Call) else str(err)) or "").split()
    )
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return "no answer"
    if code is grpc.StatusCode.UNAVAILABLE and details:
        tls = _tls_failure(details)
        if tls:
            return tls
        # grpc-core may end the text with the status of a wrapped error: "...: OK".
        last = details.removesuffix(": OK").rsplit(": ", 1)[-1].strip(" []")
        return last[:1].lower() + last[1:]
    name = code.name.lower().replace("_", " ") if code is not None else "error"
    return f"{name}: {details}" if details else name


def is_keepalive_timeout(err: grpc.RpcError) -> bool:
    """The connection was dropped because the peer stopped acknowledging HTTP/2 pings."""
    details = (err.details() if isinstance(err, grpc.Call) else str(err)) or ""
    return "ping timeout" in details or "keepalive watchdog timeout" in details


def _tls_failure(details: str) -> str | None:
    """A readable reason for a failed TLS connection, from grpc-core's text.

    * The handshake fails on our side: "Tls handshake failed (TSI_PROTOCOL_FAILURE):
      SSL_ERROR_SSL: error:1000007d:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:
      self signed certificate in certificate chain: OK" (the clause after the OpenSSL
      reason is not always related: WRONG_VERSION_NUMBER, i.e. no TLS on that port, comes
      with "Invalid certificate verification context").
    * The server rejects the client's (missing or foreign) certificate: with TLS 1.3 the
      client's handshake is already over, so grpc-core only sees the server's alert as
      undecryptable data: "Unwrap failed (TSI_DATA_CORRUPTED)" (the alert itself, e.g.
      TLSV1_ALERT_CERTIFICATE_REQUIRED, reaches only grpc's log).
    """
    match = re.search(r"OPENSSL_internal:([A-Z0-9_]+)(?::\s*([^:]+))?", details)
    if match:
        reason, extra = match.group(1), (match.group(2) or "").strip()
        if reason == "CERTIFICATE_VERIFY_FAILED":
            why = f" ({extra})" if extra and extra != "OK" else ""
            return f"TLS handshake failed: the builder's certificate does not verify against --tlscacert{why}"
        if reason == "WRONG_VERSION_NUMBER":
            return "TLS handshake failed: the builder does not speak TLS on that port"
        return f"TLS handshake failed ({reason.lower().replace('_', ' ')})"
    if "handshake failed" in details.lower():
        return f"TLS handshake failed ({details.removesuffix(': OK').rsplit(': ', 1)[-1].strip(' []')})"
    if "TSI_DATA_CORRUPTED" in details:
        return (
            "the builder closed the TLS connection right after the handshake, most likely "
            "refusing the client certificate (none given, or not issued by a CA it trusts)"
        )
    return None
