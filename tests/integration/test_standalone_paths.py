"""The standalone-buildkitd code paths (``unix://`` and ``tcp://`` with mTLS) against a real BuildKit.

No standalone buildkitd can run on the test machine, so the Docker Engine's own BuildKit
stands in for one: ``DockerGrpcRelay`` splices every connection made to a plain unix
socket onto an upgraded ``/grpc`` stream, which speaks exactly the gRPC API a buildkitd
serves on its socket. Addressed as ``unix://<relay socket>`` (or ``tcp://`` through the
TLS-terminating proxy below), llbgen takes every non-docker path: a plain gRPC channel,
the session attached with ``Control.Session`` (not dockerd's ``/session``), base images
resolved with the gateway's ``ResolveImageConfig`` (not the engine's image store), and
the daemon vanishing mid-build as seen by a client of a standalone daemon.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import secrets
import selectors
import socket
import ssl
import subprocess
import sys
import tarfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from llbgen import llb
from llbgen._proto.buildkit import control_pb2
from llbgen.builder import gateway
from llbgen.builder.address import resolve_builder_address
from llbgen.builder.client import Builder
from llbgen.builder.docker_relay import DockerGrpcRelay
from llbgen.builder.endpoint import EngineEndpoint
from llbgen.builder.options import Output
from llbgen.builder.session import Session
from llbgen.builder.solve import SolveOptions
from llbgen.errors import BuilderUnavailable, BuildFailed
from tests.integration.engine_helpers import docker, oci_blobs
from tests.integration.helpers import SlowSolve

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
LLBGEN = [sys.executable, "-m", "llbgen"]
# How long a client may take to notice that the daemon is gone.
DEATH_DEADLINE = 15.0


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def relay(docker_engine: str) -> Iterator[DockerGrpcRelay]:
    with DockerGrpcRelay(EngineEndpoint(docker_engine)) as r:
        yield r


@pytest.fixture(scope="module")
def unix_address(relay: DockerGrpcRelay) -> str:
    return f"unix://{relay.socket_path}"


@pytest.fixture(scope="module")
def registry_base(base_image: str, registry: str) -> str:
    """The base image in the loopback registry: where a standalone buildkitd finds its bases.

    (A buildkitd has no Docker image store; it resolves ``FROM`` images in a registry.)
    """
    ref = f"{registry}/llbgen-test/debian:bookworm"
    docker("tag", base_image, ref)
    docker("push", ref)
    return ref


def registry_digest(ref: str) -> str:
    """The digest the registry serves ``ref`` under (what BuildKit resolves it to)."""
    host, _, rest = ref.partition("/")
    repo, _, tag = rest.rpartition(":")
    accept = ", ".join([
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ])
    request = urllib.request.Request(f"http://{host}/v2/{repo}/manifests/{tag}", method="HEAD",
                                     headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=10) as reply:
        return reply.headers["Docker-Content-Digest"]


def quiet(**kwargs) -> SolveOptions:
    return SolveOptions(progress="quiet", **kwargs)


def llbgen_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("llbgen")}


# --------------------------------------------------------------------------- unix://


def test_inspect_cli_sees_a_unix_builder(unix_address: str) -> None:
    proc = subprocess.run([*LLBGEN, "builder", "inspect", "--builder", unix_address, "--json"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["kind"] == "unix"
    assert info["address"] == unix_address
    assert info["engine_version"] is None  # no Docker Engine API behind a buildkitd address
    assert info["workers"] and "linux/amd64" in info["workers"][0]["platforms"]
    # A real buildkitd gets the standalone capability profile (capabilities._profile for
    # kind unix/tcp). This endpoint is a Docker Engine's BuildKit, though, and that profile
    # overclaims: the engine registers no s3/azblob cache backends ("unknown cache exporter"
    # when asked), and with the classic store it has no MergeOp/DiffOp either. Its workers
    # carry moby's own label (org.mobyproject.buildkit.worker.moby.host-gateway-ip), which a
    # buildkitd never sets, so inspect now applies the engine's profile for its image store
    # whatever the address kind. The exporters the standalone profile lists (image, local,
    # tar, oci, docker) the containerd-store engine does have.
    assert any(k.startswith("org.mobyproject.buildkit.worker.moby.") for k in info["workers"][0]["labels"])
    assert info["image_store"] == "containerd"
    assert info["merge_op"] and info["diff_op"]
    assert {"image", "local", "tar", "oci", "docker"} <= set(info["exporters"])
    assert "s3" not in info["cache_exporters"] and "azblob" not in info["cache_exporters"]
    # The Debian-built engine's BuildKit reports only a placeholder version, and there is
    # no engine API to ask instead: the version is unknown, not made up.
    assert info["buildkit_version"] is None or info["buildkit_version"].startswith("v")


def test_solve_over_unix_with_gateway_resolve_session_secret_local_and_oci_export(
    unix_address: str, registry_base: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway_resolves: list[str] = []
    real_resolve = gateway.resolve_image_config_via_gateway

    def spy_resolve(conn, session, ref, *args, **kwargs):
        gateway_resolves.append(ref)
        return real_resolve(conn, session, ref, *args, **kwargs)

    attached: list[str] = []
    real_attach_control = Session.attach_control

    def spy_attach_control(self, control, *args, **kwargs):
        attached.append("Control.Session")
        return real_attach_control(self, control, *args, **kwargs)

    def no_docker_session(self, *args, **kwargs):
        raise AssertionError("a unix:// builder must not use the Docker Engine's /session")

    monkeypatch.setattr(gateway, "resolve_image_config_via_gateway", spy_resolve)
    monkeypatch.setattr(Session, "attach_control", spy_attach_control)
    monkeypatch.setattr(Session, "attach_docker", no_docker_session)

    ctx = tmp_path / "ctx"
    (ctx / "sub").mkdir(parents=True)
    (ctx / "sub" / "hello.txt").write_text("from the local context\n")
    (ctx / "skipped.txt").write_text("excluded\n")
    secret = "llbgen-standalone-secret-" + secrets.token_hex(12)
    secret_sha = hashlib.sha256(secret.encode()).hexdigest()
    marker = secrets.token_hex(6)
    name = f"docker.io/llbgen-test/standalone:{marker}"
    oci = tmp_path / "image.tar"

    with Builder.connect(unix_address) as builder:
        assert builder.address.kind == "unix" and builder.connection.engine is None
        base = builder.resolve(registry_base)
        identifier = base.output.vertex.identifier
        assert identifier.endswith("@" + registry_digest(registry_base)), identifier
        state = base.run(
            f'test "$(sha256sum < /run/secrets/tok | cut -d" " -f1)" = {secret_sha} '
            "&& cp /ctx/sub/hello.txt /hello && ! test -e /ctx/skipped.txt "
            f"&& echo {marker} > /marker",
            mounts=[llb.secret_mount("/run/secrets/tok", "tok"),
                    llb.bind("/ctx", llb.local("ctx", include=["sub/**"]), readonly=True)],
            name=f"standalone step {marker}",
        ).root.with_config(cmd=("cat", "/marker", "/hello"))
        result = builder.solve(state, quiet(outputs=[Output("oci", {"name": name}, oci)],
                                            secrets={"tok": secret.encode()}, local_dirs={"ctx": ctx}))

    assert set(gateway_resolves) == {registry_base}  # the gateway's ResolveImageConfig, not the engine's store
    assert attached == ["Control.Session", "Control.Session"]  # the resolve's build, then the solve
    assert result.image_digest and result.image_digest.startswith("sha256:")
    assert any(v.name == f"standalone step {marker}" and not v.cached for v in result.vertices)
    # FileSend wrote the tarball; the secret reached the step and nothing of it the image.
    for blob in oci_blobs(oci):
        assert secret.encode() not in blob
    loaded = docker("load", "-i", str(oci)).stdout
    assert f"llbgen-test/standalone:{marker}" in loaded
    out = docker("run", "--rm", f"llbgen-test/standalone:{marker}").stdout
    assert out == f"{marker}\nfrom the local context\n"
    docker("image", "rm", f"llbgen-test/standalone:{marker}", check=False)


# --------------------------------------------------------------------------- tcp:// + mTLS


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _make_ca(directory: Path, name: str) -> None:
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN=llbgen test {name}",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             cwd=directory)


def _make_leaf(directory: Path, name: str, ca: str, extensions: str, serial: int) -> None:
    (directory / f"{name}.ext").write_text(extensions)
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN=llbgen test {name}", cwd=directory)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
             "-set_serial", str(serial), "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem",
             cwd=directory)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA with a server cert (127.0.0.1/localhost) and a client cert; a second, unrelated CA
    with its own client cert. (The ``cryptography`` package is not installed: openssl CLI.)"""
    directory = tmp_path_factory.mktemp("pki")
    _make_ca(directory, "ca")
    _make_ca(directory, "other-ca")
    _make_leaf(directory, "server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
               "extendedKeyUsage=serverAuth\n", 2)
    _make_leaf(directory, "client", "ca", "extendedKeyUsage=clientAuth\n", 3)
    _make_leaf(directory, "stranger", "other-ca", "extendedKeyUsage=clientAuth\n", 4)
    return directory


