"""The engine against the Docker Engine's real BuildKit: every op kind, exporters, cache, session."""

from __future__ import annotations

import hashlib
import io
import json
import re
import secrets
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from llbgen import llb
from llbgen.builder.client import Builder
from llbgen.builder.options import CacheEntry, Output
from llbgen.builder.solve import SolveOptions
from llbgen.errors import CapabilityMissing
from tests.integration.engine_helpers import (
    DOCKER,
    default_sigint,
    docker,
    inspect_image,
    oci_blobs,
    run_in,
    serve_directory,
)

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def builder(docker_engine: str, base_image: str):
    with Builder.connect(f"docker://{docker_engine}") as b:
        yield b


def quiet(**kwargs) -> SolveOptions:
    return SolveOptions(progress="quiet", **kwargs)


def test_every_op_kind_solves_and_the_image_runs(builder: Builder, base_image: str, tmp_path: Path):
    ctx = tmp_path / "ctx"
    (ctx / "keep").mkdir(parents=True)
    (ctx / "keep" / "a.txt").write_text("from the context\n")
    (ctx / "drop.txt").write_text("excluded\n")
    www = tmp_path / "www"
    www.mkdir()
    payload = b"#!/bin/sh\necho downloaded\n"
    (www / "tool.sh").write_bytes(payload)
    tag = f"llbgen-test/every-op:{secrets.token_hex(4)}"
    with serve_directory(www) as url:
        base = builder.resolve(base_image)
        tool = llb.http(f"{url}/tool.sh", checksum="sha256:" + hashlib.sha256(payload).hexdigest(),
                        filename="tool.sh", permissions=0o755)
        built = base.run(
            "mkdir -p /opt/x && cp /dl/tool.sh /opt/x/tool && echo \"$GREETING\" > /opt/x/greeting "
            "&& test -d /var/cache/x && test -d /tmp/scratch",
            env={"GREETING": "hello"},
            mounts=[llb.bind("/dl", tool, readonly=True), llb.cache_mount("/var/cache/x", "llbgen-test-x"),
                    llb.tmpfs("/tmp/scratch")],
            name="install tool",
        ).root
        files = llb.scratch().file(
            llb.mkdir("/etc/llbgen", 0o755, make_parents=True)
            .mkfile("/etc/llbgen/motd", 0o640, "motd\n")
            .copy(llb.local("ctx", include=["keep/**"], exclude=["drop.txt"]), "keep/a.txt", "/etc/llbgen/a.txt")
            .mkfile("/etc/llbgen/stale", 0o644, "x")
            .rm("/etc/llbgen/stale")
        )
        final = (
            llb.merge([base, llb.diff(base, built), files])
            .with_env("LLBGEN_TEST", "yes")
            .with_cwd("/opt/x")
            .with_config(cmd=("/opt/x/tool",), exposed_ports=("8888/tcp",), labels=(("org.example", "1"),))
        )
        result = builder.solve(final, quiet(outputs=[Output("moby", {"name": tag})], local_dirs={"ctx": ctx}))
    assert result.image_digest and result.image_digest.startswith("sha256:")
    assert docker("run", "--rm", tag).stdout.strip() == "downloaded"
    out = run_in(tag, "cat /opt/x/greeting /etc/llbgen/a.txt; stat -c %a /etc/llbgen/motd; "
                      "ls /etc/llbgen; echo $LLBGEN_TEST; pwd")
    assert out.split("\n")[:4] == ["hello", "from the context", "640", "a.txt"]
    assert "stale" not in out and "yes" in out and "/opt/x" in out
    config = inspect_image(tag)["Config"]
    assert "LLBGEN_TEST=yes" in config["Env"] and any(e.startswith("PATH=") for e in config["Env"])
    assert config["Cmd"] == ["/opt/x/tool"] and config["WorkingDir"] == "/opt/x"
    assert "8888/tcp" in config["ExposedPorts"] and config["Labels"]["org.example"] == "1"


