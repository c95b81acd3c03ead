"""Builder errors that name the fix, against real endpoints: the Docker Engine's socket given as
a buildkitd, and a web server (Python's http.server, whose error page is 11 lines of HTML)
given as a Docker Engine or as a buildkitd. Each is one line, non-zero exit, no traceback.
"""

from __future__ import annotations

import http.server
import subprocess
import threading
from collections.abc import Iterator

import pytest

from tests.integration.helpers import llbgen

pytestmark = pytest.mark.integration


def inspect(builder: str) -> subprocess.CompletedProcess[str]:
    return llbgen("builder", "inspect", "--builder", builder, timeout=120)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    message = result.stderr.strip()
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in message
    assert len(message.splitlines()) == 1, message
    return message


@pytest.fixture(scope="module")
def web_server() -> Iterator[str]:
    """``host:port`` of a plain HTTP/1.x server on loopback."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, name="test-web-server", daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_the_docker_socket_as_a_buildkitd_says_use_docker_unix(docker_engine: str) -> None:
    message = one_line_error(inspect(docker_engine))
    assert message.endswith(f"is a Docker Engine, not a buildkitd; use --builder docker://{docker_engine}"), message


def test_a_web_server_as_a_docker_engine_is_one_line(web_server: str) -> None:
    message = one_line_error(inspect(f"docker://tcp://{web_server}"))
    assert f"tcp://{web_server} is not a Docker Engine" in message and "HTML page" in message, message
    assert "<" not in message


def test_a_web_server_as_a_buildkitd_is_one_line(web_server: str) -> None:
    message = one_line_error(inspect(f"tcp://{web_server}"))
    assert f"tcp://{web_server} is an HTTP server, not BuildKit" in message, message
