"""Where the BuildKit builder lives: parse ``--builder`` / ``BUILDKIT_HOST`` / ``DOCKER_HOST``.

Three kinds of builder are supported:

* ``docker``: the BuildKit embedded in a Docker Engine, reached through the
  engine's ``/grpc`` HTTP upgrade (see ``docker_relay``). ``target`` is the
  engine's own address (``unix:///var/run/docker.sock`` or ``tcp://host:port``).
* ``unix``: a standalone buildkitd on a unix socket; ``target`` is the socket path.
* ``tcp``: a standalone buildkitd on TCP, optionally with (mutual) TLS; ``target`` is ``host:port``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from llbgen.builder.endpoint import EngineEndpoint
from llbgen.errors import UsageError

BuilderKind = Literal["docker", "unix", "tcp"]

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"

VALID_FORMS = (
    "docker:// (DOCKER_HOST or unix:///var/run/docker.sock), docker://unix:///PATH, "
    "docker://tcp://HOST:PORT, unix:///PATH, tcp://HOST:PORT"
)


@dataclass(frozen=True)
class BuilderAddress:
    """A parsed builder endpoint plus the TLS material needed to reach it.

    For ``tcp`` the TLS files secure the gRPC channel to buildkitd; for ``docker``
    over ``tcp://`` they secure the connection to the Docker Engine API.
    """

    kind: BuilderKind
    target: str
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_server_name: str | None = None
    # Docker's DOCKER_CERT_PATH without DOCKER_TLS_VERIFY means "encrypt, but do not
    # verify the server"; buildkitd TLS is always verified.
    tls_verify: bool = True
    use_tls: bool = False

    def __str__(self) -> str:
        if self.kind == "docker":
            return f"docker://{self.target}"
        if self.kind == "unix":
            return f"unix://{self.target}"
        return f"tcp://{self.target}"

    @cached_property
    def engine(self) -> EngineEndpoint | None:
        """The Docker Engine (address and TLS) for docker builders; None for buildkitd."""
        if self.kind != "docker":
            return None
        return EngineEndpoint(
            host=self.target,
            use_tls=self.use_tls,
            tls_ca=self.tls_ca,
            tls_cert=self.tls_cert,
            tls_key=self.tls_key,
            tls_server_name=self.tls_server_name,
            tls_verify=self.tls_verify,
        )


@dataclass(frozen=True)
class TlsOptions:
    """TLS files given on the command line (``--tlscacert`` and friends)."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    server_name: str | None = None

    @property
    def given(self) -> bool:
        return any(
            v is not None for v in (self.ca, self.cert, self.key, self.server_name)
        )


def resolve_builder_address(
    explicit: str | None,
    *,
    tls_ca: str | Path | None = None,
    tls_cert: str | Path | None = None,
    tls_key: str | Path | None = None,
    tls_server_name: str | None = None,
    env: Mapping[str, str] | None = None,
) -> BuilderAddress:
    """Pick the builder: ``explicit`` (``--builder``), else ``BUILDKIT_HOST``, else the Docker Engine."""
    env = os.environ if env is None else env
    tls = TlsOptions(
        ca=_opt_path(tls_ca),
        cert=_opt_path(tls_cert),
        key=_opt_path(tls_key),
        server_name=tls_server_name or None,
    )
    if explicit:
        value, source = explicit.strip(), "--builder"
    elif env.get("BUILDKIT_HOST", "").strip():
        value, source = env["BUILDKIT_HOST"].strip(), "BUILDKIT_HOST"
    else:
        value, source = "docker://", "default"
    return _parse(value, source, tls, env)


def _opt_path(value: str | Path | None) -> Path | None:
    if value is None or str(value) == "":
        return None
    return Path(value).expanduser()


def _parse(
    value: str, source: str, tls: TlsOptions, env: Mapping[str, str]
) -> BuilderAddress:
    if value in ("docker", "docker://"):
        docker_host = env.get("DOCKER_HOST", "").strip() or DEFAULT_DOCKER_HOST
        # A bad DOCKER_HOST is the env var's fault, not the --builder value's.
        host_source = "DOCKER_HOST" if env.get("DOCKER_HOST", "").strip() else source
        return _docker(docker_host, host_source, tls, env)
    if value.startswith("docker://"):
        return _docker(value[len("docker://") :], source, tls, env)
    if value.startswith("unix://"):
        _reject_tls_for_unix(tls, value)
        return BuilderAddress(kind="unix", target=_unix_path(value, source))
    if value.startswith("tcp://"):
        return _buildkitd_tcp(_host_port(value, source), tls)
    raise _bad(value, source)


