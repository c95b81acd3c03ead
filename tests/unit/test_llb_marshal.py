"""LLB graph API: marshal → parse back → assert fields; BuildKit's index and byte conventions."""

from __future__ import annotations

import dataclasses
import json

import pytest

from llbgen import llb
from llbgen._proto.buildkit import ops_pb2
from llbgen.llb.wire import digest_of, field_order_bytes, marshal_op

AMD64 = llb.Platform("linux", "amd64")


def ops_of(state: llb.State) -> list[ops_pb2.Op]:
    return [ops_pb2.Op.FromString(dt) for dt in llb.marshal(state).ops]


def test_image_source_is_normalized_and_platformed():
    src, terminal = ops_of(llb.image("debian:bookworm", platform=AMD64))
    assert src.source.identifier == "docker-image://docker.io/library/debian:bookworm"
    assert src.platform.OS == "linux" and src.platform.Architecture == "amd64"
    assert src.HasField("constraints")
    assert list(terminal.inputs) == [ops_pb2.Input(digest=digest_of(llb.marshal(llb.image("debian:bookworm", platform=AMD64)).ops[0]))]
    assert terminal.WhichOneof("op") is None


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("ubuntu", "docker.io/library/ubuntu:latest"),
        ("nvidia/cuda:12.1.0-cudnn8-devel-ubuntu22.04", "docker.io/nvidia/cuda:12.1.0-cudnn8-devel-ubuntu22.04"),
        ("localhost:5000/x/y:1", "localhost:5000/x/y:1"),
        ("127.0.0.1:5000/img", "127.0.0.1:5000/img:latest"),
    ],
)
def test_image_refs(ref: str, expected: str):
    assert ops_of(llb.image(ref, platform=AMD64))[0].source.identifier == f"docker-image://{expected}"


def test_image_pinned_to_digest_and_config_inherited():
    digest = "sha256:" + "ab" * 32
    config = {"config": {"Env": ["PATH=/usr/bin", "CUDA_VERSION=12.1.0"], "WorkingDir": "/w", "Cmd": ["bash"]}}
    base = llb.image("nvidia/cuda:12.1.0-base-ubuntu22.04", platform=AMD64, digest=digest, config=config)
    assert ops_of(base)[0].source.identifier.endswith(f":12.1.0-base-ubuntu22.04@{digest}")
    run = ops_of(base.run(["true"]).root)[1]
    assert list(run.exec.meta.env) == ["PATH=/usr/bin", "CUDA_VERSION=12.1.0"]
    assert run.exec.meta.cwd == "/w"
    assert base.image_config()["config"]["Cmd"] == ["bash"]


def test_bad_image_refs_raise():
    with pytest.raises(ValueError):
        llb.image("Debian:Bookworm", platform=AMD64)
    with pytest.raises(ValueError):
        llb.image("debian", platform=AMD64, digest="sha256:nothex")


def test_exec_fields_mounts_sorted_and_indices():
    base = llb.image("debian", platform=AMD64)
    other = llb.image("busybox", platform=AMD64)
    st = base.with_env("A", "1").with_cwd("/work").with_user("nobody").run(
        ["sh", "-c", "make"],
        mounts=[
            llb.cache_mount("/var/cache/apt", "apt", sharing="locked"),
            llb.bind("/src", other, readonly=True),
            llb.bind("/out", llb.scratch(AMD64)),
            llb.tmpfs("/tmp", size=1 << 20),
            llb.secret_mount("/run/secrets/ca", "ca", mode=0o444),
        ],
        network="host",
        hostname="builder",
        valid_exit_codes=[0, 1],
    )
    exec_op = ops_of(st.root)[2]
    meta = exec_op.exec.meta
    assert list(meta.args) == ["sh", "-c", "make"]
    assert list(meta.env) == ["A=1"] and meta.cwd == "/work" and meta.user == "nobody"
    assert meta.hostname == "builder" and meta.removeMountStubsRecursive and list(meta.validExitCodes) == [0, 1]
    assert exec_op.exec.network == ops_pb2.HOST
    dests = [m.dest for m in exec_op.exec.mounts]
    assert dests == ["/", "/out", "/src", "/tmp", "/var/cache/apt", "/run/secrets/ca"]
    by_dest = {m.dest: m for m in exec_op.exec.mounts}
    assert (by_dest["/"].input, by_dest["/"].output) == (0, 0)
    assert (by_dest["/out"].input, by_dest["/out"].output) == (-1, 1)
    assert (by_dest["/src"].input, by_dest["/src"].output, by_dest["/src"].readonly) == (1, -1, True)
    assert by_dest["/tmp"].mountType == ops_pb2.TMPFS and by_dest["/tmp"].TmpfsOpt.size == 1 << 20
    cache = by_dest["/var/cache/apt"]
    assert (cache.mountType, cache.cacheOpt.ID, cache.cacheOpt.sharing, cache.output) == (ops_pb2.CACHE, "apt", ops_pb2.LOCKED, -1)
    secret = by_dest["/run/secrets/ca"]
    assert (secret.mountType, secret.secretOpt.ID, secret.secretOpt.mode, secret.input) == (ops_pb2.SECRET, "ca", 0o444, -1)
    # The writable /out mount is reachable as its own state.
    out_state = st.mount_state("/out")
    assert out_state.output.index == 1
    with pytest.raises(ValueError):
        st.mount_state("/src")


