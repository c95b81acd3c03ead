"""Builder errors that name the fix: the mappings that need no daemon.

A Docker Engine's BuildKit grants ``network.host`` (the integration tests' builders all
do), so a standalone buildkitd's refusal is only reachable here, from its exact text
(moby/buildkit util/entitlements: "granting entitlement %s is not allowed by build daemon
configuration").
"""

from __future__ import annotations

import io
import ssl

import grpc

from llbgen.builder.diagnose import refused_entitlement
from llbgen.builder.docker_relay import _refusal_message, client_certificate_refused, engine_error_message
from llbgen.builder.progress import make_renderer
from llbgen.builder.solve import _build_error
from llbgen.errors import CapabilityMissing

ENGINE = "tcp://10.0.0.5:2376"
PYTHON_HTTP_SERVER_PAGE = b"""<!DOCTYPE HTML>
<html lang="en">
    <head>
        <meta charset="utf-8">
        <title>Error response</title>
    </head>
    <body>
        <h1>Error response</h1>
        <p>Error code: 501</p>
        <p>Message: Unsupported method ('POST').</p>
    </body>
</html>
"""


class RefusedSolve(grpc.RpcError, grpc.Call):
    """What grpcio raises for a Solve the daemon refused: a status code and its details."""

    def __init__(self, details: str) -> None:
        self._details = details

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNKNOWN

    def details(self) -> str:
        return self._details

    def initial_metadata(self):  # pragma: no cover - unused by the mapping
        return ()

    def trailing_metadata(self):  # pragma: no cover
        return ()

    def time_remaining(self):  # pragma: no cover
        return None

    def cancel(self):  # pragma: no cover
        return False

    def is_active(self):  # pragma: no cover
        return False

    def add_callback(self, callback):  # pragma: no cover
        return False


def test_a_refused_network_host_names_the_buildkitd_flag() -> None:
    err = RefusedSolve("granting entitlement network.host is not allowed by build daemon configuration")
    mapped = _build_error(err, make_renderer("quiet", stream=io.StringIO()), "tcp://bk:1234")
    assert isinstance(mapped, CapabilityMissing)
    assert str(mapped) == ("BuildKit at tcp://bk:1234 does not grant network.host; "
                           "start buildkitd with --allow-insecure-entitlement network.host")


def test_other_solve_errors_are_not_taken_for_an_entitlement() -> None:
    assert refused_entitlement("failed to compute cache key: not found", "unix:///run/bk.sock") is None


def test_an_html_page_is_one_line_saying_it_is_not_a_docker_engine() -> None:
    message = _refusal_message(ENGINE, "/grpc", 501, PYTHON_HTTP_SERVER_PAGE)
    assert "\n" not in message
    assert message.startswith(f"{ENGINE} is not a Docker Engine (POST /grpc → HTTP 501 with an HTML page ('Error response'))")
    assert "<" not in message


def test_plain_http_to_the_engines_tls_port_names_the_tls_flags() -> None:
    message = _refusal_message(ENGINE, "/session", 400, b"Client sent an HTTP request to an HTTPS server.\n")
    assert "expects TLS" in message and "--tlscacert/--tlscert/--tlskey" in message
    assert "standalone buildkitd" not in message


def test_the_engines_json_error_stays_its_message() -> None:
    assert engine_error_message(b'{"message":"page not found"}') == "page not found"
    assert "HTTP 404 (page not found)" in _refusal_message(ENGINE, "/grpc", 404, b'{"message":"page not found"}')


def test_a_refused_client_certificate_is_named() -> None:
    alert = ssl.SSLError(1, "[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca")
    alert.reason = "TLSV1_ALERT_UNKNOWN_CA"
    message = client_certificate_refused(ENGINE, alert)
    assert message is not None and "refused the client certificate" in message and "--tlscert/--tlskey" in message
    assert client_certificate_refused(ENGINE, ConnectionResetError(104, "Connection reset by peer")) is None
