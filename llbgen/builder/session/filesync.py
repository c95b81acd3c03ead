"""FileSync.DiffCopy, sender side: serves ``local://`` sources to the daemon.

Protocol (tonistiigi/fsutil send.go): we send one STAT per entry in walk order,
then an empty STAT; the daemon (the receiver) sends REQ{ID} for the regular
files whose content it lacks — ids count every STAT, directories included — and
we answer each with DATA chunks plus an empty DATA. FIN from the daemon is
answered with FIN and ends the stream; ERR from either side aborts it.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from urllib.parse import unquote_plus

import grpc

from llbgen._proto.fsutil import wire_pb2
from llbgen._proto.session import filesync_pb2_grpc
from llbgen.builder.session.walk import FilteredWalk, can_request_data

log = logging.getLogger(__name__)

Packet = wire_pb2.Packet

# Well below every gRPC message limit; big enough that Python's per-message cost is small.
DATA_CHUNK = 256 * 1024

KEY_DIR_NAME = "dir-name"
KEY_INCLUDE = "include-patterns"
KEY_EXCLUDE = "exclude-patterns"
KEY_FOLLOW = "followpaths"


def decode_metadata(metadata: Sequence[tuple[str, str | bytes]]) -> dict[str, list[str]]:
    """Group gRPC metadata by key and undo BuildKit's ``<key>-encoded`` query escaping.

    The daemon URL-query-escapes every value of a key when any of them is
    non-ASCII, and flags it with ``<key>-encoded: 1`` (filesync.go encodeOpts).
    """
    grouped: dict[str, list[str]] = {}
    for key, value in metadata:
        if isinstance(value, bytes):  # "-bin" keys; BuildKit sends none here
            continue
        grouped.setdefault(key, []).append(value)
    decoded: dict[str, list[str]] = {}
    for key, values in grouped.items():
        flag = grouped.get(key + "-encoded")
        if flag and flag[0] in ("1", "t", "T", "true", "TRUE", "True"):
            values = [unquote_plus(v) for v in values]
        decoded[key] = values
    return decoded


class FileSyncServicer(filesync_pb2_grpc.FileSyncServicer):
    """Serves the directories of ``local_dirs`` by their local source name."""

    def __init__(self, local_dirs: Mapping[str, Path]):
        self._dirs = dict(local_dirs)

    def DiffCopy(self, request_iterator: Iterator[Packet], context: grpc.ServicerContext) -> Iterator[Packet]:
        opts = decode_metadata(context.invocation_metadata())
        name = (opts.get(KEY_DIR_NAME) or [""])[0]
        root = self._dirs.get(name)
        if root is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no access allowed to dir {name!r}")
        try:
            walk = FilteredWalk(
                root,
                include_patterns=opts.get(KEY_INCLUDE),
                exclude_patterns=opts.get(KEY_EXCLUDE),
                follow_paths=opts.get(KEY_FOLLOW),
            )
        except ValueError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"local source {name!r}: {exc}")
        return _send(walk, request_iterator, context)


def _send(walk: FilteredWalk, requests: Iterator[Packet], context: grpc.ServicerContext) -> Iterator[Packet]:
    # The daemon sends REQs while it is still receiving STATs. Read them on a side
    # thread so its sends never stall on flow control while we are busy sending.
    incoming: queue.Queue[Packet | None] = queue.Queue()
    reader = threading.Thread(target=_read_requests, args=(requests, incoming), name="llbgen-filesync-recv", daemon=True)
    reader.start()

    files: dict[int, str] = {}
    try:
        # Ids number every STAT, directories and links included (the receiver counts the same way).
        for file_id, entry in enumerate(walk):
            if not context.is_active():
                return
            if can_request_data(entry.stat.mode):
                files[file_id] = entry.abspath
            yield Packet(type=Packet.PACKET_STAT, stat=entry.stat)
    except OSError as exc:
        message = f"cannot read {exc.filename or walk.root}: {exc.strerror or exc}"
        yield Packet(type=Packet.PACKET_ERR, data=message.encode())
        context.abort(grpc.StatusCode.UNKNOWN, message)
    yield Packet(type=Packet.PACKET_STAT)

    while True:
        packet = incoming.get()
        if packet is None:
            return  # the daemon hung up (cancelled build); nothing left to answer
        if packet.type == Packet.PACKET_ERR:
            context.abort(grpc.StatusCode.UNKNOWN, f"error from receiver: {packet.data.decode(errors='replace')}")
        elif packet.type == Packet.PACKET_REQ:
            path = files.pop(packet.ID, None)
            if path is None:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid file id {packet.ID}")
            yield from _file_data(packet.ID, path)
        elif packet.type == Packet.PACKET_FIN:
            yield Packet(type=Packet.PACKET_FIN)
            return


def _read_requests(requests: Iterator[Packet], incoming: queue.Queue[Packet | None]) -> None:
    try:
        for packet in requests:
            incoming.put(packet)
    except grpc.RpcError:
        pass  # cancelled: the sender sees the None below and stops
    finally:
        incoming.put(None)


def _file_data(file_id: int, path: str) -> Iterator[Packet]:
    try:
        f = open(path, "rb")  # noqa: SIM115 - only open errors are forgiven, read errors abort
    except OSError as exc:
        # Like fsutil: a file that vanished since its STAT is sent as empty.
        log.debug("cannot open %s for the daemon: %s", path, exc)
    else:
        with f:
            while chunk := f.read(DATA_CHUNK):
                yield Packet(type=Packet.PACKET_DATA, ID=file_id, data=chunk)
    yield Packet(type=Packet.PACKET_DATA, ID=file_id)
