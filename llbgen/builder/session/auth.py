"""Registry credentials for the daemon, read from the user's Docker CLI config.

Follows docker/cli (configfile.GetAuthConfig, credentials file/native stores)
as BuildKit's own ``authprovider.LoadAuthConfig`` uses it:

* the daemon asks for a registry host (``registry-1.docker.io`` for Docker Hub,
  whose config key is ``https://index.docker.io/v1/``);
* a host with a ``credHelpers`` entry, or any host when ``credsStore`` is set,
  is answered by ``docker-credential-<name> get`` alone ("not found" → anonymous);
* otherwise ``auths``: exact key first, then keys whose hostname matches
  (``https://host/v1/`` style legacy keys), ``auth`` = base64 ``user:password``,
  and an ``identitytoken`` wins over the password.

Only ``Credentials`` is served. GetTokenAuthority/FetchToken answer UNIMPLEMENTED,
which makes the daemon fetch registry tokens itself with these credentials
(buildkit util/resolver/authorizer.go) — no token signing keys to manage here.
Secrets are never logged and never appear in error messages.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import grpc

from llbgen._proto.session import auth_pb2, auth_pb2_grpc
from llbgen.errors import UsageError

log = logging.getLogger(__name__)

DOCKER_HUB_HOST = "registry-1.docker.io"
DOCKER_HUB_KEY = "https://index.docker.io/v1/"
_HUB_ALIASES = {DOCKER_HUB_HOST, "docker.io", "index.docker.io"}
TOKEN_USERNAME = "<token>"  # a helper's way of saying "Secret is an identity token"
NOT_FOUND_MESSAGE = "credentials not found in native keychain"
HELPER_TIMEOUT = 60.0  # BuildKit gives the whole session call 60 s
# BuildKit's default cache lifetime: short enough for 5-minute cloud tokens.
CACHE_SECONDS = 4 * 60 + 50


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    secret: str = ""

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, secret={'***' if self.secret else ''!r})"


class CredentialHelperError(Exception):
    """A credential helper failed; the message never contains a secret."""


def docker_config_path() -> Path:
    """$DOCKER_CONFIG/config.json, else ~/.docker/config.json (docker/cli config.Dir)."""
    base = os.environ.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def config_key(host: str) -> str:
    """The config.json key the daemon's host name is stored under."""
    return DOCKER_HUB_KEY if host in _HUB_ALIASES else host


def convert_to_hostname(key: str) -> str:
    """docker/cli ConvertToHostname: ``https://host:port/v1/`` → ``host:port``."""
    if "://" in key:
        parts = urlsplit(key)
        if parts.hostname:
            return parts.netloc.rsplit("@", 1)[-1]
    for scheme in ("http://", "https://"):
        key = key.removeprefix(scheme)
    return key.split("/", 1)[0]


class DockerAuthProvider(auth_pb2_grpc.AuthServicer):
    """The session's Auth service, backed by a Docker CLI config.json.

    The file is read once, here, so a broken config fails before the build starts.
    """

    def __init__(self, config_path: Path | None = None):
        self.config_path = Path(config_path) if config_path is not None else docker_config_path()
        config = _load(self.config_path)
        # Decoded now, like docker/cli does on load: a bad "auth" is a config error, not a build error.
        self._auths: dict[str, Credentials] = {
            key: _from_auth_entry(key, entry, self.config_path) for key, entry in (config.get("auths") or {}).items()
        }
        self._creds_store: str = config.get("credsStore") or ""
        self._cred_helpers: dict[str, str] = config.get("credHelpers") or {}
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, Credentials]] = {}

    def credentials(self, host: str) -> Credentials:
        """What to answer the daemon for ``host``; empty means anonymous."""
        with self._lock:
            cached = self._cache.get(host)
            if cached and time.monotonic() - cached[0] < CACHE_SECONDS:
                return cached[1]
            creds = self._lookup(config_key(host))
            self._cache[host] = (time.monotonic(), creds)
            return creds

    def _lookup(self, key: str) -> Credentials:
        helper = self._cred_helpers.get(key) or self._creds_store
        if helper:
            return run_credential_helper(helper, key)
        creds = self._auths.get(key)
        if creds is None:
            creds = next((v for k, v in self._auths.items() if key == convert_to_hostname(k)), Credentials())
        return creds

    # --- gRPC ---------------------------------------------------------------

    def Credentials(self, request: auth_pb2.CredentialsRequest, context: grpc.ServicerContext) -> auth_pb2.CredentialsResponse:
        try:
            creds = self.credentials(request.Host)
        except CredentialHelperError as exc:
            context.abort(grpc.StatusCode.UNKNOWN, str(exc))
        log.debug("credentials for %s: %s", request.Host, "user " + creds.username if creds.username else ("token" if creds.secret else "anonymous"))
        return auth_pb2.CredentialsResponse(Username=creds.username, Secret=creds.secret)

    def FetchToken(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "the daemon fetches registry tokens itself")

    def GetTokenAuthority(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "no client-side token authority")

    def VerifyTokenAuthority(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "no client-side token authority")


def _load(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise UsageError(f"cannot read Docker config {path}: {exc.strerror or exc}") from None
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"Docker config {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("auths") or {}, dict) or not isinstance(data.get("credHelpers") or {}, dict):
        raise UsageError(f"Docker config {path} is not a Docker CLI config (expected an object with \"auths\")")
    return data


def _from_auth_entry(key: str, entry: object, path: Path) -> Credentials:
    if not isinstance(entry, dict):
        raise UsageError(f"Docker config {path}: the entry for {key} is not an object")
    token = entry.get("identitytoken") or ""
    if token:
        return Credentials(secret=token)
    username, password = entry.get("username") or "", entry.get("password") or ""
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(entry["auth"], validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise UsageError(f"Docker config {path}: the \"auth\" of {key} is not base64") from None
        username, sep, password = decoded.partition(":")
        if not sep or not username:
            raise UsageError(f"Docker config {path}: the \"auth\" of {key} is not user:password")
        password = password.strip("\x00")
    return Credentials(username=username, secret=password)


def run_credential_helper(name: str, server: str) -> Credentials:
    """``docker-credential-<name> get`` with the server on stdin (docker-credential-helpers protocol)."""
    program = f"docker-credential-{name}"
    exe = shutil.which(program)
    if exe is None:
        raise CredentialHelperError(f"{program} (from the Docker config) is not on PATH; install it or remove it from config.json")
    try:
        proc = subprocess.run([exe, "get"], input=server.encode(), capture_output=True, timeout=HELPER_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise CredentialHelperError(f"{program} get {server} did not answer within {HELPER_TIMEOUT:g}s") from None
    except OSError as exc:
        raise CredentialHelperError(f"cannot run {program}: {exc.strerror or exc}") from None
    out = proc.stdout.decode("utf-8", "replace").strip()
    if proc.returncode != 0:
        if out == NOT_FOUND_MESSAGE:
            return Credentials()
        # A failing helper prints its error on stdout; it is not a secret.
        reason = (out or proc.stderr.decode("utf-8", "replace").strip()).splitlines()
        raise CredentialHelperError(f"{program} get {server} failed: {reason[0] if reason else f'exit status {proc.returncode}'}")
    try:
        data = json.loads(out)
        username, secret = str(data.get("Username") or ""), str(data.get("Secret") or "")
    except (ValueError, AttributeError):
        raise CredentialHelperError(f"{program} get {server} printed something other than credentials JSON") from None
    if username == TOKEN_USERNAME:
        return Credentials(secret=secret)
    return Credentials(username=username, secret=secret)
