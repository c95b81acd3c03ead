"""The session's file services, driven like the daemon drives them: over a real gRPC
channel to the session's private socket.

FileSync.DiffCopy is checked against fsutil's sender: walk order, Go FileMode bits,
stat fields, hard links, include/exclude/followpaths. FileSend.DiffCopy, Secrets and
Health are checked at the end.
"""

from __future__ import annotations

import os
import queue
import stat
import threading
import time
from pathlib import Path
from urllib.parse import quote_plus

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from llbgen._proto.fsutil import wire_pb2
from llbgen._proto.session import filesync_pb2, filesync_pb2_grpc, secrets_pb2, secrets_pb2_grpc
from llbgen.builder.session import Session
from llbgen.builder.session.patterns import PatternMatcher
from llbgen.builder.session.walk import (
    MODE_DIR,
    MODE_NAMED_PIPE,
    MODE_SETGID,
    MODE_SETUID,
    MODE_STICKY,
    MODE_SYMLINK,
    go_file_mode,
)
from llbgen.errors import UsageError

Packet = wire_pb2.Packet


class Transfer:
    """What a DiffCopy produced: stats in order, file contents by path."""

    def __init__(self) -> None:
        self.stats: list = []
        self.data: dict[str, bytearray] = {}

    @property
    def paths(self) -> list[str]:
        return [s.path for s in self.stats]

    def by_path(self, path: str):
        return next(s for s in self.stats if s.path == path)


def diffcopy(socket_path: str, metadata: list[tuple[str, str]], request_files: bool = True) -> Transfer:
    """Play the daemon's receiver: read STATs, REQ every regular file, then FIN."""
    requests: queue.Queue[Packet | None] = queue.Queue()

    def outgoing():
        while (packet := requests.get()) is not None:
            yield packet

    result = Transfer()
    with grpc.insecure_channel(f"unix:{socket_path}") as channel:
        stub = filesync_pb2_grpc.FileSyncStub(channel)
        ids: dict[int, str] = {}
        pending: set[int] = set()
        try:
            for packet in stub.DiffCopy(outgoing(), metadata=metadata, timeout=30):
                if packet.type == Packet.PACKET_STAT:
                    if packet.HasField("stat"):
                        if packet.stat.mode & (MODE_DIR | MODE_SYMLINK | MODE_NAMED_PIPE) == 0:
                            ids[len(result.stats)] = packet.stat.path
                        result.stats.append(packet.stat)
                        continue
                    # The empty STAT ends the listing.
                    wanted = ids if request_files else {}
                    for file_id in wanted:
                        pending.add(file_id)
                        result.data[ids[file_id]] = bytearray()
                        requests.put(Packet(type=Packet.PACKET_REQ, ID=file_id))
                    if not pending:
                        requests.put(Packet(type=Packet.PACKET_FIN))
                elif packet.type == Packet.PACKET_DATA:
                    if packet.data:
                        result.data[ids[packet.ID]] += packet.data
                    else:
                        pending.discard(packet.ID)
                        if not pending:
                            requests.put(Packet(type=Packet.PACKET_FIN))
                elif packet.type == Packet.PACKET_FIN:
                    break
        finally:
            requests.put(None)
    return result


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    root.mkdir()
    for rel in ["a/b", "a-b", "a.txt", "B", "Z", "é.txt", "a/c/d.txt"]:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rel.encode())
    return root


def test_walk_order_is_depth_first_and_bytewise_sorted(tree: Path) -> None:
    with Session(local_dirs={"ctx": tree}) as session:
        t = diffcopy(session.socket_path, [("dir-name", "ctx")])
    # '/' sorts before '-' and '.' in the receiver's validator, and WalkDir's
    # depth-first order produces exactly that; upper case sorts before lower.
    assert t.paths == ["B", "Z", "a", "a/b", "a/c", "a/c/d.txt", "a-b", "a.txt", "é.txt"]
    assert t.data["a/c/d.txt"] == b"a/c/d.txt"
    assert t.data["é.txt"] == "é.txt".encode()


