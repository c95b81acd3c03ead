"""Mirrors behind a login, given as ``http://user:password@host/...``, for real.

A loopback PEP 503 index that answers 401 without HTTP basic auth serves one small wheel.
The spec's ``--pip-index-url`` carries the login; the python stage (the stand-in
Miniconda installer, which writes pip.conf) and the jupyter stage's pip step — the very
``Step`` and ``run_step`` of ``llbgen build``, with a probe package in place of Jupyter's —
are solved on the real engine with the session secrets ``StageContext.secrets()`` gives.

The install succeeding proves the login reached pip (the index refuses everything else);
then the password must be in no layer, the image config (labels), the history, and no
blob of ``docker save``; pip.conf and the label keep the URL without it.

The same for apt: a loopback Debian mirror that forwards to deb.debian.org only requests
with the login, and the os stage's own apt step (installing one package instead of the
usual set) with ``--apt-mirror`` carrying the login.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import secrets
import threading
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from llbgen.builder.client import Builder
from llbgen.builder.options import Output
from llbgen.builder.solve import SolveOptions
from llbgen.spec import load_spec
from stages import JupyterStage, OsStage, PythonStage, StageContext
from stages.context import PLATFORM
from stages.plan import SPEC_LABEL, with_image_config
from stages.python import PIP_CONF, PREFIX
from tests.integration.conftest import Mirror
from tests.integration.engine_helpers import docker, inspect_image, oci_blobs, run_in

pytestmark = pytest.mark.integration

PROJECT = "llbgen-login-probe"
MODULE = "llbgen_login_probe"
USER = "probe"


def probe_wheel() -> tuple[str, bytes]:
    """A pure-Python wheel whose module says it was installed."""
    name = f"{MODULE}-1.0-py3-none-any.whl"
    files = {
        f"{MODULE}/__init__.py": b'INSTALLED = "yes"\n',
        f"{MODULE}-1.0.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {PROJECT}\nVersion: 1.0\n".encode(),
        f"{MODULE}-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: llbgen-test\nRoot-Is-Purelib: true\n"
                                          b"Tag: py3-none-any\n",
    }
    record = "".join(
        f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}\n"
        for path, data in files.items()) + f"{MODULE}-1.0.dist-info/RECORD,,\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, data in [*files.items(), (f"{MODULE}-1.0.dist-info/RECORD", record.encode())]:
            archive.writestr(path, data)
    return name, buffer.getvalue()


class LoginServer:
    """An HTTP server on 127.0.0.1 answering only requests with the right basic auth (401 for the rest)."""

    def __init__(self, password: str) -> None:
        self.expected = "Basic " + base64.b64encode(f"{USER}:{password}".encode()).decode()
        self.requests: list[tuple[str, bool]] = []  # (path, authorized)
        index = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                authorized = self.headers.get("Authorization") == index.expected
                index.requests.append((self.path, authorized))
                if not authorized:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="llbgen-test"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body, kind = index.page(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def page(self, path: str) -> tuple[bytes | None, str]:
        raise NotImplementedError

    @property
    def port(self) -> int:
        return self.server.server_address[1]


class LoginIndex(LoginServer):
    """A PEP 503 index serving one wheel."""

    def __init__(self, password: str) -> None:
        self.wheel_name, self.wheel = probe_wheel()
        super().__init__(password)

    def page(self, path: str) -> tuple[bytes | None, str]:
        if path.rstrip("/") == f"/simple/{PROJECT}":
            sha = hashlib.sha256(self.wheel).hexdigest()
            return (f'<html><body><a href="/files/{self.wheel_name}#sha256={sha}">{self.wheel_name}</a>'
                    "</body></html>\n").encode(), "text/html"
        if path == f"/files/{self.wheel_name}":
            return self.wheel, "application/octet-stream"
        return None, "text/plain"


class LoginDebianMirror(LoginServer):
    """``/debian/...`` forwarded to deb.debian.org (which this machine reaches directly over http)."""

    def page(self, path: str) -> tuple[bytes | None, str]:
        if not path.startswith("/debian/"):
            return None, "text/plain"
        try:
            with urllib.request.urlopen(f"http://deb.debian.org{path}", timeout=120) as reply:
                return reply.read(), reply.headers.get("Content-Type", "application/octet-stream")
        except urllib.error.HTTPError:
            return None, "text/plain"


def _serving(server: LoginServer) -> Iterator[LoginServer]:
    server.thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()


@pytest.fixture
def password() -> str:
    return "pw-" + secrets.token_hex(12)


@pytest.fixture
def login_index(password: str) -> Iterator[tuple[LoginServer, str]]:
    for server in _serving(LoginIndex(password)):
        yield server, password


@pytest.fixture
def login_debian(password: str) -> Iterator[tuple[LoginServer, str]]:
    for server in _serving(LoginDebianMirror(password)):
        yield server, password


def assert_password_nowhere(tag: str, password: str, tmp_path: Path, scanned: str) -> None:
    """Not in the config (labels), the history, any blob of ``docker save`` (whose layers hold ``scanned``), any file."""
    assert password not in json.dumps(inspect_image(tag))
    history = docker("history", "--no-trunc", "--format", "{{json .}}", tag).stdout
    assert password not in history
    saved = tmp_path / "image.tar"
    docker("save", "-o", str(saved), tag)
    blobs = list(oci_blobs(saved))
    assert any(scanned.encode() in blob for blob in blobs)  # the layers were scanned
    assert not [blob[:80] for blob in blobs if password.encode() in blob]
    # Nor anywhere in the container's files (a cache, a log, a login file left behind).
    assert run_in(tag, f"grep -rIl -- {password} / --exclude-dir=proc --exclude-dir=sys || true").strip() == ""


def test_a_pip_index_login_reaches_pip_and_nothing_else(docker_engine: str, base_image: str, mirror: Mirror,
                                                        login_index: tuple[LoginServer, str], tmp_path: Path):
    index, password = login_index
    with pytest.raises(urllib.error.HTTPError) as refused:  # the index really wants the login
        urllib.request.urlopen(f"http://127.0.0.1:{index.port}/simple/{PROJECT}/", timeout=5)
    assert refused.value.code == 401
    resolved = load_spec(None, {
        "torch": "2.13.0", "cpu": True, "python": "3.11", "torchvision": "none", "torchaudio": "none",
        "base_image": base_image, "builder_image": base_image,
        "miniconda_installer": mirror.installer.name, "miniconda_sha256": mirror.installer.sha256,
        "mirrors.miniconda_url": mirror.miniconda_url,
        "mirrors.pip_index_url": f"http://{USER}:{password}@127.0.0.1:{index.port}/simple",
    })
    tag = f"llbgen-test/mirror-login:{secrets.token_hex(4)}"
    with Builder.connect(f"docker://{docker_engine}") as builder:
        base = builder.resolve(base_image, platform=PLATFORM)
        ctx = StageContext.create(resolved, base=base, builder=base, image_tag=tag, network="host")
        python = PythonStage.from_context(ctx).build(ctx, ctx.builder)
        # The jupyter stage's own pip step, with the probe package in place of Jupyter's.
        jupyter = dataclasses.replace(JupyterStage.from_context(ctx), packages=(PROJECT,), numpy=None)
        assert jupyter.netrc
        image = with_image_config(jupyter.build(ctx, python), ctx)
        builder.solve(image, SolveOptions(outputs=[Output("moby", {"name": tag})], secrets=ctx.secrets(),
                                          entitlements=["network.host"], progress="quiet"))
    try:
        assert (f"/simple/{PROJECT}/", True) in index.requests
        assert run_in(tag, f"{PREFIX}/bin/python -c 'import {MODULE}; print({MODULE}.INSTALLED)'").strip() == "yes"
        pip_conf = run_in(tag, f"cat {PIP_CONF}")
        assert f"index-url = http://127.0.0.1:{index.port}/simple" in pip_conf and password not in pip_conf
        label = json.loads(inspect_image(tag)["Config"]["Labels"][SPEC_LABEL])
        assert label["spec"]["mirrors"]["pip_index_url"] == f"http://127.0.0.1:{index.port}/simple"
        assert "pip install" in docker("history", "--no-trunc", "--format", "{{json .}}", tag).stdout
        assert_password_nowhere(tag, password, tmp_path, scanned=f"{MODULE}/__init__.py")
    finally:
        docker("image", "rm", tag, check=False)


def test_an_apt_mirror_login_reaches_apt_and_nothing_else(docker_engine: str, base_image: str,
                                                          login_debian: tuple[LoginServer, str], tmp_path: Path):
    mirror, password = login_debian
    mirror_url = f"http://127.0.0.1:{mirror.port}/debian"
    resolved = load_spec(None, {
        "torch": "2.13.0", "cpu": True, "python": "3.11", "torchvision": "none", "torchaudio": "none",
        "base_image": base_image, "builder_image": base_image,
        "mirrors.apt": f"http://{USER}:{password}@127.0.0.1:{mirror.port}/debian",
    })
    tag = f"llbgen-test/mirror-login-apt:{secrets.token_hex(4)}"
    with Builder.connect(f"docker://{docker_engine}") as builder:
        base = builder.resolve(base_image, platform=PLATFORM)
        ctx = StageContext.create(resolved, base=base, builder=base, image_tag=tag, network="host")
        # The os stage's own apt step, with two small packages (its locale step needs locales) for the usual set.
        os_stage = dataclasses.replace(OsStage.from_context(ctx), packages=("locales", "tini"))
        assert os_stage.apt_login
        image = with_image_config(os_stage.build(ctx, ctx.base), ctx)
        builder.solve(image, SolveOptions(outputs=[Output("moby", {"name": tag})], secrets=ctx.secrets(),
                                          entitlements=["network.host"], progress="quiet"))
    try:
        # apt update read the index through the mirror (the .debs may come from apt's cache mount).
        assert ("/debian/dists/bookworm/InRelease", True) in mirror.requests
        assert run_in(tag, "tini --version").startswith("tini version")
        sources = run_in(tag, "cat /etc/apt/sources.list")
        assert f"deb {mirror_url}/ bookworm main" in sources and password not in sources
        assert_password_nowhere(tag, password, tmp_path, scanned="usr/bin/tini")
    finally:
        docker("image", "rm", tag, check=False)
