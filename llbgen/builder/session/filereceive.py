"""FileSend.DiffCopy for the ``local`` exporter: the daemon sends us a directory tree.

The roles of FileSync flip here: the daemon is fsutil's *sender* and we are the
*receiver* (BuildKit: exporter/local → filesync.CopyToCaller → fsutil.Send on
its side; SyncTarget.DiffCopy → syncTargetDiffCopy → fsutil.ReceiveRoot on the
client's). FileSend.DiffCopy is declared with BytesMessage, but for a directory
export the same stream carries fsutil Packets; server.py picks the mode by the
exporter id.

Receiver protocol (fsutil receive.go, diskwriter.go, validator.go, hardlinks.go):

* The sender walks its tree and sends one STAT per entry, parents before
  children; every STAT gets the next id, directories included. An empty STAT
  ends the listing.
* A regular file is created as soon as its STAT arrives and asked for at once
  with REQ{id}. fsutil's receiver puts no limit on requests in flight; the
  sender bounds itself (four workers behind a 128-deep queue) and our reads of
  the stream are flow-controlled, so nothing piles up in memory. A hard link
  (regular mode plus ``linkname`` naming an earlier file) is linked, never asked for.
* DATA{id} chunks (32 KiB in Go) of up to four files arrive interleaved; an
  empty DATA{id} ends a file.
* When the listing is over and every file is complete, the receiver sends FIN
  and the sender answers FIN — then the daemon drops the call without a
  half-close (its context ends with the export). ERR from either side aborts
  with its text.

Where we differ from fsutil, on purpose:

* Everything lands in a staging directory beside DEST and is moved into place
  only when the transfer is complete — *before* our FIN, so a failure to move is
  still reported to the daemon (as ERR) and fails the build. A stream that
  fails or is cancelled leaves nothing behind.
* New entries are made owner-writable (files 0600, directories 0700) and get
  their real mode and times when their content is complete (directories at the
  very end), so read-only directories and setuid files survive a non-root receiver.
* Ownership is not copied: BuildKit's own client rewrites every uid/gid to the
  caller's (filesync.syncTargetDiffCopy), so the tree belongs to whoever runs
  llbgen — which is what creating the entries ourselves gives.
* Entry order is checked only as far as safety needs: each parent must be a
  directory this stream created (so no entry is written through a symlink), no
  path twice, no absolute or escaping paths. fsutil additionally rejects
  entries that are not in sorted order.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import posixpath
import queue
import shutil
import stat as pystat
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc
from google.protobuf.message import DecodeError

from llbgen._proto.fsutil import stat_pb2, wire_pb2
from llbgen.builder.session.filesend import _umask
from llbgen.builder.session.walk import (
    MODE_CHAR_DEVICE,
    MODE_DEVICE,
    MODE_DIR,
    MODE_NAMED_PIPE,
    MODE_SETGID,
    MODE_SETUID,
    MODE_STICKY,
    MODE_SYMLINK,
    MODE_TYPE,
)
from llbgen.errors import UsageError

log = logging.getLogger(__name__)

Packet = wire_pb2.Packet

# How long Session.close waits for a receiver whose stream the server has just cancelled.
JOIN_TIMEOUT = 30.0


class ReceiveError(Exception):
    """The transfer cannot be accepted; the text goes back to the daemon in an ERR packet."""


def posix_mode(mode: int) -> int:
    """Permission bits for chmod from a Go os.FileMode."""
    perm = mode & 0o777
    if mode & MODE_SETUID:
        perm |= pystat.S_ISUID
    if mode & MODE_SETGID:
        perm |= pystat.S_ISGID
    if mode & MODE_STICKY:
        perm |= pystat.S_ISVTX
    return perm


@dataclass
class _File:
    path: str
    stat: stat_pb2.Stat
    fd: int | None = None


class TreeReceiver:
    """fsutil's receiver as a state machine: feed it packets, send what it returns.

    ``on_complete`` runs once every entry is on disk with its final metadata and
    before FIN is returned; if it raises, the transfer fails.
    """

    def __init__(self, root: str, on_complete: Callable[[], None] = lambda: None):
        self.root = root
        self._on_complete = on_complete
        self._next_id = 0
        self._dirs: set[str] = {""}  # relative paths of directories this stream made
        self._dir_stats: list[tuple[str, stat_pb2.Stat]] = []
        self._regular: set[str] = set()  # hard link targets
        self._seen: set[str] = set()
        self._pending: dict[int, _File] = {}  # requested, content not complete yet
        self._listing_done = False
        self.complete = False  # on disk, on_complete done, FIN handed out
        self.finished = False  # the sender's FIN came back

    def handle(self, packet: Packet) -> list[Packet]:
        kind = packet.type
        if kind == Packet.PACKET_STAT:
            if not packet.HasField("stat"):
                if self._listing_done:
                    raise ReceiveError("the sender ended its listing twice")
                self._listing_done = True
                return self._maybe_complete()
            if self._listing_done:
                raise ReceiveError(f"stat for {packet.stat.path!r} after the end of the listing")
            return self._add(packet.stat)
        if kind == Packet.PACKET_DATA:
            return self._data(packet)
        if kind == Packet.PACKET_FIN:
            if not self.complete:
                raise ReceiveError("the sender finished before the transfer was complete")
            self.finished = True
            return []
        if kind == Packet.PACKET_ERR:
            raise ReceiveError(f"error from sender: {packet.data.decode(errors='replace')}")
        return []  # REQ is the receiver's to send; fsutil ignores anything else too

    def close(self) -> None:
        """Close files still open (a transfer that did not finish)."""
        for f in self._pending.values():
            if f.fd is not None:
                with contextlib.suppress(OSError):
                    os.close(f.fd)
                f.fd = None

    # --- entries -------------------------------------------------------------------

    def _add(self, st: stat_pb2.Stat) -> list[Packet]:
        file_id = self._next_id
        self._next_id += 1
        rel = self._check_path(st.path)
        path = os.path.join(self.root, rel)
        mode = st.mode
        try:
            if mode & MODE_DIR:
                os.mkdir(path, 0o700)
                self._dirs.add(rel)
                self._dir_stats.append((path, st))
                return []
            if mode & MODE_SYMLINK:
                os.symlink(st.linkname, path)
                os.utime(path, ns=(st.modTime, st.modTime), follow_symlinks=False)
                return []
            if mode & MODE_NAMED_PIPE:
                os.mkfifo(path, 0o600)
                _apply_metadata(path, st)
                return []
            if mode & MODE_DEVICE:
                kind = pystat.S_IFCHR if mode & MODE_CHAR_DEVICE else pystat.S_IFBLK
                try:
                    os.mknod(path, kind | 0o600, os.makedev(st.devmajor, st.devminor))
                except PermissionError:
                    raise ReceiveError(f"cannot create device {rel}: creating device nodes needs root") from None
                _apply_metadata(path, st)
                return []
            if mode & MODE_TYPE:
                raise ReceiveError(f"{rel}: unsupported file type (mode {mode:#o})")
            if st.linkname:
                target = self._check_link(rel, st.linkname)
                os.link(os.path.join(self.root, target), path, follow_symlinks=False)
                return []
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            os.close(fd)
            self._regular.add(rel)
            self._pending[file_id] = _File(path, st)
            return [Packet(type=Packet.PACKET_REQ, ID=file_id)]
        except OSError as exc:
            raise ReceiveError(f"cannot create {rel}: {exc.strerror or exc}") from None

    def _check_path(self, p: str) -> str:
        """fsutil's Validator, as far as safety needs it."""
        if not p or "\x00" in p or p == ".":
            raise ReceiveError(f"invalid path {p!r}")
        if p.startswith("/"):
            raise ReceiveError(f"absolute path {p!r}")
        if posixpath.normpath(p) != p:
            raise ReceiveError(f"unclean path {p!r}")
        if p == ".." or p.startswith("../"):
            raise ReceiveError(f"path {p!r} escapes the destination")
        if p in self._seen:
            raise ReceiveError(f"path {p!r} sent twice")
        if posixpath.dirname(p) not in self._dirs:
            raise ReceiveError(f"changes out of order: the parent directory of {p!r} was not sent before it")
        self._seen.add(p)
        return p

    def _check_link(self, rel: str, linkname: str) -> str:
        if linkname not in self._regular:  # fsutil Hardlinks validator
            raise ReceiveError(f"invalid link {rel} to unknown path: {linkname!r}")
        return linkname

    # --- content -------------------------------------------------------------------

    def _data(self, packet: Packet) -> list[Packet]:
        f = self._pending.get(packet.ID)
        if f is None:
            raise ReceiveError(f"invalid file request {packet.ID}")
        try:
            if packet.data:
                if f.fd is None:
                    f.fd = os.open(f.path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
                _write_all(f.fd, packet.data)
                return []
            if f.fd is not None:
                fd, f.fd = f.fd, None
                os.close(fd)
            del self._pending[packet.ID]
            _apply_metadata(f.path, f.stat)
        except OSError as exc:
            raise ReceiveError(f"cannot write {f.stat.path}: {exc.strerror or exc}") from None
        return self._maybe_complete()

    def _maybe_complete(self) -> list[Packet]:
        if not self._listing_done or self._pending or self.complete:
            return []
        # Children before parents: a parent's mode may take away the write bit we needed.
        for path, st in reversed(self._dir_stats):
            try:
                _apply_metadata(path, st)
            except OSError as exc:
                raise ReceiveError(f"cannot set metadata of {st.path}: {exc.strerror or exc}") from None
        self._on_complete()
        self.complete = True
        return [Packet(type=Packet.PACKET_FIN)]


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _apply_metadata(path: str, st: stat_pb2.Stat) -> None:
    """fsutil rewriteMetadata without the chown: xattrs, mode, times (never for symlinks)."""
    for key, value in st.xattrs.items():
        with contextlib.suppress(OSError):  # fsutil ignores these errors too
            os.setxattr(path, key, value)
    os.chmod(path, posix_mode(st.mode))
    os.utime(path, ns=(st.modTime, st.modTime), follow_symlinks=False)


# --- the exports of one session ------------------------------------------------------


class _End:
    pass


@dataclass
class _Abort:
    message: str


_END = _End()


class DirOutputs:
    """The session's ``local`` exports: exporter index → destination directory.

    Each DiffCopy stream receives into its own staging directory beside DEST and
    moves it into place when complete. The local exporter sends one stream per
    platform of a multi-platform result (each in its own subdirectory, or all at
    the top when platform-split is off), so a later stream of the same session is
    merged into the DEST an earlier one created. ``close(rollback=True)`` (a
    failed or cancelled build) removes what this session put in place.
    """

    def __init__(self, outputs: Mapping[int, Path]):
        self._dests: dict[int, Path] = {}
        owners: dict[Path, int] = {}
        for index, given in outputs.items():
            dest = Path(os.path.realpath(Path(given).expanduser()))
            _check_dest(dest, given)
            if dest in owners:
                raise UsageError(f"--output type=local: two outputs write to {given}")
            owners[dest] = int(index)
            self._dests[int(index)] = dest
        self._lock = threading.Lock()
        self._promoted: dict[Path, int | None] = {}  # DEST → mode of the empty dir it replaced
        self._staging: set[str] = set()
        self._workers: set[threading.Thread] = set()
        self._closed = False

    def __contains__(self, index: object) -> bool:
        return index in self._dests

    def serve(self, index: int, requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        """Receive into the destination of exporter ``index``; requests and responses are raw Packets."""
        dest = self._dests[index]
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            staging = tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent)
        except OSError as exc:
            context.abort(grpc.StatusCode.UNKNOWN, f"cannot write beside {dest}: {exc.strerror or exc}")
        outgoing: queue.SimpleQueue[bytes | _Abort | _End] = queue.SimpleQueue()
        # The receiving runs on its own thread so that it never waits on our sends:
        # sends are flow-controlled by a daemon that may itself wait for its data to
        # be read before it reads our REQs.
        worker = threading.Thread(
            target=self._receive,
            args=(dest, staging, requests, outgoing),
            name="llbgen-session-filereceive",
            daemon=True,
        )
        with self._lock:
            if self._closed:
                _force_rmtree(staging)
                context.abort(grpc.StatusCode.CANCELLED, "the session is closing")
            self._staging.add(staging)
            self._workers.add(worker)
        worker.start()
        return _respond(outgoing, context)

    def _receive(self, dest: Path, staging: str, requests: Iterator[bytes], outgoing: queue.SimpleQueue) -> None:
        receiver = TreeReceiver(staging, on_complete=lambda: self._promote(dest, staging))
        error: str | None = None
        try:
            for raw in requests:
                try:
                    packet = Packet.FromString(raw)
                except DecodeError:
                    raise ReceiveError("malformed packet from the sender") from None
                for out in receiver.handle(packet):
                    outgoing.put(out.SerializeToString())
                if receiver.finished:
                    break
            else:
                if not receiver.complete:
                    raise ReceiveError("the stream ended before the transfer was complete")
        except grpc.RpcError:
            log.debug("local export to %s was cancelled", dest)
        except ReceiveError as exc:
            error = str(exc)
        except Exception as exc:  # a bug must still fail the export, not hang it
            log.debug("local export to %s failed", dest, exc_info=True)
            error = f"{type(exc).__name__}: {exc}"
        finally:
            receiver.close()
            if not receiver.complete:
                _force_rmtree(staging)
            with self._lock:
                self._staging.discard(staging)
                self._workers.discard(threading.current_thread())
            if error is not None:
                log.debug("local export to %s failed: %s", dest, error)
                outgoing.put(Packet(type=Packet.PACKET_ERR, data=error.encode()).SerializeToString())
                outgoing.put(_Abort(error))
            outgoing.put(_END)

    def _promote(self, dest: Path, staging: str) -> None:
        with self._lock:
            if self._closed:
                raise ReceiveError("the session is closing")
            if dest in self._promoted:
                _merge(staging, dest)
                _force_rmtree(staging)
                return
            replaced: int | None = None
            with contextlib.suppress(FileNotFoundError):
                st = os.lstat(dest)
                if pystat.S_ISDIR(st.st_mode):
                    replaced = pystat.S_IMODE(st.st_mode)
            try:
                os.chmod(staging, replaced if replaced is not None else 0o777 & ~_umask())
                # rename(2) replaces an empty directory and refuses anything else.
                os.rename(staging, dest)
            except OSError as exc:
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                    raise ReceiveError(f"{dest} exists and is not an empty directory") from None
                raise ReceiveError(f"cannot move the export into {dest}: {exc.strerror or exc}") from None
            self._promoted[dest] = replaced

    def close(self, rollback: bool = False) -> None:
        """Wait for the receivers (their streams must be over), drop staging dirs; on rollback also the results."""
        with self._lock:
            self._closed = True
            workers = list(self._workers)
        for worker in workers:
            worker.join(JOIN_TIMEOUT)
        with self._lock:
            for staging in list(self._staging):
                _force_rmtree(staging)
            self._staging.clear()
            if rollback:
                for dest, replaced in self._promoted.items():
                    _force_rmtree(str(dest))
                    if replaced is not None:
                        with contextlib.suppress(OSError):
                            os.mkdir(dest)
                            os.chmod(dest, replaced)
                self._promoted.clear()


def _respond(outgoing: queue.SimpleQueue, context: grpc.ServicerContext) -> Iterator[bytes]:
    while True:
        item = outgoing.get()
        if item is _END:
            return
        if isinstance(item, _Abort):
            context.abort(grpc.StatusCode.UNKNOWN, item.message)
        yield item


def _check_dest(dest: Path, given: Path | str) -> None:
    try:
        st = os.stat(dest)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise UsageError(f"--output type=local: cannot use dest {given}: {exc.strerror}") from None
    if not pystat.S_ISDIR(st.st_mode):
        raise UsageError(f"--output type=local: dest {given} exists and is not a directory")
    try:
        empty = not os.listdir(dest)
    except OSError as exc:
        raise UsageError(f"--output type=local: cannot read dest {given}: {exc.strerror}") from None
    if not empty:
        raise UsageError(f"--output type=local: dest {given} is not empty; give a new or empty directory")


def _merge(src: str, dst: Path | str) -> None:
    """Move ``src``'s entries into ``dst``, descending into directories both have."""
    for name in sorted(os.listdir(src)):
        s, d = os.path.join(src, name), os.path.join(dst, name)
        try:
            dst_st = os.lstat(d)
        except FileNotFoundError:
            os.rename(s, d)
            continue
        if pystat.S_ISDIR(dst_st.st_mode) and pystat.S_ISDIR(os.lstat(s).st_mode):
            _merge(s, d)
        else:
            raise ReceiveError(f"cannot overwrite {d} with a second copy from the same export")


def _force_rmtree(path: str) -> None:
    """rmtree that also gets through directories the image made read-only (mode 0555)."""
    try:
        shutil.rmtree(path)
        return
    except FileNotFoundError:
        return
    except OSError:
        pass
    with contextlib.suppress(OSError):
        os.chmod(path, 0o700)
    for root, dirs, _files in os.walk(path):  # top-down: a directory is opened before its children are listed
        for name in dirs:
            p = os.path.join(root, name)
            with contextlib.suppress(OSError):
                if pystat.S_ISDIR(os.lstat(p).st_mode):  # never chmod through a symlink
                    os.chmod(p, 0o700)
    shutil.rmtree(path, ignore_errors=True)