def test_status_vertices_map_to_our_ops(builder: Builder, base_image: str):
    marker = secrets.token_hex(6)
    base = builder.resolve(base_image)
    state = llb.merge([base, llb.diff(base, base.run(f"echo {marker} > /m", name=f"mark {marker}").root)])
    definition = llb.marshal(state)
    result = builder.solve(state, quiet(outputs=[Output("moby", {"name": f"llbgen-test/map:{marker}"})]))
    index = definition.vertex_index()
    mapped = {index.lookup(v.digest).digest for v in result.vertices if index.lookup(v.digest)}
    assert set(definition.digests[:-1]) <= mapped
    names = {v.name for v in result.vertices}
    assert f"mark {marker}" in names


def test_diff_layer_has_the_same_digest_on_two_bases(builder: Builder, base_image: str):
    base = builder.resolve(base_image)
    other_base = base.file(llb.mkfile("/other-base", 0o644, "b"))
    layer = llb.diff(base, base.run("mkdir -p /opt/layer && echo shared > /opt/layer/f", name="shared layer").root)
    tags = [f"llbgen-test/layer-a:{secrets.token_hex(3)}", f"llbgen-test/layer-b:{secrets.token_hex(3)}"]
    for tag, b in zip(tags, (base, other_base), strict=True):
        builder.solve(llb.merge([b, layer]), quiet(outputs=[Output("moby", {"name": tag})]))
    layers_a = inspect_image(tags[0])["RootFS"]["Layers"]
    layers_b = inspect_image(tags[1])["RootFS"]["Layers"]
    assert layers_a[-1] == layers_b[-1]
    assert len(layers_b) == len(layers_a) + 1 and layers_a[0] == layers_b[0]


def test_push_to_registry_and_pull_back(builder: Builder, base_image: str, registry: str):
    marker = secrets.token_hex(6)
    name = f"{registry}/llbgen-test/push:{marker}"
    base = builder.resolve(base_image)
    state = base.run(f"echo {marker} > /pushed").root
    result = builder.solve(state, quiet(outputs=[Output("image", {"name": name, "push": "true"})]))
    assert result.image_digest
    docker("image", "rm", name)
    docker("pull", name)
    assert run_in(name, "cat /pushed").strip() == marker


@pytest.mark.prunes_build_cache
def test_registry_cache_survives_a_builder_prune(builder: Builder, base_image: str, registry: str):
    marker = secrets.token_hex(8)
    cache_ref = f"{registry}/llbgen-test/cache:{marker}"
    base = builder.resolve(base_image)
    step_name = f"slow step {marker}"
    state = base.run(f"echo {marker} > /cached && sleep 1", name=step_name).root
    tag = f"llbgen-test/cache:{marker}"
    first = builder.solve(state, quiet(outputs=[Output("moby", {"name": tag})],
                                       cache_to=[CacheEntry("registry", {"ref": cache_ref, "mode": "max"})]))
    step = next(v for v in first.vertices if v.name == step_name)
    assert not step.cached
    docker("image", "rm", tag)
    docker("builder", "prune", "-af")
    second = builder.solve(state, quiet(outputs=[Output("moby", {"name": tag})],
                                        cache_from=[CacheEntry("registry", {"ref": cache_ref})]))
    step = next(v for v in second.vertices if v.name == step_name)
    assert step.cached
    assert run_in(tag, "cat /cached").strip() == marker


def test_secret_is_readable_in_the_step_and_nowhere_in_the_image(builder: Builder, base_image: str, tmp_path: Path):
    value = "llbgen-secret-" + secrets.token_hex(16)
    # The command carries only the hash: the command line itself is recorded in the image history.
    digest = hashlib.sha256(value.encode()).hexdigest()
    base = builder.resolve(base_image)
    state = base.run(
        f'test "$(sha256sum < /run/secrets/tok | cut -d" " -f1)" = {digest} && '
        f'test "$(printf %s "$TOKEN_ENV" | sha256sum | cut -d" " -f1)" = {digest} && echo ok > /secret-check',
        mounts=[llb.secret_mount("/run/secrets/tok", "tok")],
        secret_env=[llb.SecretEnv("tok", "TOKEN_ENV")],
        name="use secret",
    ).root
    oci = tmp_path / "img.tar"
    builder.solve(state, quiet(outputs=[Output("oci", {"name": "llbgen-test/secret:1"}, oci)], secrets={"tok": value.encode()}))
    assert oci.stat().st_size > 0
    found_check = False
    for blob in oci_blobs(oci):
        assert value.encode() not in blob
        if b"secret-check" in blob:
            found_check = True
    assert found_check


