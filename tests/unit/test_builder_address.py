"""Parsing --builder / BUILDKIT_HOST / DOCKER_HOST into a BuilderAddress."""

from __future__ import annotations

from pathlib import Path

import pytest

from llbgen.builder.address import BuilderAddress, resolve_builder_address
from llbgen.builder.endpoint import EngineEndpoint
from llbgen.errors import UsageError


def resolve(
    explicit: str | None = None, env: dict[str, str] | None = None, **tls
) -> BuilderAddress:
    return resolve_builder_address(explicit, env=env or {}, **tls)


def test_default_is_the_local_docker_engine() -> None:
    address = resolve()
    assert address == BuilderAddress(
        kind="docker", target="unix:///var/run/docker.sock"
    )
    assert str(address) == "docker://unix:///var/run/docker.sock"
    assert address.engine == EngineEndpoint("unix:///var/run/docker.sock")


@pytest.mark.parametrize("value", ["docker://", "docker"])
def test_bare_docker_uses_docker_host(value: str) -> None:
    address = resolve(value, env={"DOCKER_HOST": "unix:///run/user/1000/docker.sock"})
    assert address.kind == "docker"
    assert address.target == "unix:///run/user/1000/docker.sock"


def test_default_honors_docker_host_over_tcp() -> None:
    address = resolve(env={"DOCKER_HOST": "tcp://10.0.0.5:2375"})
    assert (address.kind, address.target, address.use_tls) == (
        "docker",
        "tcp://10.0.0.5:2375",
        False,
    )


@pytest.mark.parametrize(
    ("value", "kind", "target"),
    [
        ("docker://unix:///x.sock", "docker", "unix:///x.sock"),
        ("docker://tcp://h:2375", "docker", "tcp://h:2375"),
        ("unix:///run/buildkit/buildkitd.sock", "unix", "/run/buildkit/buildkitd.sock"),
        ("tcp://127.0.0.1:1234", "tcp", "127.0.0.1:1234"),
        ("tcp://buildkit.example:1234/", "tcp", "buildkit.example:1234"),
        ("tcp://[::1]:1234", "tcp", "[::1]:1234"),
    ],
)
def test_valid_forms(value: str, kind: str, target: str) -> None:
    address = resolve(value)
    assert (address.kind, address.target) == (kind, target)
    assert str(address) in (value, value.rstrip("/"))


def test_explicit_beats_buildkit_host_beats_docker() -> None:
    env = {"BUILDKIT_HOST": "tcp://bk:1234", "DOCKER_HOST": "unix:///d.sock"}
    assert resolve("unix:///explicit.sock", env=env).target == "/explicit.sock"
    assert resolve(None, env=env).target == "bk:1234"
    assert (
        resolve(None, env={"DOCKER_HOST": "unix:///d.sock"}).target == "unix:///d.sock"
    )
    # Empty values count as unset, like in the Go clients.
    assert resolve("", env={"BUILDKIT_HOST": "  "}).kind == "docker"


@pytest.mark.parametrize(
    "value",
    [
        "buildkitd.sock",
        "ssh://user@host",
        "docker-container://buildx_buildkit_default",
        "unix://relative.sock",
        "unix://",
        "tcp://host",
        "tcp://host:notaport",
        "tcp://:1234",
        "tcp://host:1234/path",
        "docker://ssh://host",
        "docker://host:2375",
        "npipe:////./pipe/docker_engine",
    ],
)
def test_bad_strings_are_usage_errors_listing_valid_forms(value: str) -> None:
    with pytest.raises(UsageError) as info:
        resolve(value)
    message = str(info.value)
    assert "\n" not in message
    assert (
        "valid forms:" in message
        and "docker://" in message
        and "tcp://HOST:PORT" in message
    )
    assert "--builder" in message


def test_bad_env_values_name_their_source() -> None:
    with pytest.raises(UsageError, match="BUILDKIT_HOST"):
        resolve(env={"BUILDKIT_HOST": "http://x"})
    with pytest.raises(UsageError, match="DOCKER_HOST"):
        resolve(env={"DOCKER_HOST": "ssh://me@engine"})


