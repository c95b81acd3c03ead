"""The ``local`` exporter's receiver, driven like the daemon drives it: over a real gRPC
channel to the session's socket, FileSend.DiffCopy carrying fsutil Packets.

The streams come from a sender built like fsutil's send.go (STATs from the same
walk FileSync uses, four workers answering REQs with interleaved DATA chunks,
FIN answered with FIN) and from FileSync's own sender; hostile streams are
written by hand.
"""

from __future__ import annotations

import hashlib
import os
import queue
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from llbgen._proto.fsutil import stat_pb2, wire_pb2
from llbgen._proto.session import filesync_pb2, filesync_pb2_grpc
from llbgen.builder.session import Session
from llbgen.builder.session.filereceive import posix_mode
from llbgen.builder.session.filesync import _send
from llbgen.builder.session.walk import (
    MODE_DIR,
    MODE_SETGID,
    MODE_SETUID,
    MODE_STICKY,
    MODE_SYMLINK,
    FilteredWalk,
    can_request_data,
)
from llbgen.errors import UsageError

Packet = wire_pb2.Packet
Stat = stat_pb2.Stat
METHOD = "/moby.filesync.v1.FileSend/DiffCopy"
EXPORTER_ID = "buildkit-attachable-exporter-id"


# --- a sender like fsutil's ---------------------------------------------------------


@dataclass
class Outcome:
    code: grpc.StatusCode | None
    details: str
    received: list = field(default_factory=list)

    @property
    def reqs(self) -> list[int]:
        return [p.ID for p in self.received if p.type == Packet.PACKET_REQ]

    @property
    def errors(self) -> list[str]:
        return [p.data.decode() for p in self.received if p.type == Packet.PACKET_ERR]


def walk_stats(root: Path) -> tuple[list, dict[str, str]]:
    entries = list(FilteredWalk(root))
    return [e.stat for e in entries], {e.stat.path: e.abspath for e in entries}


def read_file(paths: dict[str, str]) -> Callable[[str], bytes]:
    return lambda rel: Path(paths[rel]).read_bytes()


def fsutil_send(
    socket_path: str,
    stats: list,
    read: Callable[[str], bytes],
    *,
    exporter: str = "0",
    chunk: int = 32 * 1024,
    workers: int = 4,
    end_listing: bool = True,
    wait_for_reqs: bool = False,
    extra: list | None = None,
    after_fin: str = "stop",
    on_packet: Callable[[Packet, grpc.Future], None] | None = None,
) -> Outcome:
    """Play the daemon (fsutil send.go): STAT each entry, empty STAT, answer REQs, FIN for FIN.

    ``wait_for_reqs``: hold back the end of the listing until every file was
    requested (the receiver must ask as it goes). ``extra``: raw packets sent
    after the STATs. ``after_fin``: "stop" (like Go: no half-close, the call is
    dropped), "close" (half-close and wait for the status).
    """
    out: queue.Queue[Packet | None] = queue.Queue()
    files = {i: s.path for i, s in enumerate(stats) if can_request_data(s.mode) and not s.linkname}
    wanted = set(files)
    all_requested = threading.Event()
    if not wanted:
        all_requested.set()
    work: queue.Queue[int | None] = queue.Queue()

    def requests() -> Iterator[Packet]:
        while (p := out.get()) is not None:
            yield p

    def worker() -> None:
        while (fid := work.get()) is not None:
            data = read(files[fid])
            for i in range(0, len(data), chunk):
                out.put(Packet(type=Packet.PACKET_DATA, ID=fid, data=data[i : i + chunk]))
            out.put(Packet(type=Packet.PACKET_DATA, ID=fid))

    outcome = Outcome(None, "")
    with grpc.insecure_channel(f"unix:{socket_path}") as channel:
        method = channel.stream_stream(METHOD, request_serializer=Packet.SerializeToString, response_deserializer=Packet.FromString)
        call = method(requests(), metadata=[(EXPORTER_ID, exporter)], timeout=60)
        pool = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
        for t in pool:
            t.start()

        def read_replies() -> None:
            try:
                for p in call:
                    outcome.received.append(p)
                    if on_packet is not None:
                        on_packet(p, call)
                    if p.type == Packet.PACKET_REQ:
                        wanted.discard(p.ID)
                        if not wanted:
                            all_requested.set()
                        work.put(p.ID)
                    elif p.type == Packet.PACKET_FIN:
                        out.put(Packet(type=Packet.PACKET_FIN))
                        if after_fin == "stop":
                            return
                        out.put(None)
            except grpc.RpcError:
                pass
            finally:
                all_requested.set()

        reader = threading.Thread(target=read_replies, daemon=True)
        reader.start()
        for s in stats:
            out.put(Packet(type=Packet.PACKET_STAT, stat=s))
        for p in extra or []:
            out.put(p)
        if wait_for_reqs:
            assert all_requested.wait(30), "the receiver did not request every file before the end of the listing"
        if end_listing:
            out.put(Packet(type=Packet.PACKET_STAT))
        reader.join(60)
        for _ in pool:
            work.put(None)
        if after_fin == "stop" and outcome.received and outcome.received[-1].type == Packet.PACKET_FIN:
            # The daemon's CopyToCaller returns after FIN and its context is cancelled.
            call.cancel()
            outcome.code, outcome.details = grpc.StatusCode.OK, ""
        else:
            outcome.code, outcome.details = call.code(), call.details() or ""
        out.put(None)
        for t in pool:
            t.join(10)
    return outcome


