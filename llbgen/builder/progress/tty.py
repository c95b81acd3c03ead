"""``--progress=tty``: a live rich view of running steps, transfers and logs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from llbgen.builder.progress.base import _RendererBase
from llbgen.builder.progress.format import transfer_rate, transfer_size
from llbgen.builder.progress.recorder import (
    NameFor,
    ProgressRecorder,
    TransferStatus,
    VertexState,
)

if TYPE_CHECKING:
    from llbgen._proto.buildkit import control_pb2


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
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name_for, ProgressRecorder(name_for=name_for, clock=clock))
        self._clock = clock
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
                self._started_at = self._clock()
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
                self._finished_at = self._clock()
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
        end = self._finished_at if final and self._finished_at is not None else self._clock()
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
            Text(self._step_duration(vertex), style=style),
        )

    def _status_cells(self, vertex: VertexState, status: TransferStatus, running: bool) -> tuple:
        style = "" if running else "blue"
        timing = self._duration_text(status.started, status.completed) if status.started is not None else ""
        rate = transfer_rate(status)
        return (
            "",
            Text(f"=> {status.id}", style=style),
            Text(" ".join(part for part in (transfer_size(status), rate and f"({rate})") if part), style=style),
            Text(timing, style=style),
        )

    def _step_duration(self, vertex: VertexState) -> str:
        if vertex.started is None:
            return ""
        seconds = vertex.duration if vertex.is_completed else self.recorder.running_seconds(vertex)
        return _seconds_text(seconds or 0.0)

    def _duration_text(self, started: float | None, completed: float | None) -> str:
        if started is None:
            return ""
        end = completed if completed is not None else self.recorder.daemon_now()
        return _seconds_text(max(0.0, end - started))

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


def _seconds_text(seconds: float) -> str:
    return f"{0.0 if seconds < 0.05 else seconds:.1f}s"