def test_local_source_include_exclude(builder: Builder, tmp_path: Path):
    ctx = tmp_path / "ctx"
    for rel in ["a.py", "b.txt", "sub/c.py", "sub/skip.py", "sub/deeper/d.py", "node_modules/x.py"]:
        (ctx / rel).parent.mkdir(parents=True, exist_ok=True)
        (ctx / rel).write_text(rel)
    src = llb.local("ctx", include=["**/*.py"], exclude=["sub/skip.py", "node_modules"])
    state = llb.scratch().file(llb.copy(src, "/", "/out/", contents_only=True, create_dest_path=True))
    out = tmp_path / "out.tar"
    builder.solve(state, quiet(outputs=[Output("tar", {}, out)], local_dirs={"ctx": ctx}))
    with tarfile.open(out) as archive:
        files = {m.name.lstrip("./") for m in archive.getmembers() if m.isfile()}
    assert files == {"out/a.py", "out/sub/c.py", "out/sub/deeper/d.py"}


def test_oci_tarball_loads_back_with_docker_load(builder: Builder, base_image: str, tmp_path: Path):
    marker = secrets.token_hex(6)
    name = f"docker.io/llbgen-test/oci:{marker}"
    base = builder.resolve(base_image)
    state = base.run(f"echo {marker} > /oci").root.with_config(cmd=("cat", "/oci"))
    oci = tmp_path / "img.tar"
    builder.solve(state, quiet(outputs=[Output("oci", {"name": name}, oci)]))
    loaded = docker("load", "-i", str(oci)).stdout
    assert marker in loaded
    assert docker("run", "--rm", f"llbgen-test/oci:{marker}").stdout.strip() == marker


def test_plain_progress_shows_steps_and_cached(builder: Builder, base_image: str):
    marker = secrets.token_hex(6)
    base = builder.resolve(base_image)
    state = base.run(f"echo {marker} > /p", name=f"progress step {marker}").root
    for expect_cached in (False, True):
        stream = io.StringIO()
        builder.solve(state, SolveOptions(outputs=[Output("moby", {"name": f"llbgen-test/progress:{marker}"})],
                                          progress="plain", progress_stream=stream))
        text = stream.getvalue()
        match = re.search(rf"^(#\d+) \[?progress step {marker}", text, re.MULTILINE)
        assert match, text
        number = match.group(1)
        assert (f"{number} CACHED" in text) is expect_cached, text
        if not expect_cached:
            assert re.search(rf"^{number} DONE \d", text, re.MULTILINE), text