def test_run_string_uses_shell_and_step_env_does_not_leak():
    base = llb.image("debian", platform=AMD64)
    result = base.run("echo $X", env={"X": "1"})
    assert list(ops_of(result.root)[1].exec.meta.args) == ["/bin/sh", "-c", "echo $X"]
    assert result.get_env("X") is None


def test_fileop_chain_indices_and_unset_values():
    base = llb.image("debian", platform=AMD64).with_cwd("/app")
    ctx = llb.local("context", include=["*.py"], exclude=["tests"])
    st = base.file(
        llb.mkdir("data", 0o700, make_parents=True)
        .mkfile("data/x.txt", 0o644, "hello", owner=(1000, "users"))
        .copy(ctx, "src/", "dst/", include=("a",))
        .rm("old", allow_not_found=True)
        .symlink("/app/data", "link")
    )
    file_op = ops_of(st)[-2]
    assert file_op.platform.ByteSize() == 0 and not file_op.HasField("platform")
    acts = file_op.file.actions
    assert [a.WhichOneof("action") for a in acts] == ["mkdir", "mkfile", "copy", "rm", "symlink"]
    # input 0 = base, 1 = local context; later actions chain on "len(inputs)+k".
    assert [(a.input, a.secondaryInput, a.output) for a in acts] == [
        (0, -1, -1), (2, -1, -1), (3, 1, -1), (4, -1, -1), (5, -1, 0)]
    assert acts[0].mkdir.path == "/app/data" and acts[0].mkdir.mode == 0o700 and acts[0].mkdir.makeParents
    assert acts[0].mkdir.timestamp == -1
    assert acts[1].mkfile.data == b"hello" and acts[1].mkfile.owner.user.byID == 1000
    assert acts[1].mkfile.owner.group.byName.name == "users" and acts[1].mkfile.owner.group.byName.input == 0
    copy = acts[2].copy
    assert (copy.src, copy.dest, copy.mode, copy.timestamp) == ("/src", "/app/dst/", -1, -1)
    assert list(copy.include_patterns) == ["a"]
    assert acts[3].rm.path == "/app/old" and acts[3].rm.allowNotFound
    assert acts[4].symlink.oldpath == "/app/data" and acts[4].symlink.newpath == "/app/link"


def test_fileop_on_scratch_has_no_base_input():
    st = llb.scratch(AMD64).file(llb.mkfile("/a", 0o600, b"x"))
    file_op = ops_of(st)[0]
    assert len(file_op.inputs) == 0 and file_op.file.actions[0].input == -1


def test_local_source_attrs():
    src = ops_of(llb.local("ctx", include=["a/**"], exclude=["*.tmp"], shared_key_hint="k"))[0]
    assert src.source.identifier == "local://ctx"
    assert json.loads(src.source.attrs["local.includepattern"]) == ["a/**"]
    assert json.loads(src.source.attrs["local.excludepatterns"]) == ["*.tmp"]
    assert src.source.attrs["local.sharedkeyhint"] == "k"
    assert not src.HasField("platform")


def test_http_source_attrs():
    checksum = "sha256:" + "0" * 64
    src = ops_of(llb.http("https://example.invalid/x.sh", checksum=checksum, filename="x.sh", permissions=0o755))[0]
    assert src.source.identifier == "https://example.invalid/x.sh"
    assert dict(src.source.attrs) == {"http.checksum": checksum, "http.filename": "x.sh", "http.perm": "0755"}
    with pytest.raises(ValueError):
        llb.http("ftp://x")


def test_git_source():
    src = ops_of(llb.git("https://github.com/moby/buildkit.git", "v0.13.0"))[0]
    assert src.source.identifier == "git://github.com/moby/buildkit.git#v0.13.0"
    assert src.source.attrs["git.fullurl"] == "https://github.com/moby/buildkit.git"


def test_merge_and_diff_simplifications():
    a = llb.image("debian", platform=AMD64)
    b = a.run("touch /b").root
    s = llb.scratch(AMD64)
    assert llb.merge([s, a]) == a
    assert llb.merge([s, s]).output is None
    assert llb.diff(s, b) == b
    m = ops_of(llb.merge([a, llb.diff(a, b)]))
    diff_op, merge_op = m[-3], m[-2]
    assert (diff_op.diff.lower.input, diff_op.diff.upper.input) == (0, 1)
    assert [i.input for i in merge_op.merge.inputs] == [0, 1]
    assert not diff_op.HasField("platform") and not merge_op.HasField("platform")
    upper_scratch = ops_of(llb.diff(a, s))[-2]
    assert (upper_scratch.diff.lower.input, upper_scratch.diff.upper.input) == (0, -1)


