"""FileSend.DiffCopy, receiver side: exporter output (tar, oci, docker) as one file.

The daemon picks the output by the metadata ``buildkit-attachable-exporter-id``
(the index of the exporter in ``SolveRequest.Exporters``), streams raw bytes as
BytesMessages, closes its send side and waits for our OK (filesync.go,
diffcopy.go). The bytes go to a temp file beside the destination, which is
renamed into place only after a clean end of stream: a cancelled or failed
export never leaves a truncated file where the user expects a result.

An output may instead be a stream (``--load`` with a standalone buildkitd: the image
goes straight into the Docker Engine, see engine_load.py); it gets the bytes as they
come, and is aborted, so nothing is loaded, unless the stream ended cleanly.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Protocol

import grpc

from llbgen._proto.session import filesync_pb2, filesync_pb2_grpc

log = logging.getLogger(__name__)

KEY_EXPORTER_ID = "buildkit-attachable-exporter-id"
# How long a cancellation may trail the end of the data (see _cancelled).
CANCEL_GRACE = 0.25


class StreamOutput(Protocol):
    """Where an export's bytes go when it is not a file (``EngineImageLoad``)."""

    def start(self) -> object: ...
    def write(self, data: bytes) -> None: ...
    def finish(self) -> object: ...
    def abort(self) -> None: ...


def exporter_id(metadata: Mapping[str, str]) -> int:
    """BuildKit's chooser: a missing or malformed id means exporter 0."""
    try:
        return int(metadata.get(KEY_EXPORTER_ID, "0"))
    except ValueError:
        return 0


class FileSendServicer(filesync_pb2_grpc.FileSendServicer):
    def __init__(self, file_outputs: Mapping[int, Path | StreamOutput]):
        self._outputs = {int(k): Path(v) if isinstance(v, str | os.PathLike) else v for k, v in file_outputs.items()}

    def DiffCopy(self, request_iterator: Iterator[filesync_pb2.BytesMessage], context: grpc.ServicerContext) -> Iterator[filesync_pb2.BytesMessage]:
        metadata = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
        index = exporter_id(metadata)
        dest = self._outputs.get(index)
        if dest is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"exporter {index} not found")
        if not isinstance(dest, Path):
            return _stream(dest, index, request_iterator, context)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent)
        done = False
        try:
            with os.fdopen(fd, "wb") as f:
                for message in request_iterator:
                    f.write(message.data)
                # On disk before the rename, so a crash cannot leave an empty "result".
                f.flush()
                os.fsync(f.fileno())
            if _cancelled(context):
                log.debug("export %d to %s was cancelled", index, dest)
                return iter(())
            # mkstemp's 0600 would surprise users who expect an ordinary new file.
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, dest)
            done = True
        except grpc.RpcError:
            log.debug("export %d to %s was cancelled", index, dest)
            raise
        finally:
            if not done:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        return iter(())


def _stream(output: StreamOutput, index: int, request_iterator: Iterator[filesync_pb2.BytesMessage],
            context: grpc.ServicerContext) -> Iterator[filesync_pb2.BytesMessage]:
    from llbgen.errors import LlbgenError

    try:
        output.start()
        for message in request_iterator:
            output.write(message.data)
        if _cancelled(context):
            log.debug("export %d was cancelled", index)
            output.abort()
            return iter(())
        output.finish()
    except LlbgenError as err:
        # The daemon fails the export with this text; the solve reports it.
        context.abort(grpc.StatusCode.UNKNOWN, str(err))
    except BaseException:
        output.abort()
        raise
    return iter(())


def _cancelled(context: grpc.ServicerContext) -> bool:
    """Did the stream end because the daemon cancelled it, not because it was done?

    grpcio's sync server ends the request iterator the same way for a clean
    half-close and for a cancellation (RST_STREAM) whose "call closed" event it
    has not processed yet. That event follows right behind a cancellation, while
    after a clean half-close it cannot come before we answer, so wait a moment.
    """
    deadline = time.monotonic() + CANCEL_GRACE
    while context.is_active():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)
    return True


def _umask() -> int:
    # os.umask() can only read the mask by changing it, which would race with other
    # threads creating files; Linux shows it in /proc instead.
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022