class TlsProxy:
    """What ``buildkitd --addr tcp://… --tlscacert … --tlscert … --tlskey …`` puts in front of
    its gRPC server: TLS with a required client certificate from ``ca`` and ALPN ``h2``
    (grpc refuses a TLS server without it). Decrypted bytes go to ``upstream`` (a unix socket).
    """

    def __init__(self, upstream: str, pki: Path) -> None:
        self.upstream = upstream
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(pki / "server.pem", pki / "server.key")
        self.context.load_verify_locations(pki / "ca.pem")
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.context.set_alpn_protocols(["h2"])
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.handshake_errors: list[str] = []
        self._wake_r, self._wake_w = socket.socketpair()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._closed = False
        self._accept = threading.Thread(target=self._accept_loop, name="test-tls-proxy-accept", daemon=True)
        self._accept.start()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            live, threads = list(self._sockets), list(self._threads)
        self._wake_w.send(b"x")
        for sock in live:
            with contextlib.suppress(OSError, ValueError):
                sock.shutdown(socket.SHUT_RDWR)
        self._accept.join(10)
        for thread in threads:
            thread.join(10)
        for sock in (self.listener, self._wake_r, self._wake_w):
            sock.close()

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self.listener, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while True:
                ready = {key.fileobj for key, _ in selector.select()}
                if self._wake_r in ready:
                    return
                client, _ = self.listener.accept()
                thread = threading.Thread(target=self._serve, args=(client,), name="test-tls-proxy-conn",
                                          daemon=True)
                with self._lock:
                    if self._closed:
                        client.close()
                        return
                    self._sockets.add(client)
                    self._threads.add(thread)
                thread.start()

    def _serve(self, client: socket.socket) -> None:
        tls: ssl.SSLSocket | None = None
        upstream: socket.socket | None = None
        try:
            client.settimeout(10)
            try:
                tls = self.context.wrap_socket(client, server_side=True)
            except (ssl.SSLError, OSError) as err:
                self.handshake_errors.append(str(err))
                return
            tls.settimeout(None)
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.upstream)
            with self._lock:
                if self._closed:
                    return
                self._sockets.update((tls, upstream))
            _splice(tls, upstream)
        finally:
            for sock in (tls, upstream, client):
                if sock is not None:
                    with contextlib.suppress(OSError, ValueError):
                        sock.shutdown(socket.SHUT_RDWR)
                    sock.close()
            with self._lock:
                self._sockets.difference_update({tls, upstream, client})
                self._threads.discard(threading.current_thread())


