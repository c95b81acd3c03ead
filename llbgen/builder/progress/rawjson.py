"""``--progress=rawjson``: one JSON object per StatusResponse."""

from __future__ import annotations

import json
from typing import IO, TYPE_CHECKING

from google.protobuf import json_format

from llbgen.builder.progress.base import _RendererBase
from llbgen.builder.progress.recorder import NameFor

if TYPE_CHECKING:
    from llbgen._proto.buildkit import control_pb2


class RawJsonRenderer(_RendererBase):
    """One JSON object per ``StatusResponse``, like ``buildctl --progress=rawjson``."""

    def __init__(self, stream: IO[str], name_for: NameFor | None = None) -> None:
        super().__init__(name_for)
        self._stream = stream

    def update(self, resp: control_pb2.StatusResponse) -> None:
        self.recorder.update(resp)
        self._stream.write(json.dumps(status_to_json(resp), separators=(",", ":")) + "\n")
        self._stream.flush()


def status_to_json(resp: control_pb2.StatusResponse) -> dict:
    """The message as JSON with proto field names; text carried as bytes becomes text.

    json_format would base64 the bytes fields, which no reader of a build log wants.
    """
    data = json_format.MessageToDict(resp, preserving_proto_field_name=True)
    for out, log in zip(data.get("logs", []), resp.logs, strict=True):
        out["msg"] = log.msg.decode("utf-8", "replace")
    for out, warning in zip(data.get("warnings", []), resp.warnings, strict=True):
        if warning.short:
            out["short"] = warning.short.decode("utf-8", "replace")
        if warning.detail:
            out["detail"] = [line.decode("utf-8", "replace") for line in warning.detail]
    return data