def test_stat_fields_and_go_mode_bits(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    root.mkdir()
    (root / "dir").mkdir(mode=0o750)
    os.chmod(root / "dir", 0o750 | stat.S_ISGID | stat.S_ISVTX)
    (root / "exe").write_bytes(b"#!/bin/sh\n")
    os.chmod(root / "exe", 0o755 | stat.S_ISUID)
    (root / "plain").write_bytes(b"x" * 300_000)  # more than one DATA chunk
    os.chmod(root / "plain", 0o640)
    os.symlink("plain", root / "link")
    os.mkfifo(root / "fifo", 0o600)
    os.link(root / "plain", root / "zz-hardlink")
    os.utime(root / "plain", ns=(1_000_000_000, 1_234_567_891_011_121_314))

    with Session(local_dirs={"ctx": root}) as session:
        t = diffcopy(session.socket_path, [("dir-name", "ctx")])

    assert t.paths == ["dir", "exe", "fifo", "link", "plain", "zz-hardlink"]
    d = t.by_path("dir")
    assert d.mode == MODE_DIR | MODE_SETGID | MODE_STICKY | 0o750
    assert d.size == 0
    assert t.by_path("exe").mode == MODE_SETUID | 0o755
    assert t.by_path("fifo").mode == MODE_NAMED_PIPE | 0o600
    link = t.by_path("link")
    assert link.mode == MODE_SYMLINK | 0o777 and link.linkname == "plain" and link.size == len("plain")
    plain = t.by_path("plain")
    assert plain.mode == 0o640
    assert plain.size == 300_000 and plain.modTime == 1_234_567_891_011_121_314
    assert plain.uid == os.getuid() and plain.gid == os.getgid()
    assert plain.linkname == ""
    # The second path of a hard link names the first; the receiver links instead of copying.
    assert t.by_path("zz-hardlink").linkname == "plain"
    assert t.data["plain"] == b"x" * 300_000


def test_go_file_mode_conversion() -> None:
    assert go_file_mode(stat.S_IFDIR | 0o755) == MODE_DIR | 0o755
    assert go_file_mode(stat.S_IFREG | 0o644) == 0o644
    assert go_file_mode(stat.S_IFLNK | 0o777) == MODE_SYMLINK | 0o777
    assert go_file_mode(stat.S_IFCHR | 0o666) == (1 << 26) | (1 << 21) | 0o666
    assert go_file_mode(stat.S_IFBLK | 0o660) == (1 << 26) | 0o660


def test_include_and_exclude_patterns(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    for rel in ["src/app.py", "src/app.log", "src/deep/x.log", "src/deep/y.py", "docs/a.md", "top.txt", "other.txt", "skip/c.txt", "skip/keep.txt"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    metadata = [
        ("dir-name", "ctx"),
        ("include-patterns", "src"),
        ("include-patterns", "top.txt"),
        ("include-patterns", "skip"),
        ("exclude-patterns", "**/*.log"),
        ("exclude-patterns", "skip"),
        ("exclude-patterns", "!skip/keep.txt"),
    ]
    with Session(local_dirs={"ctx": root}) as session:
        t = diffcopy(session.socket_path, metadata)
    # "skip" is excluded but holds a re-included file: it is sent, right before that file.
    assert t.paths == ["skip", "skip/keep.txt", "src", "src/app.py", "src/deep", "src/deep/y.py", "top.txt"]
    assert set(t.data) == {"skip/keep.txt", "src/app.py", "src/deep/y.py", "top.txt"}


def test_excluded_directory_without_exceptions_is_not_sent(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    for rel in ["node_modules/x/y.js", "keep/node_modules/z.js", "keep/a.js"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    with Session(local_dirs={"ctx": root}) as session:
        t = diffcopy(session.socket_path, [("dir-name", "ctx"), ("exclude-patterns", "**/node_modules")])
    assert t.paths == ["keep", "keep/a.js"]


def test_encoded_non_ascii_patterns(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    root.mkdir()
    for name in ["café.txt", "cafe.txt", "plain.txt"]:
        (root / name).write_text(name)
    metadata = [
        ("dir-name", "ctx"),
        ("include-patterns", quote_plus("caf*.txt")),
        ("include-patterns", quote_plus("café.txt")),
        ("include-patterns-encoded", "1"),
        ("exclude-patterns", "cafe.txt"),
    ]
    with Session(local_dirs={"ctx": root}) as session:
        t = diffcopy(session.socket_path, metadata)
    assert t.paths == ["café.txt"]


def test_patterns_are_case_sensitive_and_match_any_parent() -> None:
    pm = PatternMatcher(["**/foo", "*.PY"])
    assert pm.matches_or_parent_matches("a/b/foo/x")  # a parent below the first level matches
    assert pm.matches_or_parent_matches("foo")
    assert pm.matches_or_parent_matches("X.PY")
    assert not pm.matches_or_parent_matches("x.py")
    assert not PatternMatcher(["a/*"]).matches_or_parent_matches("b/a/c")
    assert PatternMatcher(["dir/**"]).matches_or_parent_matches("dir/x/y")
    assert PatternMatcher(["f\\*o"]).matches_or_parent_matches("f*o")
    assert not PatternMatcher(["f\\*o"]).matches_or_parent_matches("fxo")
    with pytest.raises(ValueError):
        PatternMatcher(["!"])


def test_followpaths_resolve_symlinks(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    (root / "real").mkdir(parents=True)
    (root / "real" / "Dockerfile").write_text("FROM scratch\n")
    (root / "real" / "other").write_text("not wanted\n")
    (root / "unrelated.txt").write_text("no\n")
    os.symlink("real/Dockerfile", root / "Dockerfile")
    with Session(local_dirs={"ctx": root}) as session:
        t = diffcopy(session.socket_path, [("dir-name", "ctx"), ("followpaths", "Dockerfile")])
    assert t.paths == ["Dockerfile", "real", "real/Dockerfile"]


def test_symlinks_are_not_followed_while_walking(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("do not send")
    root = tmp_path / "ctx"
    root.mkdir()
    os.symlink(outside, root / "escape")
    with Session(local_dirs={"ctx": root}) as session:
        t = diffcopy(session.socket_path, [("dir-name", "ctx")])
    assert t.paths == ["escape"]
    assert t.by_path("escape").linkname == str(outside)
    assert t.data == {}


def test_only_requested_files_are_sent(tree: Path) -> None:
    with Session(local_dirs={"ctx": tree}) as session:
        t = diffcopy(session.socket_path, [("dir-name", "ctx")], request_files=False)
    assert t.paths and t.data == {}


def test_request_for_a_directory_id_is_an_error(tree: Path) -> None:
    requests: queue.Queue[Packet | None] = queue.Queue()

    def outgoing():
        while (packet := requests.get()) is not None:
            yield packet

    with Session(local_dirs={"ctx": tree}) as session, grpc.insecure_channel(f"unix:{session.socket_path}") as channel:
        call = filesync_pb2_grpc.FileSyncStub(channel).DiffCopy(outgoing(), metadata=[("dir-name", "ctx")], timeout=30)
        with pytest.raises(grpc.RpcError) as info:
            for packet in call:
                if packet.type == Packet.PACKET_STAT and not packet.HasField("stat"):
                    requests.put(Packet(type=Packet.PACKET_REQ, ID=2))  # "a" is a directory
        requests.put(None)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "invalid file id 2" in info.value.details()


def test_unknown_dir_name_is_not_found(tree: Path) -> None:
    with Session(local_dirs={"ctx": tree}) as session, pytest.raises(grpc.RpcError) as info:
        diffcopy(session.socket_path, [("dir-name", "other")])
    assert info.value.code() is grpc.StatusCode.NOT_FOUND


def test_local_dir_must_exist(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not a directory"):
        Session(local_dirs={"ctx": tmp_path / "missing"})


# --- FileSend, Secrets, Health, lifecycle ---------------------------------------------


def test_filesend_writes_output_only_when_complete(tmp_path: Path) -> None:
    out = tmp_path / "out" / "image.tar"
    chunks = [b"a" * 1000, b"b" * 5000, b"c"]
    with Session(file_outputs={1: out}) as session, grpc.insecure_channel(f"unix:{session.socket_path}") as channel:
        stub = filesync_pb2_grpc.FileSendStub(channel)
        replies = list(
            stub.DiffCopy(
                iter(filesync_pb2.BytesMessage(data=c) for c in chunks),
                metadata=[("buildkit-attachable-exporter-id", "1"), ("exporter-md-foo", "bar")],
                timeout=30,
            )
        )
    assert replies == []
    assert out.read_bytes() == b"".join(chunks)
    assert os.listdir(out.parent) == ["image.tar"]


def test_filesend_cancelled_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "image.tar"
    release = threading.Event()

    def outgoing():
        yield filesync_pb2.BytesMessage(data=b"partial")
        release.wait(10)

    with Session(file_outputs={0: out}) as session, grpc.insecure_channel(f"unix:{session.socket_path}") as channel:
        call = filesync_pb2_grpc.FileSendStub(channel).DiffCopy(outgoing(), metadata=[("buildkit-attachable-exporter-id", "0")])
        deadline = time.monotonic() + 10
        while not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [p for p in tmp_path.iterdir() if p.name.endswith(".partial")], "temp file not created"
        call.cancel()
        release.set()
        deadline = time.monotonic() + 10
        while list(tmp_path.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.02)
    assert list(tmp_path.iterdir()) == []


def test_filesend_unknown_exporter(tmp_path: Path) -> None:
    with (
        Session(file_outputs={0: tmp_path / "x"}) as session,
        grpc.insecure_channel(f"unix:{session.socket_path}") as channel,
        pytest.raises(grpc.RpcError) as info,
    ):
        list(
            filesync_pb2_grpc.FileSendStub(channel).DiffCopy(
                iter([filesync_pb2.BytesMessage(data=b"x")]), metadata=[("buildkit-attachable-exporter-id", "3")], timeout=30
            )
        )
    assert info.value.code() is grpc.StatusCode.NOT_FOUND
    assert not (tmp_path / "x").exists()


def test_secrets_known_and_unknown() -> None:
    with Session(secrets={"tok": b"\x00value"}) as session, grpc.insecure_channel(f"unix:{session.socket_path}") as channel:
        stub = secrets_pb2_grpc.SecretsStub(channel)
        assert stub.GetSecret(secrets_pb2.GetSecretRequest(ID="tok"), timeout=10).data == b"\x00value"
        with pytest.raises(grpc.RpcError) as info:
            stub.GetSecret(secrets_pb2.GetSecretRequest(ID="other"), timeout=10)
    assert info.value.code() is grpc.StatusCode.NOT_FOUND
    assert "value" not in info.value.details()


def test_health_serving_and_advertised_methods(tmp_path: Path) -> None:
    with Session() as session, grpc.insecure_channel(f"unix:{session.socket_path}") as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        methods = session.advertised_methods()
    assert "/moby.filesync.v1.FileSync/DiffCopy" in methods
    assert "/moby.filesync.v1.FileSend/DiffCopy" in methods
    assert "/moby.buildkit.secrets.v1.Secrets/GetSecret" in methods
    assert "/grpc.health.v1.Health/Check" in methods
    assert not any("Auth" in m for m in methods)  # no provider given: the daemon pulls anonymously
    headers = session.headers()
    assert headers[0] == ("X-Docker-Expose-Session-Uuid", session.id)
    assert [v for k, v in headers if k == "X-Docker-Expose-Session-Grpc-Method"] == methods


def test_close_removes_socket_dir_and_threads(tree: Path) -> None:
    before = set(threading.enumerate())  # other fixtures' threads (e.g. a mirror server) may be running
    session = Session(local_dirs={"ctx": tree})
    socket_dir = os.path.dirname(session.socket_path)
    assert stat.S_IMODE(os.stat(socket_dir).st_mode) == 0o700
    diffcopy(session.socket_path, [("dir-name", "ctx")])
    session.close()
    session.close()  # idempotent
    assert not os.path.exists(socket_dir)
    assert not [t.name for t in set(threading.enumerate()) - before if t.name.startswith("llbgen-")]