def filesync_send(socket_path: str, root: Path, exporter: str = "0") -> Outcome:
    """The same stream made by FileSync's own sender (filesync._send) — all STATs, then files one by one."""

    class Context:
        def is_active(self) -> bool:
            return True

        def abort(self, code, details):
            raise RuntimeError(details)

    ready = threading.Event()
    holder: dict = {}
    received: list = []

    def replies() -> Iterator[Packet]:
        ready.wait(10)
        for p in holder["call"]:
            received.append(p)
            yield p

    with grpc.insecure_channel(f"unix:{socket_path}") as channel:
        method = channel.stream_stream(METHOD, request_serializer=Packet.SerializeToString, response_deserializer=Packet.FromString)
        holder["call"] = call = method(_send(FilteredWalk(root), replies(), Context()), metadata=[(EXPORTER_ID, exporter)], timeout=60)
        ready.set()
        return Outcome(call.code(), call.details() or "", received)


# --- comparing trees ------------------------------------------------------------------


def snapshot(root: Path) -> dict[str, tuple]:
    """Everything the receiver must reproduce, by relative path (hard links by group)."""
    out: dict[str, tuple] = {}
    inodes: dict[int, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                extra: object = os.readlink(p)
            elif stat.S_ISREG(st.st_mode):
                first = inodes.setdefault(st.st_ino, rel)
                extra = (hashlib.sha256(Path(p).read_bytes()).hexdigest(), first)
            else:
                extra = None
            mode = st.st_mode if not stat.S_ISLNK(st.st_mode) else stat.S_IFLNK
            out[rel] = (mode, st.st_mtime_ns, extra)
    return out


def xattrs_supported(path: Path) -> bool:
    probe = path / ".xattr-probe"
    probe.touch()
    try:
        os.setxattr(probe, "user.llbgen", b"1")
        return True
    except OSError:
        return False
    finally:
        probe.unlink()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A tree with every kind of entry the local exporter sends."""
    root = tmp_path / "src"
    (root / "a" / "b" / "c").mkdir(parents=True)
    (root / "a" / "b" / "c" / "deep.txt").write_text("deep\n")
    (root / "bin").mkdir()
    tool = root / "bin" / "tool"
    tool.write_bytes(b"#!/bin/sh\necho tool\n")
    tool.chmod(0o755)
    suid = root / "bin" / "suid"
    suid.write_bytes(b"setuid\n")
    suid.chmod(0o4755)
    (root / "empty").touch()
    (root / "big.bin").write_bytes(os.urandom(1_500_000))
    ro = root / "readonly.txt"
    ro.write_text("read only\n")
    ro.chmod(0o444)
    os.link(tool, root / "hardlink")
    os.symlink("bin/tool", root / "link-rel")
    os.symlink("/etc/hostname", root / "link-abs")
    os.symlink("missing", root / "link-dangling")
    os.mkfifo(root / "fifo", 0o640)
    many = root / "many"
    many.mkdir()
    for i in range(150):
        (many / f"f{i:03}").write_bytes(os.urandom(i * 97))
    sticky = root / "tmp"
    sticky.mkdir()
    sticky.chmod(0o1777)
    locked = root / "locked"
    locked.mkdir()
    (locked / "inside").write_text("in a read-only dir\n")
    if xattrs_supported(root):
        os.setxattr(root / "a" / "b" / "c" / "deep.txt", "user.llbgen", b"value")
    # Distinct, old times everywhere; directories last so their children do not touch them.
    t = 1_500_000_000_123_456_789
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames + dirnames:
            t += 1_000_000_007
            os.utime(os.path.join(dirpath, name), ns=(t, t), follow_symlinks=False)
    locked.chmod(0o555)
    return root


def staging_leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if p.name.endswith(".partial")]


def session_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("llbgen-session")]


# --- round trips ------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [32 * 1024, 1000], ids=["go-chunks", "small-interleaved-chunks"])
def test_tree_round_trip_with_fsutil_style_sender(source: Path, tmp_path: Path, chunk: int) -> None:
    dest = tmp_path / "out" / "dest"
    stats, paths = walk_stats(source)
    with Session(dir_outputs={0: dest}) as session:
        outcome = fsutil_send(session.socket_path, stats, read_file(paths), chunk=chunk, wait_for_reqs=True)
    assert outcome.code is grpc.StatusCode.OK, outcome.details
    assert snapshot(dest) == snapshot(source)
    # Ids count every STAT; only regular files that are not hard links are asked for.
    expected = {i for i, s in enumerate(stats) if s.mode & (MODE_DIR | MODE_SYMLINK) == 0 and not s.linkname
                and stat.S_ISREG(os.lstat(paths[s.path]).st_mode)}
    assert sorted(outcome.reqs) == sorted(expected)
    assert outcome.received[-1].type == Packet.PACKET_FIN
    assert os.stat(dest / "hardlink").st_ino == os.stat(dest / "bin" / "tool").st_ino
    assert staging_leftovers(dest.parent) == []
    if xattrs_supported(tmp_path):
        assert os.getxattr(dest / "a" / "b" / "c" / "deep.txt", "user.llbgen") == b"value"
    # The top directory is an ordinary new directory.
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o777 & ~_umask()
    assert os.stat(dest).st_uid == os.getuid()


def test_tree_round_trip_with_filesync_sender(source: Path, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    with Session(dir_outputs={0: dest}) as session:
        outcome = filesync_send(session.socket_path, source)
    assert outcome.code is grpc.StatusCode.OK, outcome.details
    assert snapshot(dest) == snapshot(source)


def test_half_close_after_fin_is_fine(source: Path, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    stats, paths = walk_stats(source)
    with Session(dir_outputs={0: dest}) as session:
        outcome = fsutil_send(session.socket_path, stats, read_file(paths), after_fin="close")
    assert outcome.code is grpc.StatusCode.OK, outcome.details
    assert snapshot(dest) == snapshot(source)


def test_empty_tree(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    with Session(dir_outputs={0: dest}) as session:
        outcome = fsutil_send(session.socket_path, [], lambda rel: b"")
    assert outcome.code is grpc.StatusCode.OK, outcome.details
    assert dest.is_dir() and list(dest.iterdir()) == []


def test_empty_existing_dest_is_replaced_and_keeps_its_mode(source: Path, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    dest.chmod(0o750)
    stats, paths = walk_stats(source)
    with Session(dir_outputs={0: dest}) as session:
        outcome = fsutil_send(session.socket_path, stats, read_file(paths))
    assert outcome.code is grpc.StatusCode.OK, outcome.details
    assert snapshot(dest) == snapshot(source)
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o750


def test_dest_symlink_to_an_empty_dir_fills_the_target(source: Path, tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir()
    os.symlink(target, tmp_path / "dest")
    stats, paths = walk_stats(source)
    with Session(dir_outputs={0: tmp_path / "dest"}) as session:
        outcome = fsutil_send(session.socket_path, stats, read_file(paths))
    assert outcome.code is grpc.StatusCode.OK, outcome.details
    assert (tmp_path / "dest").is_symlink()
    assert snapshot(target) == snapshot(source)


def test_unusable_dests_are_refused_before_any_build(tmp_path: Path) -> None:
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").touch()
    a_file = tmp_path / "file"
    a_file.touch()
    with pytest.raises(UsageError, match="not empty"):
        Session(dir_outputs={0: full})
    with pytest.raises(UsageError, match="not a directory"):
        Session(dir_outputs={0: a_file})
    with pytest.raises(UsageError, match="two outputs"):
        Session(dir_outputs={0: tmp_path / "same", 1: tmp_path / "same"})
    assert session_threads() == []


def test_dest_filled_during_the_build_fails_the_export(source: Path, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    stats, paths = walk_stats(source)
    with Session(dir_outputs={0: dest}) as session:
        dest.mkdir()
        (dest / "intruder").touch()
        outcome = fsutil_send(session.socket_path, stats, read_file(paths))
    assert outcome.code is grpc.StatusCode.UNKNOWN
    assert "not an empty directory" in outcome.details
    assert outcome.errors and "not an empty directory" in outcome.errors[0]
    assert os.listdir(dest) == ["intruder"]
    assert staging_leftovers(tmp_path) == []


def test_two_streams_of_one_export_are_merged(tmp_path: Path) -> None:
    """The local exporter sends one stream per platform (platform-split: one subdirectory each)."""
    dest = tmp_path / "dest"
    trees = {}
    for plat in ("linux_amd64", "linux_arm64"):
        root = tmp_path / plat
        (root / plat / "etc").mkdir(parents=True)
        (root / plat / "etc" / "arch").write_text(plat)
        trees[plat] = walk_stats(root)
    with Session(dir_outputs={0: dest}) as session:
        results = [None, None]

        def run(i: int, plat: str) -> None:
            stats, paths = trees[plat]
            results[i] = fsutil_send(session.socket_path, stats, read_file(paths))

        threads = [threading.Thread(target=run, args=(i, p)) for i, p in enumerate(trees)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert all(r is not None and r.code is grpc.StatusCode.OK for r in results), results
    assert sorted(os.listdir(dest)) == ["linux_amd64", "linux_arm64"]
    assert (dest / "linux_arm64" / "etc" / "arch").read_text() == "linux_arm64"
    assert staging_leftovers(tmp_path) == []


def test_file_and_directory_exports_share_the_method(tmp_path: Path) -> None:
    tar = tmp_path / "out.tar"
    dest = tmp_path / "dest"
    src = tmp_path / "src"
    src.mkdir()
    (src / "hello").write_text("hi\n")
    stats, paths = walk_stats(src)
    with Session(file_outputs={0: tar}, dir_outputs={1: dest}) as session:
        with grpc.insecure_channel(f"unix:{session.socket_path}") as channel:
            replies = list(filesync_pb2_grpc.FileSendStub(channel).DiffCopy(
                iter([filesync_pb2.BytesMessage(data=b"tar bytes")]), metadata=[(EXPORTER_ID, "0")], timeout=30))
        assert replies == []
        outcome = fsutil_send(session.socket_path, stats, read_file(paths), exporter="1")
        with grpc.insecure_channel(f"unix:{session.socket_path}") as channel, pytest.raises(grpc.RpcError) as info:
            list(filesync_pb2_grpc.FileSendStub(channel).DiffCopy(
                iter([filesync_pb2.BytesMessage(data=b"x")]), metadata=[(EXPORTER_ID, "7")], timeout=30))
    assert tar.read_bytes() == b"tar bytes"
    assert outcome.code is grpc.StatusCode.OK, outcome.details
    assert (dest / "hello").read_text() == "hi\n"
    assert info.value.code() is grpc.StatusCode.NOT_FOUND


# --- failures leave nothing -------------------------------------------------------------


def _assert_nothing_left(dest: Path) -> None:
    assert not dest.exists()
    assert staging_leftovers(dest.parent) == []


def test_sender_error_mid_stream(source: Path, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    stats, paths = walk_stats(source)
    with Session(dir_outputs={0: dest}) as session:
        outcome = fsutil_send(session.socket_path, stats, read_file(paths), end_listing=False,
                              extra=[Packet(type=Packet.PACKET_ERR, data=b"walk failed: boom")])
    assert outcome.code is grpc.StatusCode.UNKNOWN
    assert "error from sender: walk failed: boom" in outcome.details
    _assert_nothing_left(dest)


def test_sender_cancels_mid_transfer(source: Path, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    stats, paths = walk_stats(source)
    seen = {"data": 0}

    def cancel_after_some_data(packet: Packet, call) -> None:
        if packet.type == Packet.PACKET_REQ:
            seen["data"] += 1
            if seen["data"] == 20:
                call.cancel()

    with Session(dir_outputs={0: dest}) as session:
        outcome = fsutil_send(session.socket_path, stats, read_file(paths), on_packet=cancel_after_some_data)
        assert outcome.code is grpc.StatusCode.CANCELLED
        deadline = time.monotonic() + 10
        while staging_leftovers(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.02)
        _assert_nothing_left(dest)
    assert session_threads() == []


def test_stream_ending_without_fin(source: Path, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    stats, paths = walk_stats(source)
    with Session(dir_outputs={0: dest}) as session, grpc.insecure_channel(f"unix:{session.socket_path}") as channel:
        method = channel.stream_stream(METHOD, request_serializer=Packet.SerializeToString, response_deserializer=Packet.FromString)
        # Half-close right after the listing: the requested files never come.
        packets = [Packet(type=Packet.PACKET_STAT, stat=s) for s in stats] + [Packet(type=Packet.PACKET_STAT)]
        call = method(iter(packets), metadata=[(EXPORTER_ID, "0")], timeout=30)
        received = []
        with pytest.raises(grpc.RpcError) as info:
            for p in call:
                received.append(p)
    assert info.value.code() is grpc.StatusCode.UNKNOWN
    assert "ended before the transfer was complete" in info.value.details()
    assert received[-1].type == Packet.PACKET_ERR
    _assert_nothing_left(dest)


def _st(path: str, mode: int, **kw) -> Stat:
    return Stat(path=path, mode=mode, modTime=1_600_000_000_000_000_000, **kw)


FILE = 0o644
DIR = MODE_DIR | 0o755


@pytest.mark.parametrize(
    ("stats", "extra", "message"),
    [
        ([_st("/etc", DIR)], [], "absolute path"),
        ([_st("../escape", FILE)], [], "escapes the destination"),
        ([_st("a", DIR), _st("a/../b", FILE)], [], "unclean path"),
        ([_st("a/b", FILE)], [], "out of order"),
        ([_st("link", MODE_SYMLINK | 0o777, linkname="/etc"), _st("link/passwd", FILE)], [], "out of order"),
        ([_st("x", FILE), _st("x", FILE)], [], "sent twice"),
        ([_st("hl", FILE, linkname="nowhere")], [], "invalid link hl to unknown path"),
        ([_st("d", DIR), _st("hl", FILE, linkname="d")], [], "invalid link hl to unknown path"),
        ([_st("d", DIR)], [Packet(type=Packet.PACKET_DATA, ID=0, data=b"x")], "invalid file request 0"),
        ([_st("f", FILE)], [Packet(type=Packet.PACKET_DATA, ID=9, data=b"x")], "invalid file request 9"),
        ([_st("s", 1 << 24 | 0o755)], [], "unsupported file type"),
        ([_st("", FILE)], [], "invalid path"),
    ],
    ids=["absolute", "dotdot", "unclean", "no-parent", "through-symlink", "duplicate", "hardlink-unknown",
         "hardlink-to-dir", "data-for-dir", "data-unknown-id", "socket", "empty-path"],
)
def test_hostile_streams_are_refused(tmp_path: Path, stats: list, extra: list, message: str) -> None:
    dest = tmp_path / "dest"
    with Session(dir_outputs={0: dest}) as session:
        outcome = fsutil_send(session.socket_path, stats, lambda rel: b"content", end_listing=False, extra=extra)
    assert outcome.code is grpc.StatusCode.UNKNOWN, outcome
    assert message in outcome.details
    assert outcome.errors and message in outcome.errors[0]
    _assert_nothing_left(dest)
    assert not (tmp_path / "etc").exists() and not (tmp_path / "escape").exists()


def test_failed_build_rolls_back_a_finished_export(source: Path, tmp_path: Path) -> None:
    """Leaving the session by an exception (build failed after the export) removes the result."""
    fresh, emptied = tmp_path / "fresh", tmp_path / "emptied"
    emptied.mkdir()
    emptied.chmod(0o700)
    stats, paths = walk_stats(source)
    with pytest.raises(RuntimeError, match="later failure"), Session(dir_outputs={0: fresh, 1: emptied}) as session:
        for exporter in ("0", "1"):
            outcome = fsutil_send(session.socket_path, stats, read_file(paths), exporter=exporter)
            assert outcome.code is grpc.StatusCode.OK, outcome.details
        assert (fresh / "bin" / "tool").exists() and (emptied / "locked" / "inside").exists()
        raise RuntimeError("later failure")
    assert not fresh.exists()
    assert emptied.is_dir() and list(emptied.iterdir()) == []
    assert stat.S_IMODE(os.stat(emptied).st_mode) == 0o700
    assert staging_leftovers(tmp_path) == []


def test_plain_close_keeps_the_export(source: Path, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    stats, paths = walk_stats(source)
    session = Session(dir_outputs={0: dest})
    outcome = fsutil_send(session.socket_path, stats, read_file(paths))
    session.close()
    assert outcome.code is grpc.StatusCode.OK
    assert snapshot(dest) == snapshot(source)


def test_close_during_a_stalled_transfer_leaves_nothing(source: Path, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    stats, paths = walk_stats(source)
    session = Session(dir_outputs={0: dest})
    result: list[Outcome] = []
    # The listing never ends: the receiver waits for more.
    sender = threading.Thread(target=lambda: result.append(
        fsutil_send(session.socket_path, stats, read_file(paths), end_listing=False)), daemon=True)
    sender.start()
    deadline = time.monotonic() + 10
    while not staging_leftovers(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert staging_leftovers(tmp_path)
    time.sleep(0.3)
    started = time.monotonic()
    session.close()
    assert time.monotonic() - started < 10
    sender.join(30)
    assert result and result[0].code is not grpc.StatusCode.OK
    _assert_nothing_left(dest)
    assert session_threads() == []


# --- helpers ------------------------------------------------------------------------------


def test_posix_mode_from_go_file_mode() -> None:
    assert posix_mode(0o755) == 0o755
    assert posix_mode(MODE_DIR | MODE_STICKY | 0o777) == 0o1777
    assert posix_mode(MODE_SETUID | MODE_SETGID | 0o755) == 0o6755


def _umask() -> int:
    from llbgen.builder.session.filesend import _umask as umask

    return umask()
