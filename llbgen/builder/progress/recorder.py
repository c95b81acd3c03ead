"""Fold BuildKit's Status stream into per-step state (the model every renderer draws)."""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from llbgen.builder.progress.format import format_elapsed

if TYPE_CHECKING:
    from google.protobuf.timestamp_pb2 import Timestamp

    from llbgen._proto.buildkit import control_pb2


ProgressMode = Literal["auto", "tty", "plain", "rawjson", "quiet"]
PROGRESS_MODES: tuple[str, ...] = ("auto", "tty", "plain", "rawjson", "quiet")

NameFor = Callable[[str, str], str]
"""``name_for(daemon_digest, daemon_name) -> name to print``."""


LOG_TAIL_LINES = 20
# BuildKit appends this to the error of every step it aborted because another
# step failed; those steps are not the cause and must not be reported as such.
_CANCELED_SUFFIX = "context canceled"
_EXIT_CODE = re.compile(r"exit code: (-?\d+)")


# --------------------------------------------------------------------------
# State: what the stream has told us so far
# --------------------------------------------------------------------------


@dataclass
class LogLine:
    """One complete line a step wrote; ``elapsed`` is seconds since the step started."""

    elapsed: float
    text: str
    stream: int  # 1 stdout, 2 stderr

    def formatted(self) -> str:
        """``0.512 text`` as buildx prints it (precision shrinks as time grows)."""
        return f"{format_elapsed(self.elapsed)} {self.text}"


@dataclass
class TransferStatus:
    """A sub-task of a step, usually a transfer (``sha256:...``, ``transferring context``)."""

    id: str
    name: str
    current: int
    total: int
    timestamp: float | None
    started: float | None
    completed: float | None


@dataclass
class VertexState:
    """Everything known about one step (vertex) of the build."""

    digest: str
    daemon_name: str
    name: str
    inputs: tuple[str, ...] = ()
    cached: bool = False
    started: float | None = None
    completed: float | None = None
    error: str = ""
    # Buildx numbers steps (#N) in the order they start, so steps that never
    # run (skipped after a failure) leave no gaps.
    number: int | None = None
    statuses: dict[str, TransferStatus] = field(default_factory=dict)
    log_tail: deque[LogLine] = field(default_factory=lambda: deque(maxlen=LOG_TAIL_LINES))
    warnings: list[str] = field(default_factory=list)
    # Local clock when this run of the step was first reported started (timers never stall).
    seen_started: float | None = None
    # Per stream: (timestamp of first chunk, bytes after the last newline).
    # Steps write lines in arbitrary chunks; a line is shown only once complete.
    _partial: dict[int, tuple[float | None, bytes]] = field(default_factory=dict, repr=False)

    @property
    def is_completed(self) -> bool:
        return self.completed is not None

    @property
    def is_canceled(self) -> bool:
        return self.error.endswith(_CANCELED_SUFFIX)

    @property
    def is_failed(self) -> bool:
        return bool(self.error) and not self.is_canceled

    @property
    def duration(self) -> float | None:
        if self.started is None or self.completed is None:
            return None
        return max(0.0, self.completed - self.started)

    @property
    def exit_code(self) -> int | None:
        return exit_code_from(self.error)


@dataclass
class VertexChange:
    """What one ``StatusResponse`` changed about one step; renderers print from this."""

    vertex: VertexState
    started: bool = False
    completed: bool = False
    statuses: list[TransferStatus] = field(default_factory=list)
    log_lines: list[LogLine] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class FailedVertex:
    """A step that failed on its own (not merely canceled because another failed)."""

    digest: str
    name: str
    error: str
    exit_code: int | None
    last_logs: tuple[str, ...]


@dataclass(frozen=True)
class BuildSummary:
    """Counts and times of the steps seen; durations are in seconds."""

    total: int
    cached: int
    built: int
    failed: int
    canceled: int
    wall_seconds: float | None
    step_seconds: tuple[tuple[str, float], ...]  # (name, seconds) of executed steps, slowest first


def exit_code_from(error: str) -> int | None:
    """The exit code in a BuildKit error (``... did not complete successfully: exit code: 2``)."""
    match = _EXIT_CODE.search(error)
    return int(match.group(1)) if match else None


def _seconds(ts: Timestamp) -> float:
    return ts.seconds + ts.nanos / 1e9


