"""The renderer protocol and the recording base every renderer shares."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from llbgen.builder.progress.recorder import NameFor, ProgressRecorder

if TYPE_CHECKING:
    from llbgen._proto.buildkit import control_pb2


class ProgressRenderer(Protocol):
    recorder: ProgressRecorder

    def update(self, resp: control_pb2.StatusResponse) -> None: ...

    def close(self) -> None: ...


class _RendererBase:
    """Every renderer records, so a failure can be explained whatever was shown."""

    def __init__(self, name_for: NameFor | None = None, recorder: ProgressRecorder | None = None) -> None:
        self.recorder = recorder or ProgressRecorder(name_for=name_for)

    def update(self, resp: control_pb2.StatusResponse) -> None:
        self.recorder.update(resp)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class QuietRenderer(_RendererBase):
    """Shows nothing; still records, for the final error message."""
