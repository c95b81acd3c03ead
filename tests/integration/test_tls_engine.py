"""A Docker Engine behind mutual TLS (``dockerd --tlsverify -H tcp://127.0.0.1:23760``), reached as
``docker://tcp://…`` with ``--tlscacert/--tlscert/--tlskey`` and through ``DOCKER_HOST`` /
``DOCKER_TLS_VERIFY`` / ``DOCKER_CERT_PATH`` as docker's own CLI reads them.

The engine and its certificates come from .ci/start-tls-dockerd.sh. A solve of
examples/graphs/hello.py takes every path to the engine: Engine API reads (the base image),
the ``/grpc`` relay, the ``/session`` attach (the local context) and the image load. One bake
and two builds of the whole recipe (the loopback torch and Miniconda stand-ins) add bake's
image size and the up-to-date check, both Engine API reads.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

import pytest

from tests.conftest import IN_CI
from tests.integration.conftest import Mirror
from tests.integration.helpers import llbgen
from tests.integration.test_bake import bake_file, summary
from tests.integration.test_image_build import spec_flags

pytestmark = pytest.mark.integration

TLS_SOCKET = "/var/run/llbgen-tls/docker.sock"
TLS_PORT = 23760
ENGINE = f"tcp://127.0.0.1:{TLS_PORT}"
CERTS = Path("/var/lib/llbgen-tls/certs")
DOCKER_ADMIN = ["docker", "-H", f"unix://{TLS_SOCKET}"]  # the engine's own socket, for checks only
HELLO = ["examples/graphs/hello.py:graph", "--local", "ctx=examples", "--progress", "plain"]
CLI_TIMEOUT = 600
RECIPE_TIMEOUT = 1800


def admin(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DOCKER_ADMIN, *args], capture_output=True, text=True, check=check, timeout=120)


@pytest.fixture(scope="module")
def tls_engine(base_image: str) -> str:
    """The TLS engine's address, with the test base image (or skip/fail)."""
    try:
        ok = (CERTS / "key.pem").is_file() and admin("info", check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    if not ok or admin("image", "inspect", base_image, check=False).returncode != 0:
        why = f"no TLS Docker Engine at {ENGINE} with {base_image} (run .ci/start-tls-dockerd.sh)"
        if IN_CI:
            pytest.fail(f"CI requires it: {why}")
        pytest.skip(why)
    return ENGINE


def tls_flags(certs: Path = CERTS, ca: Path | None = None) -> list[str]:
    return ["--tlscacert", str(ca or certs / "ca.pem"), "--tlscert", str(certs / "cert.pem"),
            "--tlskey", str(certs / "key.pem")]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "BUILDKIT_HOST"))}
    return {**env, **extra}


@pytest.fixture
def tag() -> str:
    name = f"llbgen-test/tls-hello:{secrets.token_hex(4)}"
    yield name
    admin("image", "rm", "-f", name, check=False)


