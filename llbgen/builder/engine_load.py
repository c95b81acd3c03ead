"""``--load`` with a standalone buildkitd: the ``docker`` exporter's tarball, streamed into the local Docker Engine.

This is what buildx's docker driver-less ``--load`` does: BuildKit sends the image as a
``docker save``-style tar through the session (FileSend), and the client pipes it into
the engine's ``POST /images/load`` as it arrives, never holding the whole image on disk.
The local engine is ``DOCKER_HOST`` (with DOCKER_TLS_VERIFY / DOCKER_CERT_PATH), else
the default socket, the one ``docker`` itself would use.
"""

from __future__ import annotations

import http.client
import json
import os
from collections.abc import Mapping

from llbgen.builder.address import resolve_builder_address
from llbgen.builder.engine_api import EngineAPI
from llbgen.errors import LlbgenError, UsageError

PROBE_TIMEOUT = 5.0
# Longest silence allowed between two pieces of the load (the engine unpacks big layers
# before it answers).
IDLE_TIMEOUT = 600.0
NO_ENGINE_FIX = ("start the Docker Engine or point DOCKER_HOST at one, or export instead: "
                 "--output type=oci,dest=FILE (or type=docker,dest=FILE) or --push")


class EngineLoadFailed(LlbgenError):
    """The engine refused or broke off the image load."""


def local_engine(env: Mapping[str, str] | None = None) -> EngineAPI:
    """The Docker Engine ``docker`` would talk to (``DOCKER_HOST`` or the default socket)."""
    address = resolve_builder_address("docker://", env=os.environ if env is None else env)
    assert address.engine is not None  # a docker:// address always names its engine
    return EngineAPI(address.engine, timeout=PROBE_TIMEOUT)


def require_local_engine(builder: str, env: Mapping[str, str] | None = None) -> EngineAPI:
    """The local engine, checked to answer; else a one-line ``UsageError`` (before any build starts)."""
    try:
        engine = local_engine(env)
    except UsageError as err:
        raise UsageError(f"--load with the builder {builder} loads the image into the local Docker Engine: "
                         f"{err}") from None
    try:
        engine.version()
    except Exception as err:  # noqa: BLE001 - unreachable, error status, odd reply: all mean "no engine to load into"
        reason = _short_reason(err, engine.engine.host)
        raise UsageError(f"--load with the builder {builder} loads the image into the local Docker Engine, "
                         f"but none answers at {engine.engine.host} ({reason}); {NO_ENGINE_FIX}") from None
    return engine


class EngineImageLoad:
    """One ``POST /images/load`` whose body is written piece by piece (chunked), as the exporter sends it."""

    def __init__(self, engine: EngineAPI) -> None:
        self.engine = engine
        self.loaded: list[str] = []
        self._conn: http.client.HTTPConnection | None = None

    def start(self) -> EngineImageLoad:
        self._conn = self.engine.connection(timeout=IDLE_TIMEOUT)
        try:
            self._conn.putrequest("POST", "/images/load?quiet=1", skip_accept_encoding=True)
            self._conn.putheader("Content-Type", "application/x-tar")
            self._conn.putheader("Transfer-Encoding", "chunked")
            self._conn.endheaders()
        except (OSError, http.client.HTTPException) as err:
            self.abort()
            raise self._broken(err) from None
        return self

    def write(self, data: bytes) -> None:
        if not data:
            return
        try:
            self._require().send(b"%x\r\n%s\r\n" % (len(data), data))
        except (OSError, http.client.HTTPException) as err:
            self.abort()
            raise self._broken(err) from None

    def finish(self) -> list[str]:
        """End the body and read the engine's verdict: the ``Loaded image: …`` names, or ``EngineLoadFailed``."""
        conn = self._require()
        try:
            conn.send(b"0\r\n\r\n")
            response = conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as err:
            raise self._broken(err) from None
        finally:
            self.abort()
        messages = _json_messages(body)
        errors = [m.get("errorDetail", {}).get("message") or m.get("error") for m in messages
                  if "error" in m or "errorDetail" in m]
        if response.status >= 400 or errors:
            detail = errors[0] if errors else (body.decode(errors="replace").strip() or f"HTTP {response.status}")
            raise EngineLoadFailed(f"the Docker Engine at {self.engine.engine.host} did not load the image: "
                                   f"{' '.join(str(detail).split())}")
        self.loaded = [line.split(":", 1)[1].strip() for m in messages
                       for line in str(m.get("stream", "")).splitlines() if line.startswith("Loaded image")]
        return self.loaded

    def abort(self) -> None:
        """Drop the connection; an unfinished body makes the engine load nothing."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _require(self) -> http.client.HTTPConnection:
        if self._conn is None:
            raise RuntimeError("image load not started")
        return self._conn

    def _broken(self, err: BaseException) -> EngineLoadFailed:
        return EngineLoadFailed(f"the Docker Engine at {self.engine.engine.host} broke off the image load: "
                                f"{' '.join(str(err).split()) or type(err).__name__}")


def _short_reason(err: BaseException, docker_host: str) -> str:
    """"no such file or directory" out of "cannot reach the Docker Engine at X: no such file or directory; hint"."""
    text = " ".join(str(err).split())
    prefix = f"cannot reach the Docker Engine at {docker_host}: "
    if text.startswith(prefix):
        text = text[len(prefix):].split("; ", 1)[0]
    return text or type(err).__name__


def _json_messages(body: bytes) -> list[dict]:
    """The engine's answer: a stream of JSON objects, one per line (``jsonmessage``)."""
    messages = []
    for line in body.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            messages.append(value)
    return messages
