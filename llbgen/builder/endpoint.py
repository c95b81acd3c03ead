"""The Docker Engine a ``docker://`` builder names: its address and how to speak TLS to it.

Derived once from the builder address and carried by the connection, so every client
of the engine (the ``/grpc`` relay, the ``/session`` attach, Engine API reads, image
sizes) reaches it the same way; none can drop the TLS settings on its own.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from llbgen.errors import UsageError


@dataclass(frozen=True)
class EngineEndpoint:
    """``host`` is ``unix:///PATH`` or ``tcp://HOST:PORT``; the rest only matters with ``use_tls``."""

    host: str
    use_tls: bool = False
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_server_name: str | None = None
    # DOCKER_CERT_PATH without DOCKER_TLS_VERIFY: encrypt, but do not verify the server.
    tls_verify: bool = True

    def __str__(self) -> str:
        return self.host

    @cached_property
    def ssl_context(self) -> ssl.SSLContext | None:
        """The client TLS settings (one context for every connection), or None for plain HTTP."""
        if not self.use_tls:
            return None
        try:
            context = ssl.create_default_context(cafile=str(self.tls_ca) if self.tls_ca else None)
        except (ssl.SSLError, OSError) as err:
            raise UsageError(f"{self.tls_ca} is not a PEM CA certificate ({_reason(err)}); "
                             "give the CA that signed the engine's certificate") from None
        if not self.tls_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.tls_cert and self.tls_key:
            try:
                context.load_cert_chain(str(self.tls_cert), str(self.tls_key))
            except (ssl.SSLError, OSError) as err:
                raise UsageError(f"cannot load the client certificate {self.tls_cert} with key {self.tls_key} "
                                 f"({_reason(err)}); give a PEM certificate and its matching key") from None
        return context


def _reason(err: Exception) -> str:
    return str(getattr(err, "reason", None) or getattr(err, "strerror", None) or err).lower().replace("_", " ")
