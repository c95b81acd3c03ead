"""Carry the session's bytes between the daemon and our local gRPC server.

On a session the roles are reversed: the daemon is the HTTP/2 gRPC *client* and
we serve. grpcio cannot serve on an arbitrary byte stream, so the session server
listens on a private unix socket and each attachment opens one connection to it
and copies bytes both ways:

* ``ControlStreamAttachment``: the bidi ``Control.Session`` call; every write is
  one BytesMessage (BuildKit session/grpchijack). Works on buildkitd and dockerd.
* ``SocketAttachment``: a raw connection, here dockerd's ``POST /session``
  upgraded to h2c (what buildx's docker driver uses).

Either side closing ends the whole attachment: HTTP/2 has no use for half-closed
connections, and the daemon forgets the session when its connection drops.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import ssl
import threading
from collections.abc import Iterator, Sequence

import grpc

from llbgen._proto.buildkit import control_pb2

log = logging.getLogger(__name__)

# grpchijack reads in 32 KiB pieces; larger messages only help bulk transfers.
CHUNK = 64 * 1024


def connect_unix(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except BaseException:
        sock.close()
        raise
    return sock


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError, ValueError):
        sock.shutdown(socket.SHUT_RDWR)


class ControlStreamAttachment:
    """``Control.Session`` ↔ local session server."""

    def __init__(self, control, socket_path: str, metadata: Sequence[tuple[str, str]]):
        self.error: BaseException | None = None
        self.first_bytes = threading.Event()  # the daemon started talking HTTP/2 to us
        self.ended = threading.Event()
        self.settled = threading.Event()  # either of the two above
        self._closing = False
        self._local = connect_unix(socket_path)
        # grpcio consumes the request iterator on a thread of its own.
        self._call = control.Session(self._requests(), metadata=list(metadata))
        self._thread = threading.Thread(target=self._responses, name="llbgen-session-control", daemon=True)
        self._thread.start()

    def _requests(self) -> Iterator[control_pb2.BytesMessage]:
        while True:
            try:
                data = self._local.recv(CHUNK)
            except OSError:
                return
            if not data:
                return
            yield control_pb2.BytesMessage(data=data)

    def _responses(self) -> None:
        try:
            for message in self._call:
                self.first_bytes.set()
                self.settled.set()
                self._local.sendall(message.data)
        except grpc.RpcError as err:
            if not self._closing and err.code() is not grpc.StatusCode.CANCELLED:
                self.error = err
        except OSError as err:
            if not self._closing:
                self.error = err
        finally:
            self.ended.set()
            self.settled.set()
            _shutdown(self._local)

    def close(self) -> None:
        self._closing = True
        self._call.cancel()
        _shutdown(self._local)
        self._thread.join()
        self._local.close()


class SocketAttachment:
    """A raw byte stream to the daemon (an upgraded ``/session``) ↔ local session server.

    One thread copies both directions with a selector, so a TLS socket is never
    used from two threads at once.
    """

    def __init__(self, upstream: socket.socket, socket_path: str):
        self.error: BaseException | None = None
        self.first_bytes = threading.Event()
        self.ended = threading.Event()
        self.settled = threading.Event()
        self._closing = False
        self._upstream = upstream
        try:
            self._local = connect_unix(socket_path)
        except BaseException:
            upstream.close()
            raise
        self._thread = threading.Thread(target=self._splice, name="llbgen-session-socket", daemon=True)
        self._thread.start()

    def _splice(self) -> None:
        peer = {self._upstream: self._local, self._local: self._upstream}
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self._upstream, selectors.EVENT_READ)
                selector.register(self._local, selectors.EVENT_READ)
                while True:
                    # Bytes an SSLSocket already decrypted are invisible to select().
                    pending = isinstance(self._upstream, ssl.SSLSocket) and self._upstream.pending()
                    ready = [self._upstream] if pending else [key.fileobj for key, _ in selector.select()]
                    for source in ready:
                        data = source.recv(CHUNK)
                        if not data:
                            return
                        if source is self._upstream:
                            self.first_bytes.set()
                            self.settled.set()
                        peer[source].sendall(data)
        except (OSError, ValueError) as err:
            # ValueError: an SSLSocket that close() shut down under us.
            if not self._closing:
                self.error = err
        finally:
            self.ended.set()
            self.settled.set()
            _shutdown(self._upstream)
            _shutdown(self._local)

    def close(self) -> None:
        self._closing = True
        _shutdown(self._upstream)
        _shutdown(self._local)
        self._thread.join()
        self._upstream.close()
        self._local.close()