def _optional_seconds(message, field_name: str) -> float | None:
    # An unset Timestamp reads as the epoch; only HasField tells "not yet" apart.
    return _seconds(getattr(message, field_name)) if message.HasField(field_name) else None


class ProgressRecorder:
    """Folds ``StatusResponse`` messages into per-step state, in arrival order."""

    def __init__(self, name_for: NameFor | None = None, log_tail: int = LOG_TAIL_LINES,
                 clock: Callable[[], float] = time.time) -> None:
        self._name_for = name_for
        self._log_tail = log_tail
        self._clock = clock
        self._vertices: dict[str, VertexState] = {}  # insertion order = first seen
        self._next_number = 1
        # Local clock minus daemon clock: a remote daemon's clock may differ, and running
        # times must not. The smallest difference seen wins: BuildKit replays the old start
        # times of steps it shares with earlier builds, and one of those taken as "now"
        # would freeze every running timer at 0.0s.
        self.clock_offset: float | None = None

    # -- feeding --------------------------------------------------------

    def update(self, resp: control_pb2.StatusResponse) -> list[VertexChange]:
        """Apply one message; return per-step changes in order of first mention."""
        changes: dict[str, VertexChange] = {}

        def change_for(state: VertexState) -> VertexChange:
            if state.digest not in changes:
                changes[state.digest] = VertexChange(state)
            return changes[state.digest]

        for vtx in resp.vertexes:
            self._apply_vertex(vtx, change_for)
            self._observe_daemon_time(_optional_seconds(vtx, "started"))
            self._observe_daemon_time(_optional_seconds(vtx, "completed"))
        for status in resp.statuses:
            state = self._vertices.get(status.vertex)
            if state is None:
                continue  # BuildKit always announces the vertex first; buildx ignores strays too
            transfer = TransferStatus(
                id=status.ID,
                name=status.name,
                current=status.current,
                total=status.total,
                timestamp=_optional_seconds(status, "timestamp"),
                started=_optional_seconds(status, "started"),
                completed=_optional_seconds(status, "completed"),
            )
            self._observe_daemon_time(transfer.timestamp)
            state.statuses[status.ID] = transfer
            self._number(state)
            change_for(state).statuses.append(transfer)
        for warning in resp.warnings:
            state = self._vertices.get(warning.vertex)
            if state is None:
                continue
            text = warning.short.decode("utf-8", "replace")
            state.warnings.append(text)
            self._number(state)
            change_for(state).warnings.append(text)
        for log in resp.logs:
            state = self._vertices.get(log.vertex)
            if state is None:
                continue
            self._observe_daemon_time(_optional_seconds(log, "timestamp"))
            lines = self._append_log(state, log)
            self._number(state)
            change_for(state).log_lines.extend(lines)

        # A finished step writes nothing more: its unterminated last line is complete.
        for change in changes.values():
            if change.completed:
                change.log_lines.extend(self._flush_partial(change.vertex))
        return list(changes.values())

    def flush(self) -> list[VertexChange]:
        """End of stream: unterminated log lines of every step become complete lines."""
        changes = []
        for state in self._vertices.values():
            lines = self._flush_partial(state)
            if lines:
                changes.append(VertexChange(state, log_lines=lines))
        return changes

    def _apply_vertex(self, vtx: control_pb2.Vertex, change_for: Callable[[VertexState], VertexChange]) -> None:
        started = _optional_seconds(vtx, "started")
        completed = _optional_seconds(vtx, "completed")
        state = self._vertices.get(vtx.digest)
        if state is None:
            state = VertexState(
                digest=vtx.digest,
                daemon_name=vtx.name,
                name=self._resolve_name(vtx.digest, vtx.name),
                log_tail=deque(maxlen=self._log_tail),
            )
            self._vertices[vtx.digest] = state
            change_for(state)
        elif state.started is not None and started is None:
            return  # a re-sent "pending" announcement of a step already running says nothing new
        elif state.is_completed and not state.error and vtx.error.endswith(_CANCELED_SUFFIX):
            return  # a step that finished stays finished when a sibling's failure cancels the build

        if vtx.name != state.daemon_name:
            state.daemon_name = vtx.name
            state.name = self._resolve_name(vtx.digest, vtx.name)
        state.inputs = tuple(vtx.inputs)
        # A cached step may be re-announced without the flag while its lazy layer is
        # pulled (cache import); it was still not executed.
        state.cached = state.cached or vtx.cached
        state.error = vtx.error

        if started is not None and started != state.started:
            state.started = started
            state.completed = None  # a re-run (same step needed again) starts fresh
            state.seen_started = self._clock()
            self._number(state)
            change_for(state).started = True
        if completed is not None and completed != state.completed:
            state.completed = completed
            self._number(state)
            change_for(state).completed = True

    def _resolve_name(self, digest: str, daemon_name: str) -> str:
        if self._name_for is None:
            return daemon_name
        return self._name_for(digest, daemon_name) or daemon_name

    def _number(self, state: VertexState) -> None:
        if state.number is None:
            state.number = self._next_number
            self._next_number += 1

    def _append_log(self, state: VertexState, log: control_pb2.VertexLog) -> list[LogLine]:
        timestamp = _optional_seconds(log, "timestamp")
        first_ts, pending = state._partial.pop(log.stream, (timestamp, b""))
        *complete, rest = (pending + log.msg).split(b"\n")
        if rest:
            state._partial[log.stream] = (first_ts, rest)
        lines = [self._log_line(state, first_ts, raw, log.stream) for raw in complete]
        state.log_tail.extend(lines)
        return lines

    def _flush_partial(self, state: VertexState) -> list[LogLine]:
        lines = [self._log_line(state, ts, raw, stream) for stream, (ts, raw) in state._partial.items()]
        state._partial.clear()
        state.log_tail.extend(lines)
        return lines

    @staticmethod
    def _log_line(state: VertexState, timestamp: float | None, raw: bytes, stream: int) -> LogLine:
        elapsed = 0.0
        if timestamp is not None and state.started is not None:
            elapsed = max(0.0, timestamp - state.started)
        # Progress bars redraw with \r; only the final redraw of a line is worth keeping.
        text = raw.decode("utf-8", "replace").rstrip("\r").rsplit("\r", 1)[-1]
        return LogLine(elapsed=elapsed, text=text, stream=stream)

    # -- questions ------------------------------------------------------

    def vertex_states(self) -> list[VertexState]:
        """All steps seen, in first-seen order."""
        return list(self._vertices.values())

    def failed_vertices(self) -> list[FailedVertex]:
        """Steps that failed themselves, earliest failure first."""
        failed = [v for v in self._vertices.values() if v.is_failed]
        failed.sort(key=lambda v: v.completed if v.completed is not None else float("inf"))
        return [
            FailedVertex(
                digest=v.digest,
                name=v.name,
                error=v.error,
                exit_code=v.exit_code,
                last_logs=tuple(line.formatted() for line in v.log_tail),
            )
            for v in failed
        ]

    def summary(self) -> BuildSummary:
        states = self._vertices.values()
        executed = [v for v in states if v.is_completed and not v.cached and not v.error]
        starts = [v.started for v in states if v.started is not None]
        ends = [v.completed for v in states if v.completed is not None]
        wall = max(ends) - min(starts) if starts and ends else None
        step_seconds = sorted(((v.name, v.duration or 0.0) for v in executed), key=lambda item: -item[1])
        return BuildSummary(
            total=len(self._vertices),
            cached=sum(1 for v in states if v.is_completed and v.cached),
            built=len(executed),
            failed=sum(1 for v in states if v.is_failed),
            canceled=sum(1 for v in states if v.is_canceled),
            wall_seconds=wall,
            step_seconds=tuple(step_seconds),
        )

    def daemon_now(self) -> float:
        """The current time on the daemon's clock (best estimate)."""
        return self._clock() - (self.clock_offset or 0.0)

    def running_seconds(self, state: VertexState) -> float:
        """How long a running step has run: by the daemon's start time, and at least since it was seen starting."""
        if state.started is None:
            return 0.0
        seen = self._clock() - state.seen_started if state.seen_started is not None else 0.0
        return max(0.0, self.daemon_now() - state.started, seen)

    def _observe_daemon_time(self, timestamp: float | None) -> None:
        if timestamp is None:
            return
        offset = self._clock() - timestamp
        if self.clock_offset is None or offset < self.clock_offset:
            self.clock_offset = offset