def _splice(tls: ssl.SSLSocket, plain: socket.socket) -> None:
    """Both directions on one thread: an SSLSocket must not be used from two threads at once."""
    peer = {tls: plain, plain: tls}
    with selectors.DefaultSelector() as selector:
        selector.register(tls, selectors.EVENT_READ)
        selector.register(plain, selectors.EVENT_READ)
        while True:
            # Bytes already decrypted inside the SSLSocket are invisible to select().
            ready = [tls] if tls.pending() else [key.fileobj for key, _ in selector.select()]
            for source in ready:
                try:
                    data = source.recv(64 * 1024)
                    if not data:
                        return
                    peer[source].sendall(data)
                except (OSError, ValueError):
                    return


@pytest.fixture(scope="module")
def tls_proxy(relay: DockerGrpcRelay, pki: Path) -> Iterator[TlsProxy]:
    proxy = TlsProxy(relay.socket_path, pki)
    try:
        yield proxy
    finally:
        proxy.close()


def tcp_address(proxy: TlsProxy, pki: Path, *, ca: str = "ca", client: str | None = "client"):
    return resolve_builder_address(
        f"tcp://127.0.0.1:{proxy.port}",
        tls_ca=pki / f"{ca}.pem",
        tls_cert=pki / f"{client}.pem" if client else None,
        tls_key=pki / f"{client}.key" if client else None,
        env={},
    )