def test_failing_step_reports_name_exit_code_and_log(base_image: str, tmp_path: Path):
    graph = tmp_path / "fail.py"
    graph.write_text(
        "def graph(resolve):\n"
        f"    return resolve({base_image!r}).run('echo about to fail; exit 3', name='doomed step').root\n"
    )
    proc = subprocess.run([sys.executable, "-m", "llbgen", "solve", f"{graph}:graph", "-t", "llbgen-test/fail:1",
                           "--progress", "plain"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "doomed step" in proc.stderr and "exit code 3" in proc.stderr and "about to fail" in proc.stderr


def test_ctrl_c_cancels_and_leaves_nothing_running(base_image: str, tmp_path: Path):
    marker = f"llbgen-cancel-{secrets.token_hex(6)}"
    graph = tmp_path / "slow.py"
    graph.write_text(
        "def graph(resolve):\n"
        f"    return resolve({base_image!r}).run(['sh', '-c', 'echo started; sleep 300; echo {marker}'],"
        f" name='slow {marker}').root\n"
    )
    proc = subprocess.Popen([sys.executable, "-m", "llbgen", "solve", f"{graph}:graph", "-t", "llbgen-test/slow:1",
                             "--progress", "plain"], stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            preexec_fn=default_sigint)
    assert proc.stderr is not None
    deadline = time.monotonic() + 120
    seen = ""
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        seen += line
        if "started" in line:
            break
    assert "started" in seen, seen
    proc.send_signal(signal.SIGINT)
    try:
        rest = proc.communicate(timeout=30)[1]
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("llbgen did not exit within 30 s of Ctrl-C")
    assert proc.returncode == 130, seen + rest
    assert "Traceback" not in rest
    # The step's process must be gone (build containers run as host processes).
    for _ in range(20):
        ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        if marker not in ps:
            break
        time.sleep(0.5)
    assert marker not in ps


def test_missing_capability_is_reported_before_solving(builder: Builder, base_image: str):
    info = builder.info.model_copy(update={"merge_op": False, "diff_op": False, "image_store": "classic"})
    base = builder.resolve(base_image)
    state = llb.merge([base, llb.diff(base, base.run("true").root)])
    from llbgen.builder.solve import check_graph_support

    with pytest.raises(CapabilityMissing) as err:
        check_graph_support(llb.marshal(state), info)
    assert "containerd" in str(err.value) and "\n" not in str(err.value)


def test_llb_command_output_is_what_buildctl_reads():
    proc = subprocess.run([sys.executable, "-m", "llbgen", "llb", "examples/graphs/hello.py:graph"],
                          capture_output=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0
    from llbgen._proto.buildkit import ops_pb2

    definition = ops_pb2.Definition.FromString(proc.stdout)
    assert len(getattr(definition, "def")) >= 5 and definition.metadata
    lines = subprocess.run([sys.executable, "-m", "llbgen", "llb", "examples/graphs/hello.py:graph", "--format", "json"],
                           capture_output=True, text=True, cwd=ROOT, timeout=60).stdout.splitlines()
    assert [json.loads(line)["digest"] for line in lines] == [
        "sha256:" + hashlib.sha256(op).hexdigest() for op in getattr(definition, "def")]


def test_base_missing_from_the_engine_store_is_resolved_through_the_registry(builder: Builder, base_image: str,
                                                                              registry: str):
    ref = f"{registry}/llbgen-test/resolve:{secrets.token_hex(4)}"
    # An image of its own (not a second tag of the shared base) is pushed, then removed locally.
    pushed = builder.resolve(base_image).run(f"echo {ref} > /resolved").root
    builder.solve(pushed, quiet(outputs=[Output("image", {"name": ref, "push": "true"})]))
    pushed_digest = inspect_image(ref)["RepoDigests"][0].split("@")[1]
    docker("image", "rm", ref)
    state = builder.resolve(ref)
    definition = llb.marshal(state)
    op = definition.op(definition.digests[0])
    assert op.source.identifier == f"docker-image://{ref}@{pushed_digest}"
    assert state.get_env("PATH")  # the config came with it


def test_unknown_base_is_one_line_user_error(builder: Builder):
    from llbgen.errors import UsageError

    with pytest.raises(UsageError) as err:
        builder.resolve("127.0.0.1:5000/llbgen-test/never-pushed:1")
    assert "\n" not in str(err.value) and "never-pushed" in str(err.value)


def test_freshly_imported_base_builds_without_a_registry(builder: Builder, base_image: str):
    """`docker import`ed images have no repository record BuildKit knows; resolving must still pin them locally."""
    name = f"llbgen-test/imported:{secrets.token_hex(4)}"
    container = docker("create", base_image, "true").stdout.strip()
    try:
        export = subprocess.Popen([*DOCKER, "export", container], stdout=subprocess.PIPE)
        subprocess.run([*DOCKER, "import", "-", name], stdin=export.stdout,
                       check=True, capture_output=True, timeout=300)
        export.wait(60)
    finally:
        docker("rm", container)
    state = builder.resolve(name).run("echo imported > /i").root
    builder.solve(state, quiet(outputs=[Output("moby", {"name": f"{name}-built"})]))
    assert run_in(f"{name}-built", "cat /i").strip() == "imported"