def test_tls_for_standalone_tcp(tmp_path: Path) -> None:
    ca, cert, key = (tmp_path / n for n in ("ca.pem", "cert.pem", "key.pem"))
    for path in (ca, cert, key):
        path.write_text("x")
    address = resolve(
        "tcp://bk:1234",
        tls_ca=ca,
        tls_cert=str(cert),
        tls_key=key,
        tls_server_name="buildkitd",
    )
    assert address.use_tls and address.tls_verify
    assert (address.tls_ca, address.tls_cert, address.tls_key) == (ca, cert, key)
    assert address.tls_server_name == "buildkitd"
    assert not resolve("tcp://bk:1234").use_tls
    assert address.engine is None  # a buildkitd, not a Docker Engine


def test_engine_endpoint_carries_the_tls_flags(tmp_path: Path) -> None:
    ca, cert, key = (tmp_path / n for n in ("ca.pem", "cert.pem", "key.pem"))
    for path in (ca, cert, key):
        path.write_text("x")
    address = resolve("docker://tcp://engine:2376", tls_ca=ca, tls_cert=cert, tls_key=key,
                      tls_server_name="engine.example")
    assert address.engine == EngineEndpoint("tcp://engine:2376", use_tls=True, tls_ca=ca, tls_cert=cert,
                                            tls_key=key, tls_server_name="engine.example", tls_verify=True)
    # Derived once: every client of the engine gets this same value.
    assert address.engine is address.engine


def test_tls_errors(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    with pytest.raises(UsageError, match="together"):
        resolve("tcp://bk:1234", tls_cert=cert)
    with pytest.raises(UsageError, match="no such file"):
        resolve("tcp://bk:1234", tls_ca=tmp_path / "missing.pem")
    with pytest.raises(UsageError, match="only to tcp://"):
        resolve("unix:///run/buildkit/buildkitd.sock", tls_ca=cert)


def test_docker_tls_from_environment(tmp_path: Path) -> None:
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_text("x")
    env = {
        "DOCKER_HOST": "tcp://engine:2376",
        "DOCKER_TLS_VERIFY": "1",
        "DOCKER_CERT_PATH": str(tmp_path),
    }
    address = resolve(env=env)
    assert (address.kind, address.target) == ("docker", "tcp://engine:2376")
    assert address.use_tls and address.tls_verify
    assert address.tls_ca == tmp_path / "ca.pem"
    assert (
        address.tls_cert == tmp_path / "cert.pem"
        and address.tls_key == tmp_path / "key.pem"
    )

    # DOCKER_CERT_PATH alone: encrypted but unverified, like the docker CLI.
    unverified = resolve(
        env={"DOCKER_HOST": "tcp://engine:2376", "DOCKER_CERT_PATH": str(tmp_path)}
    )
    assert unverified.use_tls and not unverified.tls_verify
    assert address.engine == EngineEndpoint("tcp://engine:2376", use_tls=True, tls_ca=tmp_path / "ca.pem",
                                            tls_cert=tmp_path / "cert.pem", tls_key=tmp_path / "key.pem")
    assert unverified.engine is not None and not unverified.engine.tls_verify

    # TLS env vars do not apply to a unix socket engine.
    assert not resolve(
        env={"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(tmp_path)}
    ).use_tls


def test_docker_tls_verify_without_ca_is_a_usage_error(tmp_path: Path) -> None:
    env = {
        "DOCKER_HOST": "tcp://engine:2376",
        "DOCKER_TLS_VERIFY": "1",
        "DOCKER_CERT_PATH": str(tmp_path),
    }
    with pytest.raises(UsageError, match="DOCKER_CERT_PATH"):
        resolve(env=env)


def test_unreadable_tls_files_are_one_line_usage_errors(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(UsageError, match="not a PEM CA certificate"):
        _ = EngineEndpoint("tcp://engine:2376", use_tls=True, tls_ca=garbage).ssl_context
    with pytest.raises(UsageError, match="cannot load the client certificate"):
        _ = EngineEndpoint("tcp://engine:2376", use_tls=True, tls_cert=garbage, tls_key=garbage).ssl_context
