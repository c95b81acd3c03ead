"""Builder errors that name the fix, for the usual wrong turns with ``--builder``.

grpc-core only says what went wrong on the wire ("socket closed", "failed parsing
HTTP/2"); one extra look at the other end tells the user what to type instead:

* a Docker Engine's socket given as a buildkitd (``unix:///var/run/docker.sock``):
  use ``docker://unix://…``;
* any other HTTP/1.x server: not BuildKit at all;
* a TLS port dialed in plain text: add ``--tlscacert/--tlscert/--tlskey``;
* a buildkitd that does not grant ``network.host``: start it with
  ``--allow-insecure-entitlement network.host``.
"""

from __future__ import annotations

import re
import socket
import ssl

from llbgen.builder.address import BuilderAddress
from llbgen.builder.endpoint import EngineEndpoint

PROBE_TIMEOUT = 3.0
# grpc-core's words for an HTTP/1.x answer to its HTTP/2 preface.
HTTP1_SIGNS = ("failed parsing HTTP/2", "http1.x server")
HUNG_UP_SIGNS = ("closed", "reset", "end of file", "eof")
TLS_FLAGS = "--tlscacert/--tlscert/--tlskey"
ENTITLEMENT_REFUSED = re.compile(r"granting entitlement ([\w.]+) is not allowed by build daemon configuration")


def unreachable_builder(address: BuilderAddress, reason: str) -> str | None:
    """A one-line error naming the fix when a unix:// or tcp:// builder is not a gRPC BuildKit; else None."""
    if address.kind == "docker":
        return None
    if any(sign in reason for sign in HTTP1_SIGNS):
        host = f"{'unix' if address.kind == 'unix' else 'tcp'}://{address.target}"
        if not address.use_tls and _is_docker_engine(EngineEndpoint(host)):
            return f"{address} is a Docker Engine, not a buildkitd; use --builder docker://{host}"
        return (f"{address} is an HTTP server, not BuildKit (it answered HTTP/1.x to gRPC); "
                "point --builder at a buildkitd (unix://, tcp://) or a Docker Engine (docker://…)")
    # A TLS server hangs up on a plain-text client; only then is the extra handshake worth it.
    hung_up = any(sign in reason.lower() for sign in HUNG_UP_SIGNS)
    if address.kind == "tcp" and not address.use_tls and hung_up and _speaks_tls(address.target):
        return f"BuildKit at {address} expects TLS; use {TLS_FLAGS}"
    return None


def refused_entitlement(details: str, address: str) -> str | None:
    """A one-line error for a buildkitd that does not grant an entitlement the build asked for; else None."""
    match = ENTITLEMENT_REFUSED.search(details)
    if match is None:
        return None
    entitlement = match.group(1)
    return (f"BuildKit at {address} does not grant {entitlement}; "
            f"start buildkitd with --allow-insecure-entitlement {entitlement}")


def _is_docker_engine(engine: EngineEndpoint) -> bool:
    from llbgen.builder.engine_api import EngineAPI

    try:
        return "ApiVersion" in EngineAPI(engine, timeout=PROBE_TIMEOUT).version()
    except Exception:  # noqa: BLE001 - anything but a Docker Engine's answer means "not one"
        return False


def _speaks_tls(host_port: str) -> bool:
    """Whether a TLS handshake with ``host_port`` gets as far as the server's answer."""
    host, _, port = host_port.rpartition(":")
    host = host.strip("[]")
    context = ssl.create_default_context()
    # Only asking whether it speaks TLS at all: who it is does not matter here.
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with (socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT) as raw,
              context.wrap_socket(raw, server_hostname=host)):
            return True
    except ssl.SSLError as err:
        # A TLS server that wants a client certificate may end the handshake with an alert.
        return "ALERT" in str(err.reason or "").upper()
    except (OSError, ValueError):
        return False
