"""DockerAuthProvider: docker config.json parsing, credential helpers, the Auth service."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import grpc
import pytest

from llbgen._proto.session import auth_pb2, auth_pb2_grpc
from llbgen.builder.session import DockerAuthProvider, Session
from llbgen.builder.session.auth import CredentialHelperError, Credentials, docker_config_path
from llbgen.errors import UsageError

# A docker-credential-helpers compatible helper: answers from a JSON table, logs each call.
HELPER = """#!/bin/sh
server=$(cat)
echo "$server" >> "{log}"
case "$server" in
  helped.example.com) echo '{{"ServerURL":"helped.example.com","Username":"helper-user","Secret":"helper-pass"}}' ;;
  https://index.docker.io/v1/) echo '{{"ServerURL":"https://index.docker.io/v1/","Username":"<token>","Secret":"hub-identity-token"}}' ;;
  broken.example.com) echo "keychain is locked"; exit 1 ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
"""


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
def helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Install docker-credential-llbgentest on PATH; returns the call log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "helper.log"
    script = bin_dir / "docker-credential-llbgentest"
    script.write_text(HELPER.format(log=log))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def _config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: object) -> Path:
    config_dir = tmp_path / "dockercfg"
    config_dir.mkdir(exist_ok=True)
    (config_dir / "config.json").write_text(data if isinstance(data, str) else json.dumps(data))
    monkeypatch.setenv("DOCKER_CONFIG", str(config_dir))
    return config_dir / "config.json"


def test_config_path_follows_docker_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    assert docker_config_path() == tmp_path / "config.json"
    monkeypatch.delenv("DOCKER_CONFIG")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert docker_config_path() == tmp_path / ".docker" / "config.json"


def test_auths_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _config(
        tmp_path,
        monkeypatch,
        {
            "auths": {
                "127.0.0.1:5000": {"auth": _b64("alice:pa:ss")},
                "https://legacy.example.com/v1/": {"auth": _b64("bob:pw")},
                "https://index.docker.io/v1/": {"auth": _b64("hubuser:hubpass")},
                "token.example.com": {"auth": _b64("ignored:ignored"), "identitytoken": "id-token"},
                "plain.example.com": {"username": "carol", "password": "pw3"},
                "empty.example.com": {},
            }
        },
    )
    provider = DockerAuthProvider()
    assert provider.credentials("127.0.0.1:5000") == Credentials("alice", "pa:ss")
    assert provider.credentials("legacy.example.com") == Credentials("bob", "pw")
    # The daemon asks for Docker Hub's registry host; the CLI stores it under the v1 URL.
    assert provider.credentials("registry-1.docker.io") == Credentials("hubuser", "hubpass")
    assert provider.credentials("docker.io") == Credentials("hubuser", "hubpass")
    assert provider.credentials("token.example.com") == Credentials("", "id-token")
    assert provider.credentials("plain.example.com") == Credentials("carol", "pw3")
    assert provider.credentials("empty.example.com") == Credentials()
    assert provider.credentials("unknown.example.com") == Credentials()


def test_missing_or_empty_config_means_anonymous(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "nowhere"))
    assert DockerAuthProvider().credentials("registry-1.docker.io") == Credentials()
    _config(tmp_path, monkeypatch, "")
    assert DockerAuthProvider().credentials("x") == Credentials()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('["a"]', "not a Docker CLI config"),
        (json.dumps({"auths": {"r.example.com": {"auth": "%%%"}}}), "not base64"),
        (json.dumps({"auths": {"r.example.com": {"auth": _b64("nocolon")}}}), "not user:password"),
    ],
)
def test_broken_config_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str, message: str) -> None:
    _config(tmp_path, monkeypatch, content)
    with pytest.raises(UsageError, match=message) as info:
        DockerAuthProvider()
    assert "\n" not in str(info.value)


def test_cred_helpers_per_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, helper: Path) -> None:
    _config(
        tmp_path,
        monkeypatch,
        {
            "auths": {"helped.example.com": {"auth": _b64("file-user:file-pass")}, "other.example.com": {"auth": _b64("o:p")}},
            "credHelpers": {"helped.example.com": "llbgentest", "https://index.docker.io/v1/": "llbgentest", "gone.example.com": "llbgentest"},
        },
    )
    provider = DockerAuthProvider()
    assert provider.credentials("helped.example.com") == Credentials("helper-user", "helper-pass")
    # "<token>" as user name means the secret is an identity token.
    assert provider.credentials("registry-1.docker.io") == Credentials("", "hub-identity-token")
    # The helper said "not found": anonymous, no fallback to auths (docker/cli does the same).
    assert provider.credentials("gone.example.com") == Credentials()
    # Hosts without a helper still use auths.
    assert provider.credentials("other.example.com") == Credentials("o", "p")
    # Answers are cached: a second ask does not run the helper again.
    provider.credentials("helped.example.com")
    assert helper.read_text().split() == ["helped.example.com", "https://index.docker.io/v1/", "gone.example.com"]


def test_creds_store_covers_every_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, helper: Path) -> None:
    _config(tmp_path, monkeypatch, {"auths": {"https://index.docker.io/v1/": {}}, "credsStore": "llbgentest"})
    provider = DockerAuthProvider()
    assert provider.credentials("registry-1.docker.io") == Credentials("", "hub-identity-token")
    assert provider.credentials("helped.example.com") == Credentials("helper-user", "helper-pass")
    assert provider.credentials("nothing.example.com") == Credentials()


def test_failing_or_missing_helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, helper: Path) -> None:
    _config(tmp_path, monkeypatch, {"credHelpers": {"broken.example.com": "llbgentest", "absent.example.com": "no-such-helper"}})
    provider = DockerAuthProvider()
    with pytest.raises(CredentialHelperError, match="keychain is locked"):
        provider.credentials("broken.example.com")
    with pytest.raises(CredentialHelperError, match="docker-credential-no-such-helper .*not on PATH"):
        provider.credentials("absent.example.com")


def test_auth_service_over_grpc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, helper: Path) -> None:
    _config(
        tmp_path,
        monkeypatch,
        {"auths": {"127.0.0.1:5000": {"auth": _b64("alice:secret")}}, "credHelpers": {"broken.example.com": "llbgentest"}},
    )
    with Session(auth=DockerAuthProvider()) as session, grpc.insecure_channel(f"unix:{session.socket_path}") as channel:
        assert "/moby.filesync.v1.Auth/Credentials" in session.advertised_methods()
        stub = auth_pb2_grpc.AuthStub(channel)
        reply = stub.Credentials(auth_pb2.CredentialsRequest(Host="127.0.0.1:5000"), timeout=10)
        assert (reply.Username, reply.Secret) == ("alice", "secret")
        reply = stub.Credentials(auth_pb2.CredentialsRequest(Host="registry-1.docker.io"), timeout=10)
        assert (reply.Username, reply.Secret) == ("", "")
        with pytest.raises(grpc.RpcError) as info:
            stub.Credentials(auth_pb2.CredentialsRequest(Host="broken.example.com"), timeout=10)
        assert "keychain is locked" in info.value.details()
        # Without a token authority the daemon fetches registry tokens itself.
        for call, request in [
            (stub.GetTokenAuthority, auth_pb2.GetTokenAuthorityRequest(Host="127.0.0.1:5000")),
            (stub.FetchToken, auth_pb2.FetchTokenRequest(Host="127.0.0.1:5000")),
            (stub.VerifyTokenAuthority, auth_pb2.VerifyTokenAuthorityRequest(Host="127.0.0.1:5000")),
        ]:
            with pytest.raises(grpc.RpcError) as info:
                call(request, timeout=10)
            assert info.value.code() is grpc.StatusCode.UNIMPLEMENTED


def test_credentials_repr_hides_the_secret() -> None:
    assert "hunter2" not in repr(Credentials("u", "hunter2"))
