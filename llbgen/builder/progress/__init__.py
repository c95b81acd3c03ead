"""Show BuildKit's Status stream the way ``docker buildx build`` does.

BuildKit reports progress as a stream of ``StatusResponse`` messages, each a
batch of deltas: vertexes (steps starting/finishing), statuses (transfers such
as layer pulls), logs (a step's stdout/stderr) and warnings. A
``ProgressRecorder`` folds that stream into per-step state; the renderers draw
that state (plain lines, a live terminal view, raw JSON, or nothing), and
``format_failure`` turns a failed build into the final error and log excerpt.

Vertex digests are the daemon's own. An old BuildKit (<= 0.16) re-marshals ops
and reports digests that differ from the ones llbgen computed, so naming is
delegated to an optional ``name_for(daemon_digest, daemon_name)`` callable that
consults llbgen's own metadata and falls back to the daemon's name.
"""

from __future__ import annotations

import sys
from typing import IO

from llbgen.builder.progress.base import ProgressRenderer, QuietRenderer
from llbgen.builder.progress.format import format_elapsed, format_failure, human_bytes, transfer_size
from llbgen.builder.progress.plain import PlainRenderer
from llbgen.builder.progress.recorder import (
    LOG_TAIL_LINES,
    PROGRESS_MODES,
    BuildSummary,
    FailedVertex,
    LogLine,
    NameFor,
    ProgressMode,
    ProgressRecorder,
    TransferStatus,
    VertexChange,
    VertexState,
    exit_code_from,
)
from llbgen.errors import UsageError

__all__ = [
    "LOG_TAIL_LINES",
    "PROGRESS_MODES",
    "BuildSummary",
    "FailedVertex",
    "LogLine",
    "NameFor",
    "PlainRenderer",
    "ProgressMode",
    "ProgressRecorder",
    "ProgressRenderer",
    "QuietRenderer",
    "RawJsonRenderer",
    "TransferStatus",
    "TtyRenderer",
    "VertexChange",
    "VertexState",
    "exit_code_from",
    "format_elapsed",
    "format_failure",
    "human_bytes",
    "make_renderer",
    "status_to_json",
    "transfer_size",
]


def make_renderer(
    mode: ProgressMode,
    stream: IO[str] | None = None,
    name_for: NameFor | None = None,
) -> ProgressRenderer:
    """The renderer for ``--progress=mode``; ``auto`` is tty on a terminal, else plain."""
    stream = stream if stream is not None else sys.stderr
    if mode == "auto":
        is_terminal = getattr(stream, "isatty", lambda: False)()
        mode = "tty" if is_terminal else "plain"
    if mode == "tty":
        from rich.console import Console

        from llbgen.builder.progress.tty import TtyRenderer

        # Asked for explicitly, tty means tty even through a pipe (e.g. `script`, CI log viewers).
        return TtyRenderer(Console(file=stream, force_terminal=True), name_for=name_for)
    if mode == "plain":
        return PlainRenderer(stream, name_for=name_for)
    if mode == "rawjson":
        from llbgen.builder.progress.rawjson import RawJsonRenderer

        return RawJsonRenderer(stream, name_for=name_for)
    if mode == "quiet":
        return QuietRenderer(name_for=name_for)
    raise UsageError(f"unknown progress mode {mode!r}; choose one of {', '.join(PROGRESS_MODES)}")


# rich and protobuf's json_format take a noticeable share of a no-op build's time, and the
# plain and quiet renderers need neither: the other renderers load on first use.
_LAZY = {
    "TtyRenderer": "llbgen.builder.progress.tty",
    "RawJsonRenderer": "llbgen.builder.progress.rawjson",
    "status_to_json": "llbgen.builder.progress.rawjson",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
