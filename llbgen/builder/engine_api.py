"""The few Docker Engine API reads llbgen's build path makes: version, info, image inspect.

Over the standard library's ``http.client`` on the same connection code the BuildKit
relay uses (unix socket, TCP, TLS from DOCKER_CERT_PATH/--tls*), not docker-py: importing
docker-py (requests, urllib3) costs more than a whole no-op build's round trips, and
every ``llbgen build`` pays it. Container work (``llbgen verify``) still uses docker-py.
"""

from __future__ import annotations

import http.client
import json
from typing import Any, Literal
from urllib.parse import quote, urlencode

from llbgen.builder.docker_relay import (
    client_certificate_refused,
    connect_engine,
    engine_error_message,
    plain_http_to_tls_message,
)
from llbgen.builder.endpoint import EngineEndpoint
from llbgen.errors import BuilderUnavailable

DEFAULT_TIMEOUT = 30.0


def image_store_of(info: dict[str, Any]) -> Literal["containerd", "classic"]:
    """The engine's image store, from its ``/info`` as ``docker info`` shows it.

    The one answer llbgen uses wherever the engine's API is at hand: the containerd
    store reports a snapshotter driver type.
    """
    containerd = any(
        len(pair) == 2 and pair[0] == "driver-type" and "snapshotter" in str(pair[1])
        for pair in info.get("DriverStatus") or []
    )
    return "containerd" if containerd else "classic"


class EngineAPIError(Exception):
    """The engine answered with an error status (the message is the engine's)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _EngineConnection(http.client.HTTPConnection):
    """An HTTP connection whose socket comes from ``connect_engine`` (unix or TCP, TLS or not)."""

    def __init__(self, engine: EngineEndpoint, timeout: float) -> None:
        super().__init__("docker", timeout=timeout)
        self._engine = engine

    def connect(self) -> None:
        self.sock = connect_engine(self._engine, self.timeout)  # type: ignore[arg-type]


class EngineAPI:
    """Read-only JSON calls to one Docker Engine; one short connection per call."""

    def __init__(self, engine: EngineEndpoint, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.engine = engine
        self._timeout = timeout

    def connection(self, timeout: float | None = None) -> http.client.HTTPConnection:
        """A fresh HTTP connection to the engine, for a call that is not a plain JSON GET."""
        return _EngineConnection(self.engine, self._timeout if timeout is None else timeout)

    def get(self, path: str) -> Any:
        """``GET path`` as JSON. Raises ``EngineAPIError`` for error statuses, ``BuilderUnavailable`` when unreachable."""
        conn = _EngineConnection(self.engine, self._timeout)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as err:
            refusal = client_certificate_refused(self.engine.host, err) if isinstance(err, OSError) else None
            if refusal:
                raise BuilderUnavailable(refusal) from None
            # Connecting already raised BuilderUnavailable; this is the engine failing mid-answer.
            raise BuilderUnavailable(f"the Docker Engine at {self.engine} broke off GET {path}: "
                                     f"{err or type(err).__name__}") from None
        finally:
            conn.close()
        tls = plain_http_to_tls_message(self.engine.host, body) if response.status == 400 else None
        if tls:
            raise BuilderUnavailable(tls)
        if response.status >= 400:
            raise EngineAPIError(response.status, engine_error_message(body) or f"HTTP {response.status}")
        try:
            return json.loads(body)
        except ValueError:
            raise EngineAPIError(response.status, f"GET {path}: the engine's answer is not JSON") from None

    def version(self) -> dict[str, Any]:
        return self.get("/version")

    def info(self) -> dict[str, Any]:
        return self.get("/info")

    def list_images(self, reference: str) -> list[dict[str, Any]]:
        """``docker images reference``: the summaries of the images tagged ``reference``."""
        query = urlencode({"filters": json.dumps({"reference": [reference]})})
        return self.get(f"/images/json?{query}")

    def inspect_image(self, ref: str) -> dict[str, Any] | None:
        """``docker image inspect ref``, or None when the engine has no such image."""
        try:
            return self.get(f"/images/{quote(ref, safe='/:@')}/json")
        except EngineAPIError as err:
            if err.status == 404:
                return None
            raise