def _docker(
    docker_host: str, source: str, tls: TlsOptions, env: Mapping[str, str]
) -> BuilderAddress:
    if docker_host.startswith("unix://"):
        _reject_tls_for_unix(tls, docker_host)
        return BuilderAddress(
            kind="docker", target=f"unix://{_unix_path(docker_host, source)}"
        )
    if docker_host.startswith("tcp://"):
        target = f"tcp://{_host_port(docker_host, source)}"
        if tls.given:
            return _with_tls(BuilderAddress(kind="docker", target=target), tls)
        return _docker_env_tls(target, env)
    raise _bad(
        docker_host if source == "DOCKER_HOST" else f"docker://{docker_host}", source
    )


def _docker_env_tls(target: str, env: Mapping[str, str]) -> BuilderAddress:
    """Mirror the docker CLI: DOCKER_TLS_VERIFY turns on verified TLS, DOCKER_CERT_PATH holds the files."""
    verify = bool(env.get("DOCKER_TLS_VERIFY", ""))
    cert_path = env.get("DOCKER_CERT_PATH", "")
    if not verify and not cert_path:
        return BuilderAddress(kind="docker", target=target)
    cert_dir = Path(cert_path or "~/.docker").expanduser()
    ca, cert, key = cert_dir / "ca.pem", cert_dir / "cert.pem", cert_dir / "key.pem"
    if verify and not ca.is_file():
        raise UsageError(
            f"DOCKER_TLS_VERIFY is set but {ca} does not exist; set DOCKER_CERT_PATH to the directory with ca.pem, cert.pem, key.pem"
        )
    has_client_cert = cert.is_file() and key.is_file()
    return BuilderAddress(
        kind="docker",
        target=target,
        tls_ca=ca if ca.is_file() else None,
        tls_cert=cert if has_client_cert else None,
        tls_key=key if has_client_cert else None,
        tls_verify=verify,
        use_tls=True,
    )


def _buildkitd_tcp(host_port: str, tls: TlsOptions) -> BuilderAddress:
    address = BuilderAddress(kind="tcp", target=host_port)
    return _with_tls(address, tls) if tls.given else address


def _with_tls(address: BuilderAddress, tls: TlsOptions) -> BuilderAddress:
    if (tls.cert is None) != (tls.key is None):
        raise UsageError(
            "--tlscert and --tlskey must be given together (the client certificate and its key)"
        )
    for flag, path in (
        ("--tlscacert", tls.ca),
        ("--tlscert", tls.cert),
        ("--tlskey", tls.key),
    ):
        if path is not None and not path.is_file():
            raise UsageError(f"{flag} {path}: no such file")
    return BuilderAddress(
        kind=address.kind,
        target=address.target,
        tls_ca=tls.ca,
        tls_cert=tls.cert,
        tls_key=tls.key,
        tls_server_name=tls.server_name,
        use_tls=True,
    )


def _reject_tls_for_unix(tls: TlsOptions, value: str) -> None:
    if tls.given:
        raise UsageError(f"TLS options apply only to tcp:// builders, not {value}")


def _unix_path(value: str, source: str) -> str:
    path = value[len("unix://") :]
    # Only absolute paths: "unix://relative" is ambiguous (host or path?), so refuse it.
    if not path.startswith("/") or path == "/":
        raise _bad(
            value,
            source,
            hint="unix:// needs an absolute path, e.g. unix:///run/buildkit/buildkitd.sock",
        )
    return path


def _host_port(value: str, source: str) -> str:
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise _bad(value, source) from None
    if (
        not parts.hostname
        or port is None
        or parts.path not in ("", "/")
        or parts.query
        or parts.username
    ):
        raise _bad(
            value, source, hint="tcp:// needs HOST:PORT, e.g. tcp://127.0.0.1:1234"
        )
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{port}"


def _bad(value: str, source: str, hint: str | None = None) -> UsageError:
    origin = "" if source == "default" else f" (from {source})"
    extra = f"; {hint}" if hint else ""
    return UsageError(
        f"unsupported builder address {value!r}{origin}{extra}; valid forms: {VALID_FORMS}"
    )
