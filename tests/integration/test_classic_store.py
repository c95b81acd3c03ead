"""A Docker Engine with the classic (graphdriver) image store, and the gateway path.

The classic engine is the second dockerd started by .ci/start-classic-dockerd.sh.
Its BuildKit lacks MergeOp/DiffOp and registry cache export (refused before
solving), and its exporter takes the image config only from the result metadata,
which is why solves there run as client-side gateway builds (llbgen/builder/gateway.py).
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys

import grpc
import pytest

from llbgen import llb
from llbgen._proto.buildkit import control_pb2
from llbgen.builder.address import BuilderAddress
from llbgen.builder.client import Builder
from llbgen.builder.connection import BuilderConnection
from llbgen.builder.gateway import attach_session, resolve_image_config_via_gateway
from llbgen.builder.options import CacheEntry, Output
from llbgen.builder.resolve import resolve_image
from llbgen.builder.session import Session
from llbgen.builder.solve import SolveOptions
from llbgen.errors import CapabilityMissing
from llbgen.llb import Platform
from tests.conftest import BASE_IMAGE, CLASSIC_ENGINE, _need

pytestmark = [pytest.mark.integration, pytest.mark.classic]

CLASSIC_HOST = CLASSIC_ENGINE
CLASSIC_BUILDER = f"docker://{CLASSIC_HOST}"
PLATFORM = Platform("linux", "amd64")


def classic_docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", "-H", CLASSIC_HOST, *args], capture_output=True, text=True,
                          check=check, timeout=300)


def classic_inspect(name: str) -> dict:
    return json.loads(classic_docker("image", "inspect", name).stdout)[0]


@pytest.fixture(scope="session")
def classic_engine() -> str:
    """The classic-store engine's address (with the base image loaded), or skip/fail."""
    try:
        ok = classic_docker("info", check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    _need(ok, f"no classic-store Docker Engine at {CLASSIC_HOST} (run .ci/start-classic-dockerd.sh)")
    has_base = classic_docker("image", "inspect", BASE_IMAGE, check=False).returncode == 0
    _need(has_base, f"base image {BASE_IMAGE} missing in the classic engine (run .ci/start-classic-dockerd.sh)")
    return CLASSIC_BUILDER


@pytest.fixture(scope="module")
def classic(classic_engine: str):
    with Builder.connect(classic_engine) as builder:
        yield builder


def quiet(**kwargs) -> SolveOptions:
    return SolveOptions(progress="quiet", **kwargs)


def test_inspect_shows_the_classic_store(classic_engine: str):
    proc = subprocess.run([sys.executable, "-m", "llbgen", "builder", "inspect", "--builder", classic_engine, "--json"], check=False,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["image_store"] == "classic"
    assert info["merge_op"] is False and info["diff_op"] is False
    assert info["exporters"] == ["moby", "local", "tar"]


@pytest.mark.parametrize("combine", ["merge", "diff"])
def test_merge_and_diff_are_refused_before_solving(classic: Builder, combine: str):
    base = classic.resolve(BASE_IMAGE, platform=PLATFORM)
    layer = base.run("echo x > /x").root
    state = llb.merge([base, layer]) if combine == "merge" else llb.diff(base, layer)
    with pytest.raises(CapabilityMissing) as caught:
        classic.solve(state, quiet(outputs=[Output("moby", {"name": "llbgen-classic-test:never"})]))
    message = str(caught.value)
    assert "\n" not in message
    assert "classic image store" in message and "MergeOp/DiffOp" in message
    assert '"containerd-snapshotter":true' in message
    # Refused before solving: nothing was exported.
    assert classic_docker("image", "inspect", "llbgen-classic-test:never", check=False).returncode != 0


def test_registry_cache_export_is_refused_before_solving(classic: Builder, registry: str):
    base = classic.resolve(BASE_IMAGE, platform=PLATFORM)
    cache = CacheEntry("registry", {"ref": f"{registry}/llbgen-test/classic-cache:x", "mode": "max"})
    with pytest.raises(CapabilityMissing) as caught:
        classic.solve(base.run("true").root, quiet(cache_to=[cache]))
    message = str(caught.value)
    assert "\n" not in message
    assert "'registry'" in message and "inline" in message and "containerd image store" in message


def test_resolving_a_loaded_image_does_not_pin_it(classic: Builder):
    # The classic store knows a loaded image by name only; its ID is the config digest,
    # and pinning that would send BuildKit to the registry.
    resolved = resolve_image(classic.connection, BASE_IMAGE)
    assert resolved.digest == ""
    assert resolved.config["config"]["Cmd"] == ["bash"]


def test_a_pulled_image_is_pinned_by_its_repo_digest(classic: Builder, registry: str):
    # A pull records name@digest in the classic store; BuildKit there finds the image by it.
    pushed = f"{registry}/llbgen-test/classic-base:{secrets.token_hex(4)}"
    name = f"llbgen-classic-test:{secrets.token_hex(4)}"
    subprocess.run(["docker", "tag", BASE_IMAGE, pushed], check=True, capture_output=True)
    try:
        subprocess.run(["docker", "push", "-q", pushed], check=True, capture_output=True, timeout=300)
        classic_docker("pull", "-q", pushed)
        manifest = classic_inspect(pushed)["RepoDigests"][0].split("@", 1)[1]
        base = classic.resolve(pushed, platform=PLATFORM)
        assert base.output.vertex.identifier.endswith(f"@{manifest}")
        classic.solve(base.run("true").root.with_config(cmd=("true",)),
                      quiet(outputs=[Output("moby", {"name": name})]))
        assert classic_inspect(name)["Config"]["Cmd"] == ["true"]
    finally:
        classic_docker("image", "rm", "-f", name, pushed, check=False)
        # The main engine's tag stays: with the containerd store, removing one of several tags
        # of the shared base image was seen to leave the base unexportable ("not found").


def test_moby_export_gets_the_state_config_through_the_gateway(classic: Builder):
    name = f"llbgen-classic-test:{secrets.token_hex(4)}"
    base = classic.resolve(BASE_IMAGE, platform=PLATFORM)
    state = (
        base.run("mkdir -p /srv/app && echo classic > /srv/app/marker").root
        .with_env("GREETING", "hello classic")
        .with_cwd("/srv/app")
        .with_config(cmd=("cat", "marker"), exposed_ports=("8080/tcp",),
                     labels=(("org.example.store", "classic"),))
    )
    try:
        result = classic.solve(state, quiet(outputs=[Output("moby", {"name": name})]))
        assert result.exporter_response
        config = classic_inspect(name)["Config"]
        assert "GREETING=hello classic" in config["Env"]
        assert any(item.startswith("PATH=") for item in config["Env"])
        assert config["Cmd"] == ["cat", "marker"]
        assert config["WorkingDir"] == "/srv/app"
        assert config["ExposedPorts"] == {"8080/tcp": {}}
        assert config["Labels"] == {"org.example.store": "classic"}
        out = classic_docker("run", "--rm", "--network", "none", name).stdout
        assert out.strip() == "classic"
    finally:
        classic_docker("image", "rm", "-f", name, check=False)


def test_without_the_gateway_the_classic_exporter_drops_the_config(classic_engine: str):
    """Why the gateway path exists: a Definition-only solve with the ``containerimage.config``
    exporter attr gives an image with the classic exporter's empty default config."""
    name = f"llbgen-classic-test:plain-{secrets.token_hex(4)}"
    state = llb.image(BASE_IMAGE, platform=PLATFORM).with_config(cmd=("echo", "set"))
    config = json.dumps(state.image_config())
    request = control_pb2.SolveRequest(
        Ref=secrets.token_hex(13),
        Definition=llb.marshal(state).to_pb(),
        Exporters=[control_pb2.Exporter(Type="moby", Attrs={"name": name, "containerimage.config": config})],
    )
    try:
        with BuilderConnection(BuilderAddress("docker", CLASSIC_HOST)) as conn, Session() as session:
            conn.wait_ready()
            attach_session(session, conn)
            request.Session = session.id
            conn.control.Solve(request, timeout=300)
        assert classic_inspect(name)["Config"].get("Cmd") in (None, [])
    finally:
        classic_docker("image", "rm", "-f", name, check=False)


def test_gateway_resolve_on_the_classic_store(classic_engine: str):
    with BuilderConnection(BuilderAddress("docker", CLASSIC_HOST)) as conn:
        conn.wait_ready()
        digest, config = resolve_image_config_via_gateway(conn, None, "docker.io/" + BASE_IMAGE, PLATFORM,
                                                          resolve_mode="local")
    assert digest == ""  # a loaded image has no manifest in the classic store
    assert config["config"]["Cmd"] == ["bash"]
    assert config["os"] == "linux" and config["architecture"] == "amd64"


@pytest.mark.parametrize("mode", ["local", "default"])
def test_gateway_resolve_matches_the_engine_api(docker_engine: str, base_image: str, mode: str):
    """On the main (containerd-store) engine, ResolveImageConfig finds the local-only base
    image and agrees with the engine API on digest and config."""
    with BuilderConnection(BuilderAddress("docker", docker_engine)) as conn:
        conn.wait_ready()
        engine = resolve_image(conn, base_image)
        digest, config = resolve_image_config_via_gateway(conn, None, "docker.io/" + base_image, PLATFORM,
                                                          resolve_mode=mode)
    assert digest == engine.digest
    assert digest.startswith("sha256:")
    assert config["config"]["Env"] == engine.config["config"]["Env"]
    assert config["config"]["Cmd"] == engine.config["config"]["Cmd"]
    assert (config["os"], config["architecture"]) == (engine.config["os"], engine.config["architecture"])


def test_gateway_solve_on_the_main_engine(docker_engine: str, base_image: str):
    """``via_gateway`` works on the containerd store too (same exporter, config from metadata)."""
    name = f"llbgen-test/gateway:{secrets.token_hex(4)}"
    with Builder.connect(f"docker://{docker_engine}") as builder:
        base = builder.resolve(base_image, platform=PLATFORM)
        # A step of its own: re-exporting the unmodified base after other tests pushed it to a
        # registry has failed on this engine with "not found" (see the engine issue's notes).
        state = (base.run("echo gateway > /via", name="gateway step").root.with_env("VIA", "gateway")
                 .with_config(cmd=("true",), labels=(("via", "gateway"),)))
        try:
            builder.solve(state, quiet(outputs=[Output("moby", {"name": name})], via_gateway=True))
            out = subprocess.run(["docker", "image", "inspect", name], capture_output=True, text=True, check=True)
            config = json.loads(out.stdout)[0]["Config"]
            assert "VIA=gateway" in config["Env"]
            assert config["Cmd"] == ["true"] and config["Labels"] == {"via": "gateway"}
        finally:
            subprocess.run(["docker", "image", "rm", "-f", name], check=False, capture_output=True)


def test_a_failing_step_fails_the_gateway_build(classic: Builder):
    from llbgen.errors import BuildFailed

    base = classic.resolve(BASE_IMAGE, platform=PLATFORM)
    with pytest.raises(BuildFailed) as caught:
        classic.solve(base.run("exit 3", name="fail on purpose").root,
                      quiet(outputs=[Output("moby", {"name": "llbgen-classic-test:fails"})]))
    assert "fail on purpose" in str(caught.value) or "exit code: 3" in str(caught.value)


def test_rejected_graph_surfaces_as_a_build_error(classic_engine: str):
    """A graph the bridge refuses is handed back through Return and fails Control.Solve."""
    from llbgen._proto.buildkit import ops_pb2
    from llbgen.builder.gateway import start_gateway_solve

    bogus = ops_pb2.Definition(**{"def": [b"not an op"]})
    with BuilderConnection(BuilderAddress("docker", CLASSIC_HOST)) as conn, Session() as session:
        conn.wait_ready()
        attach_session(session, conn)
        future = start_gateway_solve(conn, control_pb2.SolveRequest(Session=session.id), bogus, None)
        with pytest.raises(grpc.RpcError):
            future.result(timeout=60)