def test_shared_vertices_marshal_once_and_terminal_last():
    base = llb.image("debian", platform=AMD64)
    left = base.run("touch /l").root
    right = base.run("touch /r").root
    definition = llb.marshal(llb.merge([left, right]))
    assert len(definition.ops) == 5  # image, 2 execs, merge, terminal
    assert len(set(definition.digests)) == 5
    terminal = ops_pb2.Op.FromString(definition.ops[-1])
    assert terminal.inputs[0].digest == definition.digests[-2]
    # Every input digest refers to an op earlier in the list.
    seen: set[str] = set()
    for dt in definition.ops:
        op = ops_pb2.Op.FromString(dt)
        assert all(i.digest in seen for i in op.inputs)
        seen.add(digest_of(dt))


def test_identical_bytes_over_many_marshals():
    def build() -> llb.State:
        base = llb.image("debian", platform=AMD64).with_env("B", "2").with_env("A", "1")
        st = base.run("x", mounts=[llb.cache_mount("/c", "c")], name="x").root
        return llb.merge([base, llb.diff(base, st), llb.scratch(AMD64).file(llb.mkfile("/f", 0o644, "f"))])

    first = llb.marshal(build()).to_bytes()
    for _ in range(100):
        assert llb.marshal(build()).to_bytes() == first


def test_states_are_immutable():
    base = llb.image("debian", platform=AMD64)
    with pytest.raises(dataclasses.FrozenInstanceError):
        base.cwd = "/x"  # type: ignore[misc]
    changed = base.with_env("A", "1").with_cwd("/w")
    assert base.env == () and base.cwd == "/" and changed.cwd == "/w"
    assert base.run("true").root.output != base.output


def test_go_field_order_oneof_last():
    """protobuf-go writes Op.platform (10) and constraints (11) before the oneof (2..7)."""
    op = ops_of(llb.image("debian", platform=AMD64).run("true").root)[1]
    data = marshal_op(op)
    # inputs (tag 0x0a) first, then platform (0x52), constraints (0x5a), then exec (0x12).
    tags = []
    pos = 0
    while pos < len(data):
        tag = data[pos]
        tags.append(tag)
        pos += 1
        length, shift = 0, 0
        while True:
            b = data[pos]
            pos += 1
            length |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        pos += length
    assert tags == [0x0A, 0x52, 0x5A, 0x12]
    assert field_order_bytes(op) != data and ops_pb2.Op.FromString(field_order_bytes(op)) == op


def test_metadata_names_caps_and_ignore_cache():
    st = llb.image("debian", platform=AMD64).run("true", name="say hi", ignore_cache=True).root
    definition = llb.marshal(st)
    md = dict(definition.metadata)
    exec_md = md[definition.digests[1]].to_pb()
    assert exec_md.description["llb.customname"] == "say hi" and exec_md.ignore_cache
    assert exec_md.caps["exec.meta.base"]
    terminal_md = md[definition.digests[-1]].to_pb()
    assert terminal_md.caps["meta.ignorecache"] and terminal_md.caps["platform"]


def test_vertex_index_maps_current_and_legacy_digests():
    base = llb.image("debian", platform=AMD64)
    st = llb.merge([base, llb.diff(base, base.run("touch /x", name="touch x").root)])
    definition = llb.marshal(st)
    index = definition.vertex_index()
    legacy: dict[str, str] = {}
    for dt, digest in zip(definition.ops[:-1], definition.digests[:-1], strict=True):
        op = ops_pb2.Op.FromString(dt)
        assert index.lookup(digest).digest == digest
        for inp in op.inputs:
            inp.digest = legacy[inp.digest]
        legacy[digest] = digest_of(op.SerializeToString(deterministic=True))
        assert index.lookup(legacy[digest]).digest == digest
    assert index.name_for(legacy[definition.digests[1]], "daemon name") == "touch x"
    assert index.name_for("sha256:unknown", "daemon name") == "daemon name"


def test_definition_bytes_parse_back():
    st = llb.image("debian", platform=AMD64).run("true").root
    definition = llb.marshal(st)
    parsed = ops_pb2.Definition.FromString(definition.to_bytes())
    assert list(getattr(parsed, "def")) == list(definition.ops)
    assert set(parsed.metadata) == set(definition.digests)
    lines = [json.loads(line) for line in definition.json_lines()]
    assert [line["digest"] for line in lines] == list(definition.digests)
    assert lines[1]["op"]["exec"]["meta"]["args"] == ["/bin/sh", "-c", "true"]
