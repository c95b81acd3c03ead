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

import json
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Literal, Protocol

from google.protobuf import json_format
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from llbgen.errors import UsageError

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

    def __init__(self, name_for: NameFor | None = None, log_tail: int = LOG_TAIL_LINES) -> None:
        self._name_for = name_for
        self._log_tail = log_tail
        self._vertices: dict[str, VertexState] = {}  # insertion order = first seen
        self._next_number = 1
        # Local clock minus daemon clock, measured when the first step starts:
        # a remote daemon's clock may differ, and running times must not.
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
            if self.clock_offset is None:
                self.clock_offset = time.time() - started
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
        return time.time() - (self.clock_offset or 0.0)


# --------------------------------------------------------------------------
# Formatting helpers shared by the renderers
# --------------------------------------------------------------------------


def human_bytes(size: int) -> str:
    """Decimal units as buildx prints them: ``512B``, ``1.05MB``, ``2.10GB``."""
    units = ("B", "kB", "MB", "GB", "TB", "PB", "EB")
    if abs(size) < 1000:
        return f"{size}B"
    value = float(size)
    unit = 0
    while abs(value) >= 1000 and unit < len(units) - 1:
        value /= 1000
        unit += 1
    return f"{value:.2f}{units[unit]}"


def format_elapsed(seconds: float) -> str:
    """Seconds with 3, 2 or 1 decimals as the number grows (buildx log prefix)."""
    if seconds < 10:
        return f"{seconds:.3f}"
    if seconds < 100:
        return f"{seconds:.2f}"
    return f"{seconds:.1f}"


def transfer_size(status: TransferStatus) -> str:
    """``1.05MB / 2.10MB`` when the total is known, else just what was moved so far."""
    if status.total:
        return f"{human_bytes(status.current)} / {human_bytes(status.total)}"
    if status.current:
        return human_bytes(status.current)
    return ""


def format_failure(recorder: ProgressRecorder, max_log_lines: int = 10) -> str:
    """The final error: one line naming the failed step and exit code, then its last log lines.

    Returns "" when no step failed (the build may still have failed elsewhere,
    e.g. during export, which the caller reports from the Solve error).
    """
    failures = recorder.failed_vertices()
    if not failures:
        return ""
    first = failures[0]
    if first.exit_code is not None:
        headline = f"step {first.name} failed with exit code {first.exit_code}"
    else:
        headline = f"step {first.name} failed: {first.error}"
    parts = [headline]
    for failure in failures:
        logs = failure.last_logs[-max_log_lines:] if max_log_lines > 0 else ()
        if not logs:
            continue
        parts.append("------")
        parts.append(f" > {failure.name}:")
        parts.extend(logs)
        parts.append("------")
    return "\n".join(parts)


# --------------------------------------------------------------------------
# Renderers
# --------------------------------------------------------------------------


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
        # A step announced but not started (still waiting on inputs) has nothing to show yet.
        if not body and verdict is None and not change.started:
            return []
        lines = self._switch_to(vertex) + body
        if verdict is not None:
            lines.append(verdict)
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


