"""Reach the Docker Engine's embedded BuildKit the way ``docker buildx`` does.

dockerd serves BuildKit's gRPC API only behind an HTTP/1.1 upgrade: ``POST /grpc``
with ``Upgrade: h2c`` answers ``101 Switching Protocols`` and then speaks plain
HTTP/2 on the same connection (moby ``api/server/router/grpc``). grpcio cannot dial
through an upgrade, so ``DockerGrpcRelay`` listens on a private unix socket and,
for every connection grpcio makes, performs a fresh upgrade and splices the bytes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import selectors
import shutil
import socket
import ssl
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from llbgen.builder.address import BuilderAddress
from llbgen.builder.endpoint import EngineEndpoint
from llbgen.errors import BuilderUnavailable

if TYPE_CHECKING:
    from typing_extensions import Self

MAX_RESPONSE_HEAD = 16 * 1024
CHUNK = 64 * 1024
# Same as the docker Go client's dialer: notice a dead TCP peer without gRPC's help.
TCP_KEEPALIVE_SECONDS = 30
ENGINE_HINT = "is the Docker Engine running? check DOCKER_HOST or set --builder"
TLS_HINT = "use --tlscacert/--tlscert/--tlskey, or DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH as for the docker CLI"
# What Go's TLS server answers a plain-text HTTP request with (crypto/tls, net/http).
PLAIN_HTTP_TO_TLS = b"Client sent an HTTP request to an HTTPS server"
# TLS alerts with which a server turns down the client's certificate (none, or a foreign CA's).
CLIENT_CERT_ALERTS = ("UNKNOWN_CA", "BAD_CERTIFICATE", "CERTIFICATE_REQUIRED", "CERTIFICATE_UNKNOWN")


def open_upgraded_socket(
    engine: EngineEndpoint,
    path: str,
    headers: list[tuple[str, str]],
    timeout: float,
) -> socket.socket:
    """Connect to the engine, upgrade ``POST {path}`` to h2c, return the raw connection.

    dockerd writes its HTTP/2 SETTINGS frame right after the 101 headers, often in the
    same packet. The response head is read with ``MSG_PEEK`` and only the head is
    consumed, so those bytes stay in the kernel buffer and the caller reads them first.
    (Over TLS the head is read one byte at a time; extra decrypted bytes stay in the
    ``SSLSocket`` and its ``recv`` returns them first — check ``pending()`` before select.)
    Headers are sent one line each; repeated keys stay separate lines (the session
    manager needs one line per exposed gRPC method).
    """
    docker_host = engine.host
    sock = connect_engine(engine, timeout)
    try:
        sock.settimeout(timeout)
        sock.sendall(_upgrade_request(path, headers))
        head = _read_response_head(sock, docker_host)
        status = _status_code(head, docker_host)
        if status != 101:
            body = _read_small_body(sock, head)
            raise BuilderUnavailable(_refusal_message(docker_host, path, status, body))
        sock.settimeout(None)
        return sock
    except BuilderUnavailable:
        sock.close()
        raise
    except OSError as err:
        sock.close()
        refusal = client_certificate_refused(docker_host, err)
        if refusal:
            raise BuilderUnavailable(refusal) from None
        hint = ENGINE_HINT
        if docker_host.startswith("tcp://") and not engine.use_tls:
            # A TLS-only engine resets a plaintext request: the usual cause over TCP.
            hint = f"if the engine expects TLS, {TLS_HINT}"
        raise BuilderUnavailable(
            f"the Docker Engine at {docker_host} broke off the {path} upgrade: {_reason(err)}; {hint}"
        ) from None


def connect_engine(engine: EngineEndpoint, timeout: float) -> socket.socket:
    """A connected (and for TLS, handshaken) socket to ``engine``."""
    docker_host = engine.host
    parts = urlsplit(docker_host)
    try:
        if parts.scheme == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout)
                sock.connect(parts.path)
            except BaseException:
                sock.close()
                raise
            return sock
        if parts.scheme == "tcp" and parts.hostname and parts.port:
            sock = socket.create_connection(
                (parts.hostname, parts.port), timeout=timeout
            )
            _enable_tcp_keepalive(sock)
            if engine.ssl_context is not None:
                try:
                    sock = engine.ssl_context.wrap_socket(
                        sock, server_hostname=engine.tls_server_name or parts.hostname
                    )
                except BaseException:
                    sock.close()
                    raise
            return sock
    except ssl.SSLError as err:
        raise BuilderUnavailable(
            f"TLS handshake with the Docker Engine at {docker_host} failed: {err.reason or err}; check DOCKER_CERT_PATH / --tlscacert"
        ) from None
    except OSError as err:
        raise BuilderUnavailable(
            f"cannot reach the Docker Engine at {docker_host}: {_reason(err)}; {_hint_for(err)}"
        ) from None
    raise BuilderUnavailable(
        f"cannot reach the Docker Engine at {docker_host}: only unix:// and tcp://HOST:PORT are supported"
    )


def _enable_tcp_keepalive(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name in ("TCP_KEEPIDLE", "TCP_KEEPINTVL"):
        if hasattr(socket, name):
            sock.setsockopt(
                socket.IPPROTO_TCP, getattr(socket, name), TCP_KEEPALIVE_SECONDS
            )


def _upgrade_request(path: str, headers: list[tuple[str, str]]) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        "Host: docker",
        "Connection: Upgrade",
        "Upgrade: h2c",
        "Content-Length: 0",
    ]
    for key, value in headers:
        if any(c in f"{key}{value}" for c in "\r\n"):
            raise ValueError(f"header {key!r} contains a line break")
        lines.append(f"{key}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _read_response_head(sock: socket.socket, docker_host: str) -> bytes:
    if isinstance(sock, ssl.SSLSocket):
        return _read_head_bytewise(sock, docker_host)
    head = b""
    while True:
        peeked = sock.recv(MAX_RESPONSE_HEAD, socket.MSG_PEEK)
        if not peeked:
            raise BuilderUnavailable(
                f"the Docker Engine at {docker_host} closed the connection before answering; {ENGINE_HINT}"
            )
        seen = head + peeked
        end = seen.find(b"\r\n\r\n", max(0, len(head) - 3))
        if end >= 0:
            # Consume exactly the head; whatever follows belongs to HTTP/2.
            head += _recv_exactly(sock, end + 4 - len(head))
            return head
        if len(seen) >= MAX_RESPONSE_HEAD:
            raise BuilderUnavailable(
                f"the Docker Engine at {docker_host} sent an oversized HTTP response head"
            )
        # No terminator yet: everything peeked is head, so consume it and wait for more.
        head += _recv_exactly(sock, len(peeked))


def _read_head_bytewise(sock: socket.socket, docker_host: str) -> bytes:
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        byte = sock.recv(1)
        if not byte:
            raise BuilderUnavailable(
                f"the Docker Engine at {docker_host} closed the connection before answering; {ENGINE_HINT}"
            )
        head += byte
        if len(head) > MAX_RESPONSE_HEAD:
            raise BuilderUnavailable(
                f"the Docker Engine at {docker_host} sent an oversized HTTP response head"
            )
    return head


def _recv_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionResetError("connection closed mid-response")
        data += chunk
    return data


def _status_code(head: bytes, docker_host: str) -> int:
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    fields = status_line.split(" ", 2)
    if len(fields) < 2 or not fields[0].startswith("HTTP/") or not fields[1].isdigit():
        raise BuilderUnavailable(
            f"{docker_host} did not answer like a Docker Engine (got {status_line[:60]!r})"
        )
    return int(fields[1])


def _read_small_body(sock: socket.socket, head: bytes) -> bytes:
    """Best effort: the start of the error body, for the one-line error."""
    lines = head.decode("latin-1").split("\r\n")
    length = None
    for line in lines[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == "content-length" and value.strip().isdigit():
            length = min(int(value.strip()), 4096)
    try:
        if length is not None:
            return _recv_exactly(sock, length) if length else b""
        if lines[0].startswith("HTTP/1.0"):
            # No length: the body runs to the end of the connection (Go's answer on a TLS port).
            return _recv_until_closed(sock, 4096)
    except OSError:
        pass
    return b""


def _recv_until_closed(sock: socket.socket, limit: int) -> bytes:
    data = b""
    while len(data) < limit:
        chunk = sock.recv(limit - len(data))
        if not chunk:
            break
        data += chunk
    return data


def engine_error_message(body: bytes) -> str:
    """The ``message`` of the engine's JSON error body, else the body's start as one line of text."""
    try:
        return " ".join(str(json.loads(body).get("message", "")).split())
    except (ValueError, AttributeError):
        return " ".join(body.decode("utf-8", "replace").split())[:300]


def plain_http_to_tls_message(docker_host: str, body: bytes) -> str | None:
    """The error for a plain-text request that reached the engine's TLS port; else None."""
    if PLAIN_HTTP_TO_TLS not in body:
        return None
    return f"the Docker Engine at {docker_host} expects TLS (it answered plain HTTP with \"{PLAIN_HTTP_TO_TLS.decode()}\"); {TLS_HINT}"


