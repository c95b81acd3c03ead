"""Small helpers shared by the engine tests: run docker, read images, serve files on loopback."""

from __future__ import annotations

import gzip
import http.server
import io
import json
import signal
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import MAIN_ENGINE

DOCKER = ["docker", "-H", MAIN_ENGINE]


def docker(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DOCKER, *args], capture_output=True, text=True, check=check, timeout=timeout)


def inspect_image(name: str) -> dict:
    return json.loads(docker("image", "inspect", name).stdout)[0]


def run_in(image: str, command: str) -> str:
    return docker("run", "--rm", "--entrypoint", "/bin/sh", image, "-c", command).stdout


def oci_blobs(path: Path) -> Iterator[bytes]:
    """Every blob of an OCI/docker tarball, layers decompressed."""
    with tarfile.open(path) as archive:
        for member in archive.getmembers():
            if not member.isfile():
                continue
            data = archive.extractfile(member).read()  # type: ignore[union-attr]
            if data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            yield data


def layer_files(layer: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(layer)) as archive:
        return archive.getnames()


@contextmanager
def serve_directory(directory: Path) -> Iterator[str]:
    """A threaded HTTP server on 127.0.0.1 serving ``directory``; yields its base URL."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(directory), **kwargs)

        def log_message(self, *args) -> None:  # keep test output clean
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def default_sigint() -> None:
    """``preexec_fn`` for a child that must see Ctrl-C: a shell's background job (``cmd &``)
    starts with SIGINT ignored, Python keeps an ignored SIGINT, and so would the child."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
