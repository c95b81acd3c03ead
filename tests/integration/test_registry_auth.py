"""Registry credentials for real: the session's Auth service against a registry that wants a login.

The registry on 127.0.0.1:5001 (.ci/setup-host.sh) is Debian's docker-registry with htpasswd
basic auth; its credentials are in /var/lib/llbgen-registry-auth (root only). The engine's
BuildKit asks llbgen's session for credentials, as it does for any private registry:

1. ``llbgen solve --push`` with the login in ``$DOCKER_CONFIG/config.json`` pushes; the
   manifest is there when asked with the same login.
2. Without a login the push fails: exit 1, one line naming the registry's refusal, no traceback.
3. A base image only that registry has (not in the engine's store) is resolved and pulled
   through the session with the login, and the build runs on it; without a login the resolve
   is refused before anything is built (one line, exit 2).
4. The same through a credential helper (``credHelpers``): a real executable speaking
   docker-credential-helpers' protocol on stdin/stdout.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import IN_CI
from tests.integration.helpers import llbgen

pytestmark = pytest.mark.integration

AUTH_REGISTRY = "127.0.0.1:5001"
AUTH_DIR = Path("/var/lib/llbgen-registry-auth")
TIMEOUT = 600


@pytest.fixture(scope="module")
def login(docker_engine: str) -> tuple[str, str]:
    """(username, password) of the registry on 127.0.0.1:5001, or skip/fail when it is not there."""
    try:
        urllib.request.urlopen(f"http://{AUTH_REGISTRY}/v2/", timeout=5)
        why = f"the registry on {AUTH_REGISTRY} answers without a login"
    except urllib.error.HTTPError as err:
        why = "" if err.code == 401 else f"the registry on {AUTH_REGISTRY} answered HTTP {err.code}"
    except OSError as err:
        why = f"no registry on {AUTH_REGISTRY} ({err}); run .ci/setup-host.sh"
    if not why and not (AUTH_DIR / "password").is_file():
        why = f"no credentials in {AUTH_DIR}; run .ci/setup-host.sh"
    if why:
        if IN_CI:
            pytest.fail(f"CI requires it: {why}")
        pytest.skip(why)
    return (AUTH_DIR / "username").read_text().strip(), (AUTH_DIR / "password").read_text().strip()


def docker_config(directory: Path, content: dict) -> dict[str, str]:
    """An environment whose DOCKER_CONFIG is ``directory`` holding ``content`` as config.json."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(content))
    return {**os.environ, "DOCKER_CONFIG": str(directory)}


def auths(user: str, password: str) -> dict:
    return {"auths": {AUTH_REGISTRY: {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}}}


def graph_file(path: Path, base: str, marker: str) -> str:
    path.write_text(
        "def graph(resolve):\n"
        f"    return resolve({base!r}).run('echo {marker} > /marker', name='write marker {marker}').root\n"
    )
    return f"{path}:graph"


def solve(graph: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return llbgen("solve", graph, "--progress", "plain", *args, timeout=TIMEOUT, env=env)


def manifest_exists(repository: str, tag: str, user: str, password: str) -> bool:
    request = urllib.request.Request(
        f"http://{AUTH_REGISTRY}/v2/{repository}/manifests/{tag}", method="HEAD",
        headers={"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode(),
                 "Accept": "application/vnd.oci.image.manifest.v1+json, "
                           "application/vnd.docker.distribution.manifest.v2+json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status == 200
    except urllib.error.HTTPError as err:
        if err.code == 404:
            return False
        raise


@pytest.fixture(scope="module")
def pushed(tmp_path_factory: pytest.TempPathFactory, login: tuple[str, str], base_image: str) -> str:
    """An image pushed to the login registry by ``llbgen solve --push`` with config.json credentials."""
    user, password = login
    work = tmp_path_factory.mktemp("auth")
    marker = secrets.token_hex(6)
    ref = f"{AUTH_REGISTRY}/llbgen-test/auth:{marker}"
    env = docker_config(work / "docker", auths(user, password))
    result = solve(graph_file(work / "graph.py", base_image, marker), env, "-t", ref, "--push")
    assert result.returncode == 0, result.stderr[-4000:]
    assert manifest_exists("llbgen-test/auth", marker, user, password)
    subprocess.run(["docker", "image", "rm", ref], capture_output=True)  # only the registry has it now
    return ref


def test_push_with_login_from_docker_config(pushed: str) -> None:
    assert pushed.startswith(f"{AUTH_REGISTRY}/")


def test_push_without_login_fails_in_one_line(tmp_path: Path, login: tuple[str, str], base_image: str) -> None:
    user, password = login
    marker = secrets.token_hex(6)
    env = docker_config(tmp_path / "docker", {})
    result = solve(graph_file(tmp_path / "graph.py", base_image, marker), env,
                   "-t", f"{AUTH_REGISTRY}/llbgen-test/auth:{marker}", "--push")
    assert result.returncode == 1, result.stderr[-4000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("llbgen: error")]
    assert len(errors) == 1, result.stderr[-4000:]
    assert "401" in errors[0] or "unauthorized" in errors[0].lower(), errors[0]
    assert "Traceback" not in result.stderr
    assert not manifest_exists("llbgen-test/auth", marker, user, password)


def test_base_image_pulled_with_login(tmp_path: Path, pushed: str, login: tuple[str, str]) -> None:
    """The base is not in the engine's store: resolved and pulled through the session's credentials."""
    user, password = login
    marker = secrets.token_hex(6)
    tag = f"llbgen-test/auth-built:{marker}"
    env = docker_config(tmp_path / "docker", auths(user, password))
    result = solve(graph_file(tmp_path / "graph.py", pushed, marker), env, "-t", tag)
    assert result.returncode == 0, result.stderr[-4000:]
    out = subprocess.run(["docker", "run", "--rm", tag, "cat", "/marker"], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == marker
    subprocess.run(["docker", "image", "rm", tag], capture_output=True)

    anonymous = solve(graph_file(tmp_path / "graph2.py", pushed, secrets.token_hex(6)),
                      docker_config(tmp_path / "nobody", {}), "-t", f"{tag}-anonymous")
    # Refused while resolving the base, before anything is built: one line, exit 2.
    assert anonymous.returncode == 2, anonymous.stderr[-4000:]
    assert anonymous.stderr.count("llbgen: error") == 1 and "401" in anonymous.stderr, anonymous.stderr[-4000:]
    assert "Traceback" not in anonymous.stderr


def test_base_image_pulled_through_a_credential_helper(tmp_path: Path, pushed: str, login: tuple[str, str]) -> None:
    user, password = login
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    asked = tmp_path / "asked"
    helper = bin_dir / "docker-credential-llbgentest"
    helper.write_text(
        "#!/bin/sh\n"
        '[ "$1" = get ] || exit 1\n'
        f'read -r server; echo "$server" >> {asked}\n'
        f'printf \'{{"ServerURL":"%s","Username":"{user}","Secret":"{password}"}}\' "$server"\n'
    )
    helper.chmod(0o755)
    env = docker_config(tmp_path / "docker", {"credHelpers": {AUTH_REGISTRY: "llbgentest"}})
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    marker = secrets.token_hex(6)
    tag = f"llbgen-test/auth-helper:{marker}"
    result = solve(graph_file(tmp_path / "graph.py", pushed, marker), env, "-t", tag)
    assert result.returncode == 0, result.stderr[-4000:]
    assert AUTH_REGISTRY in asked.read_text()
    subprocess.run(["docker", "image", "rm", tag], capture_output=True)