class TtyRenderer(_RendererBase):
    """A live terminal view: header with total time, one line per step, spinners on running ones.

    Running steps also show their transfers and last few log lines. When the
    build ends the live area is replaced by the full, static list of steps.
    """

    _LOG_LINES_SHOWN = 6
    _REFRESH_PER_SECOND = 8

    def __init__(
        self,
        console: Console | None = None,
        name_for: NameFor | None = None,
        phase: str = "Building",
    ) -> None:
        super().__init__(name_for)
        self._console = console or Console(stderr=True)
        self._phase = phase
        # rich refreshes from its own thread while update() runs on the caller's.
        self._lock = threading.Lock()
        self._spinners: dict[str, Spinner] = {}
        self._started_at: float | None = None
        self._finished_at: float | None = None
        self._live: Live | None = None

    def update(self, resp: control_pb2.StatusResponse) -> None:
        with self._lock:
            self.recorder.update(resp)
            if self._started_at is None:
                self._started_at = time.monotonic()
        if self._live is None:
            self._live = Live(
                console=self._console,
                get_renderable=self._live_view,
                refresh_per_second=self._REFRESH_PER_SECOND,
                transient=True,  # the static final view replaces it
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start()

    def close(self) -> None:
        with self._lock:
            self.recorder.flush()
            if self._finished_at is None:
                self._finished_at = time.monotonic()
        if self._live is not None:
            self._live.stop()
            self._live = None
            self._console.print(self._view(final=True))

    def _live_view(self) -> RenderableType:
        return self._view(final=False)

    def _view(self, final: bool) -> RenderableType:
        with self._lock:
            header = self._header(final)
            rows = self._rows(final)
        if not final:
            rows = self._fit(rows, max(1, self._console.size.height - 2))
        table = Table.grid(padding=(0, 1), expand=True)
        table.add_column(width=2, no_wrap=True)
        table.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
        table.add_column(no_wrap=True, justify="right")
        table.add_column(no_wrap=True, justify="right", min_width=6)
        for _running, cells in rows:
            table.add_row(*cells)
        return Group(header, table)

    def _header(self, final: bool) -> Text:
        end = self._finished_at if final and self._finished_at is not None else time.monotonic()
        elapsed = end - self._started_at if self._started_at is not None else 0.0
        states = self.recorder.vertex_states()
        done = sum(1 for v in states if v.is_completed)
        finished = " FINISHED" if final and states and done == len(states) else ""
        return Text(f"[+] {self._phase} {elapsed:.1f}s ({done}/{len(states)}){finished}", style="bold")

    def _rows(self, final: bool) -> list[tuple[bool, tuple]]:
        """(is_running, cells) per line: the step, then its transfers and (while running) log tail."""
        rows: list[tuple[bool, tuple]] = []
        shown = sorted((v for v in self.recorder.vertex_states() if v.number is not None), key=lambda v: v.number)
        for vertex in shown:
            running = not vertex.is_completed and not final
            rows.append((running, self._step_cells(vertex, running)))
            for status in vertex.statuses.values():
                rows.append((running, self._status_cells(vertex, status, running)))
            for warning in vertex.warnings:
                rows.append((running, ("", Text(f"=> WARN: {warning}", style="yellow"), "", "")))
            if running:
                for line in list(vertex.log_tail)[-self._LOG_LINES_SHOWN :]:
                    rows.append((True, ("", Text(f"=> # {line.text}", style="dim"), "", "")))
        return rows

    def _step_cells(self, vertex: VertexState, running: bool) -> tuple:
        if running:
            marker: RenderableType = self._spinners.setdefault(vertex.digest, Spinner("dots", style="cyan"))
        else:
            marker = Text("=>")
        label, style = vertex.name, ""
        if vertex.is_canceled:
            label, style = f"CANCELED {label}", "yellow"
        elif vertex.error:
            label, style = f"ERROR {label}", "bold red"
        elif vertex.cached:
            label, style = f"CACHED {label}", "blue"
        elif vertex.is_completed:
            style = "blue"
        return (
            marker,
            Text(label, style=style),
            "",
            Text(self._duration_text(vertex.started, vertex.completed), style=style),
        )

    def _status_cells(self, vertex: VertexState, status: TransferStatus, running: bool) -> tuple:
        style = "" if running else "blue"
        timing = self._duration_text(status.started, status.completed) if status.started is not None else ""
        return (
            "",
            Text(f"=> {status.id}", style=style),
            Text(transfer_size(status), style=style),
            Text(timing, style=style),
        )

    def _duration_text(self, started: float | None, completed: float | None) -> str:
        if started is None:
            return ""
        end = completed if completed is not None else self.recorder.daemon_now()
        seconds = max(0.0, end - started)
        return f"{0.0 if seconds < 0.05 else seconds:.1f}s"

    @staticmethod
    def _fit(rows: list[tuple[bool, tuple]], limit: int) -> list[tuple[bool, tuple]]:
        """Keep the newest rows within the screen, dropping finished ones before running ones."""
        if len(rows) <= limit:
            return rows
        excess = len(rows) - limit
        kept = []
        for running, cells in rows:
            if excess > 0 and not running:
                excess -= 1
                continue
            kept.append((running, cells))
        return kept[-limit:]


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
        # Asked for explicitly, tty means tty even through a pipe (e.g. `script`, CI log viewers).
        return TtyRenderer(Console(file=stream, force_terminal=True), name_for=name_for)
    if mode == "plain":
        return PlainRenderer(stream, name_for=name_for)
    if mode == "rawjson":
        return RawJsonRenderer(stream, name_for=name_for)
    if mode == "quiet":
        return QuietRenderer(name_for=name_for)
    raise UsageError(f"unknown progress mode {mode!r}; choose one of {', '.join(PROGRESS_MODES)}")
