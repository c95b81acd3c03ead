"""A unix-socket proxy that can freeze: it stops moving bytes but keeps every connection open.

That is what a daemon that hangs (stopped process, wedged host, half-dead network path)
looks like to a client: no FIN, no RST, no error — just silence. Only HTTP/2 keepalive
(or a deadline) can tell it from a quiet build step.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import threading
from pathlib import Path
from types import TracebackType


class FreezingProxy:
    """Listens on ``socket_path`` and splices each connection to the unix socket ``upstream``."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self._dir = tempfile.mkdtemp(prefix="llbgen-freeze-")
        self.socket_path = str(Path(self._dir) / "proxy.sock")
        self.frozen = threading.Event()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.socket_path)
        self._listener.listen(16)
        threading.Thread(target=self._accept, name="test-freeze-accept", daemon=True).start()

    def freeze(self) -> None:
        """From now on no byte passes in either direction; connections stay open."""
        self.frozen.set()

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            live = [self._listener, *self._sockets]
        for sock in live:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        with contextlib.suppress(OSError):
            os.unlink(self.socket_path)
            os.rmdir(self._dir)

    def __enter__(self) -> FreezingProxy:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                upstream.connect(self.upstream)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), name="test-freeze-pump",
                                 daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        while True:
            try:
                data = source.recv(64 * 1024)
            except OSError:
                return
            if self.frozen.is_set():
                # Swallow nothing and answer nothing: hold the bytes until the proxy closes.
                self._closed.wait()
                return
            if not data:
                with contextlib.suppress(OSError):
                    sink.shutdown(socket.SHUT_WR)
                return
            try:
                sink.sendall(data)
            except OSError:
                return