def test_mtls_tcp_builder_lists_workers_resolves_and_solves(tls_proxy: TlsProxy, pki: Path, registry_base: str,
                                                            tmp_path: Path) -> None:
    address = tcp_address(tls_proxy, pki)
    assert address.kind == "tcp" and address.use_tls
    marker = secrets.token_hex(6)
    out = tmp_path / "out.tar"
    with Builder.connect(address) as builder:
        workers = builder.connection.control.ListWorkers(control_pb2.ListWorkersRequest(), timeout=10)
        assert workers.record and any(p.OS == "linux" for p in workers.record[0].platforms)
        assert builder.info.kind == "tcp"
        # Gateway resolve and a solve whose session (Control.Session) and FileSend ride the TLS channel.
        base = builder.resolve(registry_base)
        assert "@sha256:" in base.output.vertex.identifier
        state = base.run(f"mkdir /out && echo {marker} > /out/m", name=f"tls step {marker}").root
        builder.solve(llb.scratch().file(llb.copy(state, "/out/m", "/m")), quiet(outputs=[Output("tar", {}, out)]))
    with tarfile.open(out) as archive:
        member = archive.extractfile("m")
        assert member is not None and member.read() == f"{marker}\n".encode()


def test_mtls_inspect_cli(tls_proxy: TlsProxy, pki: Path) -> None:
    proc = subprocess.run([*LLBGEN, "builder", "inspect", "--builder", f"tcp://127.0.0.1:{tls_proxy.port}",
                           "--tlscacert", str(pki / "ca.pem"), "--tlscert", str(pki / "client.pem"),
                           "--tlskey", str(pki / "client.key"), "--json"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["kind"] == "tcp"


@pytest.mark.parametrize(
    ("ca", "client", "reason"),
    [
        pytest.param("ca", None, "refusing the client certificate", id="no-client-cert"),
        pytest.param("ca", "stranger", "refusing the client certificate", id="client-cert-from-another-ca"),
        pytest.param("other-ca", "client", "certificate does not verify against --tlscacert", id="wrong-ca"),
    ],
)
def test_mtls_refusal_is_one_line_builder_unavailable(tls_proxy: TlsProxy, pki: Path, ca: str,
                                                      client: str | None, reason: str) -> None:
    address = tcp_address(tls_proxy, pki, ca=ca, client=client)
    started = time.monotonic()
    with pytest.raises(BuilderUnavailable) as err, Builder.connect(address):
        pass
    elapsed = time.monotonic() - started
    message = str(err.value)
    assert elapsed < 10, f"took {elapsed:.1f}s: {message}"
    assert "\n" not in message and f"tcp://127.0.0.1:{tls_proxy.port}" in message, message
    assert reason in message, message
    assert "--tlscacert/--tlscert/--tlskey" in message, message  # the hint names the TLS flags


def test_mtls_refusal_in_the_cli_is_one_line(tls_proxy: TlsProxy, pki: Path) -> None:
    proc = subprocess.run([*LLBGEN, "builder", "inspect", "--builder", f"tcp://127.0.0.1:{tls_proxy.port}",
                           "--tlscacert", str(pki / "ca.pem")],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("llbgen: error: ") and proc.stderr.count("\n") == 1, proc.stderr


# --------------------------------------------------------------------------- the daemon dies


class Watch(io.StringIO):
    """A progress stream that signals once ``needle`` has been written to it."""

    def __init__(self, needle: str) -> None:
        super().__init__()
        self.needle = needle
        self.seen = threading.Event()

    def write(self, text: str) -> int:
        written = super().write(text)
        if self.needle in self.getvalue():
            self.seen.set()
        return written


def slow_step(base: llb.State, marker: str) -> llb.State:
    # The output line is assembled by the shell, so the text watched for is not in the command.
    return base.run(["sh", "-c", f'echo "run""ning-{marker}"; sleep 120; echo finished-{marker}'],
                    name=f"slow {marker}").root


def wait_process_gone(marker: str, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if f"finished-{marker}" not in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout:
            return True
        time.sleep(0.5)
    return False


def test_daemon_vanishing_mid_build_fails_fast_with_one_line(docker_engine: str, registry_base: str,
                                                              tmp_path: Path) -> None:
    before = llbgen_threads()
    relay = DockerGrpcRelay(EngineEndpoint(docker_engine)).start()
    marker = secrets.token_hex(6)
    progress = Watch(f"running-{marker}")
    outcome: list[BaseException | str] = []

    def build() -> None:
        try:
            with Builder.connect(f"unix://{relay.socket_path}") as builder:
                state = slow_step(builder.resolve(registry_base), marker)
                builder.solve(state, SolveOptions(outputs=[Output("tar", {}, tmp_path / "never.tar")],
                                                  progress="plain", progress_stream=progress))
            outcome.append("the solve finished although the daemon is gone")
        except BaseException as err:  # noqa: BLE001 - whatever it is, the test reports it
            outcome.append(err)

    worker = threading.Thread(target=build, name="test-solve", daemon=True)
    worker.start()
    try:
        assert progress.seen.wait(120), progress.getvalue()
    finally:
        vanished = time.monotonic()
        relay.close()  # every connection to the "daemon" drops and its socket is gone
    worker.join(DEATH_DEADLINE + 30)
    took = time.monotonic() - vanished
    assert not worker.is_alive(), f"the solve still hangs {took:.0f}s after the daemon vanished"
    assert took < DEATH_DEADLINE, f"noticed only after {took:.1f}s"
    (err,) = outcome
    assert isinstance(err, BuildFailed | BuilderUnavailable), repr(err)
    assert "\n" not in str(err) and str(err), repr(str(err))
    # Nothing of ours keeps running: no session/status/relay thread outlives the build ...
    deadline = time.monotonic() + 10
    while llbgen_threads() - before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not llbgen_threads() - before, [t.name for t in llbgen_threads() - before]
    # ... and the daemon dropped the build with its client (the step's process is gone).
    assert wait_process_gone(marker)


def test_cli_exits_when_the_builder_socket_goes_away_mid_build(docker_engine: str, registry_base: str,
                                                              tmp_path: Path) -> None:
    relay = DockerGrpcRelay(EngineEndpoint(docker_engine)).start()
    solve = SlowSolve(f"unix://{relay.socket_path}", registry_base, tmp_path, seconds=120)
    try:
        solve.wait_running()
    finally:
        vanished = time.monotonic()
        relay.close()  # the socket file is removed and every connection through it cut
    took = solve.wait_exit(vanished, timeout=DEATH_DEADLINE + 30)
    if took is None:
        pytest.fail("llbgen solve kept running after its builder's socket went away:\n" + solve.stderr)
    lines = solve.lines
    assert solve.proc.returncode == 1, solve.stderr
    assert took < DEATH_DEADLINE, f"exited only after {took:.1f}s"
    assert "Traceback" not in solve.stderr
    errors = [line for line in lines if line.startswith("llbgen: error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], solve.stderr
    assert wait_process_gone(solve.marker)
