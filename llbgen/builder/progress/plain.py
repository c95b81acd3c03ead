"""``--progress=plain``: buildx's line format for CI logs."""

from __future__ import annotations

from typing import IO, TYPE_CHECKING

from llbgen.builder.progress.base import _RendererBase
from llbgen.builder.progress.format import transfer_rate, transfer_size
from llbgen.builder.progress.recorder import (
    NameFor,
    TransferStatus,
    VertexChange,
    VertexState,
)

if TYPE_CHECKING:
    from llbgen._proto.buildkit import control_pb2


class PlainRenderer(_RendererBase):
    """Buildx's plain output: ``#N name`` blocks of transfers, logs and a final verdict.

    Output from concurrent steps interleaves; like buildx, each switch to a
    different step repeats its ``#N name`` header, and leaving an unfinished
    step is marked ``#N ...``.
    """

    # Buildx reprints an unfinished transfer only after 5% more or 5 s more.
    _MIN_PROGRESS_DELTA = 0.05
    _MIN_TIME_DELTA = 5.0

    def __init__(self, stream: IO[str], name_for: NameFor | None = None) -> None:
        super().__init__(name_for)
        self._stream = stream
        self._current: VertexState | None = None
        self._printed_any = False
        self._last_printed: dict[tuple[str, str], tuple[int, float]] = {}
        # A step gets one final state: BuildKit may report a finished step finished again
        # (a second run of a shared step); only a later failure is news worth a second verdict.
        self._verdict_printed: set[str] = set()

    def update(self, resp: control_pb2.StatusResponse) -> None:
        changes = self.recorder.update(resp)
        # Finished steps first, in completion order, as buildx does: their
        # verdict then sits right under their last output.
        finished = sorted((c for c in changes if c.vertex.is_completed), key=lambda c: c.vertex.completed or 0.0)
        running = [c for c in changes if not c.vertex.is_completed]
        lines: list[str] = []
        for change in finished + running:
            lines.extend(self._render_change(change))
        self._write(lines)

    def close(self) -> None:
        lines: list[str] = []
        for change in self.recorder.flush():
            lines.extend(self._render_change(change))
        self._write(lines)

    def _write(self, lines: list[str]) -> None:
        if lines:
            self._stream.write("".join(line + "\n" for line in lines))
            self._stream.flush()

    def _render_change(self, change: VertexChange) -> list[str]:
        vertex = change.vertex
        body = self._status_lines(change) + [f"#{vertex.number} {line.formatted()}" for line in change.log_lines]
        body += [f"#{vertex.number} WARN: {text}" for text in change.warnings]
        verdict = self._verdict(vertex) if change.completed else None
        if verdict is not None and vertex.digest in self._verdict_printed and not vertex.is_failed:
            verdict = None
        # A step announced but not started (still waiting on inputs) has nothing to show yet.
        if not body and verdict is None and not change.started:
            return []
        lines = self._switch_to(vertex) + body
        if verdict is not None:
            lines.append(verdict)
            self._verdict_printed.add(vertex.digest)
            self._current = None
        return lines

    def _switch_to(self, vertex: VertexState) -> list[str]:
        if self._current is vertex:
            return []
        lines = []
        if self._current is not None and not self._current.is_completed:
            lines.append(f"#{self._current.number} ...")
        if self._printed_any:
            lines.append("")
        self._printed_any = True
        lines.append(f"#{vertex.number} {vertex.name}")
        self._current = vertex
        return lines

    def _status_lines(self, change: VertexChange) -> list[str]:
        lines = []
        for status in change.statuses:
            if not self._worth_printing(change.vertex, status):
                continue
            size = transfer_size(status)
            rate = transfer_rate(status)
            if rate:
                size += f" ({rate})"
            timing = ""
            end = status.completed if status.completed is not None else status.timestamp
            if status.started is not None and end is not None and end - status.started > 0.01:
                timing = f" {end - status.started:.1f}s"
            if status.completed is not None:
                timing += " done"
            lines.append(f"#{change.vertex.number} {status.id}{' ' + size if size else ''}{timing}")
        return lines

    def _worth_printing(self, vertex: VertexState, status: TransferStatus) -> bool:
        key = (vertex.digest, status.id)
        now = status.timestamp or 0.0
        last = self._last_printed.get(key)
        if last is not None and status.completed is None:
            last_current, last_time = last
            progress = (status.current - last_current) / status.total if status.total > 0 else 0.0
            if progress < self._MIN_PROGRESS_DELTA and now - last_time < self._MIN_TIME_DELTA:
                return False
        self._last_printed[key] = (status.current, now)
        return True

    @staticmethod
    def _verdict(vertex: VertexState) -> str:
        if vertex.is_canceled:
            return f"#{vertex.number} CANCELED"
        if vertex.error:
            return f"#{vertex.number} ERROR: {vertex.error}"
        if vertex.cached:
            return f"#{vertex.number} CACHED"
        duration = vertex.duration
        return f"#{vertex.number} DONE{f' {duration:.1f}s' if duration is not None else ''}"