def client_certificate_refused(docker_host: str, err: OSError) -> str | None:
    """The error for an engine that turned down our client certificate in the TLS handshake; else None."""
    reason = str(getattr(err, "reason", "") or "").upper() if isinstance(err, ssl.SSLError) else ""
    if not any(alert in reason for alert in CLIENT_CERT_ALERTS):
        return None
    return (f"the Docker Engine at {docker_host} refused the client certificate ({reason.lower().replace('_', ' ')}); "
            "give --tlscert/--tlskey (or cert.pem and key.pem in DOCKER_CERT_PATH) issued by a CA the engine trusts")


def _html_title(body: bytes) -> str | None:
    """The page's title (or "") when ``body`` is an HTML page; None when it is not HTML."""
    text = body.decode("utf-8", "replace").lstrip()
    if not text.lower().startswith(("<!doctype html", "<html")):
        return None
    match = re.search(r"<title>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    return " ".join(match.group(1).split()) if match else ""


def _refusal_message(docker_host: str, path: str, status: int, raw_body: bytes) -> str:
    tls = plain_http_to_tls_message(docker_host, raw_body)
    if tls:
        return tls
    title = _html_title(raw_body)
    if title is not None:
        # A Docker Engine answers errors in JSON: this is some other web server.
        page = f"an HTML page ({title!r})" if title else "an HTML page"
        return (f"{docker_host} is not a Docker Engine (POST {path} → HTTP {status} with {page}); "
                "point --builder at a Docker Engine (docker://…) or a buildkitd (unix://…, tcp://…)")
    body = engine_error_message(raw_body)
    detail = f" ({body})" if body else ""
    if status == 404:
        return (
            f"the Docker Engine at {docker_host} has no BuildKit endpoint (POST {path} → HTTP 404{detail}); "
            "the engine is too old or not a Docker Engine; use a newer engine or --builder with a standalone buildkitd"
        )
    return f"the Docker Engine at {docker_host} refused the BuildKit upgrade (POST {path} → HTTP {status}{detail}); use --builder with a standalone buildkitd"


def _reason(err: OSError) -> str:
    if isinstance(err, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(err, socket.gaierror):
        return f"unknown host ({err.strerror})"
    return (err.strerror or str(err) or type(err).__name__).lower()


def _hint_for(err: OSError) -> str:
    if isinstance(err, PermissionError):
        return "add your user to the docker group or check the socket's permissions"
    return ENGINE_HINT


class DockerGrpcRelay:
    """A private unix socket that grpcio dials; each connection becomes one upgraded ``/grpc`` connection.

    Use as a context manager. ``target`` is the ``unix:`` string for ``grpc.insecure_channel``.
    Connections are spliced by one thread each (single-threaded, so TLS sockets are never
    used from two threads at once); ``close()`` shuts every socket down and joins every thread.
    """

    def __init__(self, engine: EngineEndpoint, *, connect_timeout: float = 10.0) -> None:
        self.engine = engine
        self._connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._closed = False
        self._dir: str | None = None
        self._listener: socket.socket | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._accept_thread: threading.Thread | None = None
        self.last_error: BuilderUnavailable | None = None

    @classmethod
    def for_address(
        cls, address: BuilderAddress, *, connect_timeout: float = 10.0
    ) -> DockerGrpcRelay:
        if address.engine is None:
            raise ValueError(f"{address} is not a Docker Engine builder")
        return cls(address.engine, connect_timeout=connect_timeout)

    @property
    def socket_path(self) -> str:
        if self._dir is None:
            raise RuntimeError("relay not started")
        return os.path.join(self._dir, "grpc.sock")

    @property
    def target(self) -> str:
        """The grpcio target, e.g. ``unix:/tmp/llbgen-relay-x/grpc.sock``."""
        return f"unix:{self.socket_path}"

    def start(self) -> Self:
        # mkdtemp makes the directory 0700: only this user can reach the engine through it.
        self._dir = tempfile.mkdtemp(prefix="llbgen-relay-", dir=_short_tmpdir())
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.socket_path)
        listener.listen(16)
        listener.setblocking(False)
        self._listener = listener
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name="llbgen-docker-relay-accept", daemon=True
        )
        self._accept_thread.start()
        return self

    def probe(self) -> None:
        """Do one upgrade now, so a refusal surfaces as a precise error instead of a gRPC UNAVAILABLE."""
        sock = open_upgraded_socket(self.engine, "/grpc", [], self._connect_timeout)
        sock.close()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            live = list(self._sockets)
            threads = list(self._threads)
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        for sock in live:
            _shutdown(sock)
        if self._accept_thread is not None:
            self._accept_thread.join()
        for thread in threads:
            thread.join(self._connect_timeout + 5)
        # Threads registered between the snapshot above and the accept loop's exit.
        with self._lock:
            late = list(self._threads)
        for thread in late:
            thread.join(self._connect_timeout + 5)
        for sock in (self._listener, self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while True:
                ready = {key.fileobj for key, _ in selector.select()}
                if self._wake_r in ready:
                    return
                try:
                    client, _ = self._listener.accept()
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    return
                client.setblocking(True)
                thread = threading.Thread(
                    target=self._serve,
                    args=(client,),
                    name="llbgen-docker-relay-conn",
                    daemon=True,
                )
                with self._lock:
                    if self._closed:
                        client.close()
                        return
                    self._threads.add(thread)
                    self._sockets.add(client)
                thread.start()

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            try:
                upstream = open_upgraded_socket(
                    self.engine, "/grpc", [], self._connect_timeout
                )
            except BuilderUnavailable as err:
                # grpcio only sees a closed connection; keep the reason for the caller's error.
                self.last_error = err
                return
            with self._lock:
                if self._closed:
                    return
                self._sockets.add(upstream)
            _splice(client, upstream)
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    _shutdown(sock)
                    sock.close()
            with self._lock:
                self._sockets.discard(client)
                if upstream is not None:
                    self._sockets.discard(upstream)
                self._threads.discard(threading.current_thread())


def _splice(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until either side closes (or close() shuts the sockets down)."""
    peer = {a: b, b: a}
    with selectors.DefaultSelector() as selector:
        selector.register(a, selectors.EVENT_READ)
        selector.register(b, selectors.EVENT_READ)
        # Bytes an SSLSocket decrypted during the upgrade are invisible to select().
        pending = [s for s in (a, b) if isinstance(s, ssl.SSLSocket) and s.pending()]
        while True:
            ready = pending or [key.fileobj for key, _ in selector.select()]
            pending = []
            for source in ready:
                if not _pump(source, peer[source]):
                    return


def _pump(source: socket.socket, sink: socket.socket) -> bool:
    try:
        while True:
            data = source.recv(CHUNK)
            if not data:
                return False
            sink.sendall(data)
            if not (isinstance(source, ssl.SSLSocket) and source.pending()):
                return True
    except (OSError, ValueError):
        # ValueError: an SSLSocket shut down by close() from another thread.
        return False


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError, ValueError):
        sock.shutdown(socket.SHUT_RDWR)


def _short_tmpdir() -> str | None:
    """AF_UNIX paths are limited to ~107 bytes; fall back to /tmp if TMPDIR is deep."""
    base = tempfile.gettempdir()
    return None if len(base) < 60 else str(Path("/tmp"))