def assert_hello_loaded(tag: str) -> None:
    """The image is in the TLS engine and runs there."""
    run = admin("run", "--rm", "--network", "none", tag, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "hello\n"


def assert_one_line_refusal(result: subprocess.CompletedProcess[str], *expected: str) -> str:
    message = result.stderr.strip()
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr
    assert len(message.splitlines()) == 1, message
    for text in expected:
        assert text in message, message
    return message


def test_solve_with_tls_flags(tls_engine: str, tag: str) -> None:
    result = llbgen("solve", *HELLO, "--builder", f"docker://{tls_engine}", *tls_flags(), "--tag", tag,
                    timeout=CLI_TIMEOUT, env=clean_env())
    assert result.returncode == 0, result.stderr[-3000:]
    assert_hello_loaded(tag)


def test_solve_with_docker_cli_environment(tls_engine: str, tag: str) -> None:
    env = clean_env(DOCKER_HOST=tls_engine, DOCKER_TLS_VERIFY="1", DOCKER_CERT_PATH=str(CERTS))
    result = llbgen("solve", *HELLO, "--tag", tag, timeout=CLI_TIMEOUT, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert_hello_loaded(tag)


@pytest.fixture(scope="module")
def foreign_certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A client certificate from a CA the engine does not trust (DOCKER_CERT_PATH layout)."""
    out = tmp_path_factory.mktemp("foreign-certs")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=out, check=True, capture_output=True, timeout=60)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=foreign-ca",
            "-keyout", "ca-key.pem", "-out", "ca.pem")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=foreign-client", "-keyout", "key.pem",
            "-out", "client.csr")
    openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
            "-days", "2", "-out", "cert.pem")
    return out


def test_a_foreign_client_certificate_is_a_one_line_refusal(tls_engine: str, foreign_certs: Path) -> None:
    result = llbgen("solve", *HELLO, "--builder", f"docker://{tls_engine}",
                    *tls_flags(foreign_certs, ca=CERTS / "ca.pem"), timeout=CLI_TIMEOUT, env=clean_env())
    assert_one_line_refusal(result, tls_engine, "client certificate", "--tlscert")


def test_an_engine_certificate_from_another_ca_is_a_one_line_refusal(tls_engine: str, foreign_certs: Path) -> None:
    result = llbgen("solve", *HELLO, "--builder", f"docker://{tls_engine}",
                    *tls_flags(CERTS, ca=foreign_certs / "ca.pem"), timeout=CLI_TIMEOUT, env=clean_env())
    assert_one_line_refusal(result, tls_engine, "--tlscacert")


def test_plain_http_to_the_tls_port_names_the_tls_flags(tls_engine: str) -> None:
    result = llbgen("solve", *HELLO, "--builder", f"docker://{tls_engine}", timeout=CLI_TIMEOUT, env=clean_env())
    message = assert_one_line_refusal(result, tls_engine, "--tlscacert/--tlscert/--tlskey")
    assert "standalone buildkitd" not in message


def test_plain_grpc_to_the_tls_port_names_the_tls_flags(tls_engine: str) -> None:
    """A plain-text gRPC client (a tcp:// builder without --tls*) on a TLS port."""
    result = llbgen("builder", "inspect", "--builder", tls_engine, timeout=CLI_TIMEOUT, env=clean_env())
    message = assert_one_line_refusal(result, f"BuildKit at {tls_engine} expects TLS; use --tlscacert/--tlscert/--tlskey")
    assert "is buildkitd running" not in message


@pytest.mark.timeout(2 * RECIPE_TIMEOUT + CLI_TIMEOUT)  # a cold recipe on a fresh engine, then two builds
def test_bake_and_build_the_recipe(tls_engine: str, mirror: Mirror, base_image: str, tmp_path: Path) -> None:
    """bake with the --tls* flags (its summary's size comes from the engine), then ``llbgen build``
    with docker's environment variables: solved into a new tag, then up to date."""
    baked, built = (f"llbgen-test/tls-pytorch:{kind}-{secrets.token_hex(4)}" for kind in ("bake", "build"))
    try:
        path = bake_file(tmp_path / "bake.toml", mirror, base_image, "", base_image=f'"{base_image}"',
                         tag=f'"{baked}"')
        result = llbgen("bake", str(path), "--builder", f"docker://{tls_engine}", *tls_flags(), "--progress",
                        "plain", "--json", timeout=RECIPE_TIMEOUT, env=clean_env())
        row = summary(result)["default"]
        assert result.returncode == 0, result.stderr[-6000:]
        assert row["status"] == "ok" and row["builder"] == f"docker://{tls_engine}", row
        assert row["size_source"] == "engine" and row["size"] > 100_000_000, row
        assert admin("image", "inspect", "--format", "{{.Id}}", baked).stdout.strip() == row["digest"]

        env = clean_env(DOCKER_HOST=tls_engine, DOCKER_TLS_VERIFY="1", DOCKER_CERT_PATH=str(CERTS))
        build = ["build", *spec_flags(mirror, base_image, base_image), "--progress", "plain", "-t", built]
        first = llbgen(*build, timeout=RECIPE_TIMEOUT, env=env)
        assert first.returncode == 0, first.stderr[-6000:]
        assert "up to date" not in first.stderr
        again = llbgen(*build, timeout=CLI_TIMEOUT, env=env)
        assert again.returncode == 0, again.stderr[-3000:]
        assert f"up to date: {built} already holds the image" in again.stderr, again.stderr[-3000:]
    finally:
        admin("image", "rm", "-f", baked, built, check=False)
