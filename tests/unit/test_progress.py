"""Progress rendering, fed with real BuildKit StatusResponse messages (the daemon's wire type)."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone

import pytest
from rich.console import Console

from llbgen._proto.buildkit import control_pb2
from llbgen.builder.progress import (
    PlainRenderer,
    ProgressRecorder,
    QuietRenderer,
    RawJsonRenderer,
    TtyRenderer,
    exit_code_from,
    format_failure,
    human_bytes,
    make_renderer,
)
from llbgen.errors import UsageError

T0 = datetime(2025, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
BASE = "sha256:" + "a" * 64
UPDATE = "sha256:" + "b" * 64
COPY = "sha256:" + "c" * 64
FAIL = "sha256:" + "d" * 64
SIBLING = "sha256:" + "e" * 64


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def vertex(digest: str, name: str, started: float | None = None, completed: float | None = None, **kw):
    fields = dict(digest=digest, name=name, **kw)
    if started is not None:
        fields["started"] = at(started)
    if completed is not None:
        fields["completed"] = at(completed)
    return control_pb2.Vertex(**fields)


def log(digest: str, seconds: float, msg: bytes, stream: int = 1):
    return control_pb2.VertexLog(vertex=digest, timestamp=at(seconds), stream=stream, msg=msg)


def status(digest: str, id_: str, current: int, total: int, started: float, now: float, completed: float | None = None):
    fields = {"ID": id_, "vertex": digest, "current": current, "total": total}
    fields.update(started=at(started), timestamp=at(now))
    if completed is not None:
        fields["completed"] = at(completed)
    return control_pb2.VertexStatus(**fields)


def cached_and_run_build() -> list[control_pb2.StatusResponse]:
    """A base image pulled, a cached step, and a RUN that logs and finishes."""
    return [
        control_pb2.StatusResponse(
            vertexes=[
                vertex(BASE, "[1/3] FROM docker.io/library/debian:bookworm"),
                vertex(UPDATE, "[2/3] RUN apt-get update"),
            ]
        ),
        control_pb2.StatusResponse(
            vertexes=[vertex(BASE, "[1/3] FROM docker.io/library/debian:bookworm", started=0.0)]
        ),
        control_pb2.StatusResponse(statuses=[status(BASE, "sha256:abc", 1_050_000, 2_100_000, started=0.0, now=0.3)]),
        control_pb2.StatusResponse(
            statuses=[status(BASE, "sha256:abc", 2_100_000, 2_100_000, started=0.0, now=0.6, completed=0.6)],
            vertexes=[vertex(BASE, "[1/3] FROM docker.io/library/debian:bookworm", started=0.0, completed=0.7)],
        ),
        control_pb2.StatusResponse(
            vertexes=[vertex(COPY, "[internal] load metadata", started=0.7, completed=0.7, cached=True)]
        ),
        control_pb2.StatusResponse(vertexes=[vertex(UPDATE, "[2/3] RUN apt-get update", started=1.0)]),
        control_pb2.StatusResponse(
            logs=[log(UPDATE, 1.512, b"Get:1 http://deb.debian.org bookworm InRelease\nGet:2 ")]
        ),
        control_pb2.StatusResponse(logs=[log(UPDATE, 1.6, b"http://deb.debian.org bookworm-updates\n")]),
        control_pb2.StatusResponse(vertexes=[vertex(UPDATE, "[2/3] RUN apt-get update", started=1.0, completed=2.2)]),
    ]


def failing_build() -> list[control_pb2.StatusResponse]:
    """A RUN that prints to stderr and exits 2, while a sibling step is canceled."""
    error = 'process "/bin/sh -c make" did not complete successfully: exit code: 2'
    return [
        control_pb2.StatusResponse(
            vertexes=[vertex(FAIL, "[3/3] RUN make", started=0.0), vertex(SIBLING, "[2/3] COPY src", started=0.0)]
        ),
        control_pb2.StatusResponse(
            logs=[log(FAIL, 0.25, b"cc -o app main.c\n"), log(FAIL, 0.5, b"main.c:3: error: boom\n", stream=2)]
        ),
        control_pb2.StatusResponse(
            vertexes=[
                vertex(FAIL, "[3/3] RUN make", started=0.0, completed=0.9, error=error),
                vertex(
                    SIBLING, "[2/3] COPY src", started=0.0, completed=0.9, error="context canceled: context canceled"
                ),
            ]
        ),
    ]


def render_plain(messages, name_for=None) -> list[str]:
    out = io.StringIO()
    renderer = PlainRenderer(out, name_for=name_for)
    for message in messages:
        renderer.update(message)
    renderer.close()
    return out.getvalue().splitlines()


def test_plain_output_matches_buildx_shape():
    lines = render_plain(cached_and_run_build())
    assert lines == [
        "#1 [1/3] FROM docker.io/library/debian:bookworm",
        "#1 sha256:abc 1.05MB / 2.10MB (3.50MB/s) 0.3s",
        "#1 sha256:abc 2.10MB / 2.10MB (3.50MB/s) 0.6s done",
        "#1 DONE 0.7s",
        "",
        "#2 [internal] load metadata",
        "#2 CACHED",
        "",
        "#3 [2/3] RUN apt-get update",
        "#3 0.512 Get:1 http://deb.debian.org bookworm InRelease",
        "#3 0.512 Get:2 http://deb.debian.org bookworm-updates",
        "#3 DONE 1.2s",
    ]


def test_plain_marks_interleaved_unfinished_step_and_repeats_header():
    lines = render_plain(
        [
            control_pb2.StatusResponse(vertexes=[vertex(UPDATE, "[2/3] RUN a", started=0.0)]),
            control_pb2.StatusResponse(logs=[log(UPDATE, 0.1, b"from a\n")]),
            control_pb2.StatusResponse(vertexes=[vertex(FAIL, "[3/3] RUN b", started=0.2)]),
            control_pb2.StatusResponse(logs=[log(UPDATE, 0.3, b"more a\n")]),
        ]
    )
    assert lines == [
        "#1 [2/3] RUN a",
        "#1 0.100 from a",
        "#1 ...",
        "",
        "#2 [3/3] RUN b",
        "#2 ...",
        "",
        "#1 [2/3] RUN a",
        "#1 0.300 more a",
    ]


def test_plain_throttles_small_transfer_updates():
    messages = [control_pb2.StatusResponse(vertexes=[vertex(BASE, "pull", started=0.0)])]
    # 1% steps within a second: only the first, the 5%-later one and the completion are worth a line.
    for i in range(1, 8):
        messages.append(
            control_pb2.StatusResponse(statuses=[status(BASE, "sha256:abc", i * 10_000, 1_000_000, 0.0, i * 0.1)])
        )
    messages.append(
        control_pb2.StatusResponse(statuses=[status(BASE, "sha256:abc", 1_000_000, 1_000_000, 0.0, 0.9, completed=0.9)])
    )
    transfer_lines = [line for line in render_plain(messages) if "sha256:abc" in line]
    assert transfer_lines == [
        "#1 sha256:abc 10.00kB / 1.00MB (100.00kB/s) 0.1s",
        "#1 sha256:abc 60.00kB / 1.00MB (100.00kB/s) 0.6s",
        "#1 sha256:abc 1.00MB / 1.00MB (1.11MB/s) 0.9s done",
    ]


def test_plain_prints_error_and_cancel():
    lines = render_plain(failing_build())
    assert '#1 ERROR: process "/bin/sh -c make" did not complete successfully: exit code: 2' in lines
    assert "#2 CANCELED" in lines
    assert "#1 0.500 main.c:3: error: boom" in lines


def test_pending_vertex_is_not_numbered_until_it_starts():
    lines = render_plain(
        [
            control_pb2.StatusResponse(vertexes=[vertex(BASE, "never runs"), vertex(UPDATE, "runs")]),
            control_pb2.StatusResponse(vertexes=[vertex(UPDATE, "runs", started=0.0, completed=0.1)]),
        ]
    )
    assert lines == ["#1 runs", "#1 DONE 0.1s"]


def test_recorder_tracks_cached_and_summary():
    recorder = ProgressRecorder()
    for message in cached_and_run_build():
        recorder.update(message)
    by_digest = {v.digest: v for v in recorder.vertex_states()}
    assert by_digest[COPY].cached is True
    assert by_digest[UPDATE].cached is False
    assert [line.text for line in by_digest[UPDATE].log_tail] == [
        "Get:1 http://deb.debian.org bookworm InRelease",
        "Get:2 http://deb.debian.org bookworm-updates",
    ]
    summary = recorder.summary()
    assert (summary.total, summary.cached, summary.built, summary.failed) == (3, 1, 2, 0)
    assert summary.wall_seconds == pytest.approx(2.2)
    assert summary.step_seconds[0] == ("[2/3] RUN apt-get update", pytest.approx(1.2))
    assert recorder.failed_vertices() == []


def test_recorder_keeps_only_last_log_lines():
    recorder = ProgressRecorder(log_tail=20)
    recorder.update(control_pb2.StatusResponse(vertexes=[vertex(UPDATE, "RUN chatty", started=0.0)]))
    recorder.update(control_pb2.StatusResponse(logs=[log(UPDATE, 0.1, b"".join(b"line %d\n" % i for i in range(50)))]))
    tail = [line.text for line in recorder.vertex_states()[0].log_tail]
    assert tail == [f"line {i}" for i in range(30, 50)]


def test_failed_vertices_exclude_canceled_and_carry_exit_code():
    recorder = ProgressRecorder()
    for message in failing_build():
        recorder.update(message)
    (failure,) = recorder.failed_vertices()
    assert failure.name == "[3/3] RUN make"
    assert failure.exit_code == 2
    assert failure.last_logs == ("0.250 cc -o app main.c", "0.500 main.c:3: error: boom")
    assert recorder.summary().canceled == 1


def test_format_failure_names_step_exit_code_and_log_tail():
    recorder = ProgressRecorder()
    for message in failing_build():
        recorder.update(message)
    text = format_failure(recorder)
    assert text.splitlines() == [
        "step [3/3] RUN make failed with exit code 2",
        "------",
        " > [3/3] RUN make:",
        "0.250 cc -o app main.c",
        "0.500 main.c:3: error: boom",
        "------",
    ]


def test_format_failure_without_exit_code_quotes_error_and_empty_when_ok():
    recorder = ProgressRecorder()
    recorder.update(
        control_pb2.StatusResponse(
            vertexes=[
                vertex(
                    COPY,
                    "[2/3] COPY src /app",
                    started=0.0,
                    completed=0.1,
                    error='failed to calculate checksum: "/src": not found',
                )
            ]
        )
    )
    assert (
        format_failure(recorder) == 'step [2/3] COPY src /app failed: failed to calculate checksum: "/src": not found'
    )
    assert format_failure(ProgressRecorder()) == ""


def test_exit_code_from_error_texts():
    assert exit_code_from('process "/bin/sh -c false" did not complete successfully: exit code: 1') == 1
    assert exit_code_from("executor failed running [/bin/sh -c exit 127]: exit code: 127") == 127
    assert exit_code_from("failed to solve: image not found") is None


def test_name_for_overrides_daemon_name():
    seen = []

    def name_for(digest: str, daemon_name: str) -> str:
        seen.append((digest, daemon_name))
        return "[torch 2/5] pip install torch" if digest == UPDATE else daemon_name

    lines = render_plain(cached_and_run_build(), name_for=name_for)
    assert "#3 [torch 2/5] pip install torch" in lines
    assert "#1 [1/3] FROM docker.io/library/debian:bookworm" in lines
    assert (UPDATE, "[2/3] RUN apt-get update") in seen


def test_rawjson_is_one_json_object_per_response():
    out = io.StringIO()
    renderer = RawJsonRenderer(out)
    messages = cached_and_run_build()
    for message in messages:
        renderer.update(message)
    renderer.close()
    objects = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(objects) == len(messages)
    assert objects[0]["vertexes"][0]["digest"] == BASE
    assert objects[2]["statuses"][0]["ID"] == "sha256:abc"
    assert objects[6]["logs"][0]["msg"] == "Get:1 http://deb.debian.org bookworm InRelease\nGet:2 "
    assert objects[4]["vertexes"][0]["cached"] is True
    assert renderer.recorder.summary().cached == 1


def test_tty_renderer_draws_steps_on_a_terminal():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, height=30)
    renderer = TtyRenderer(console)
    for message in cached_and_run_build() + failing_build():
        renderer.update(message)
    renderer.close()
    text = out.getvalue()
    assert "[1/3] FROM docker.io/library/debian:bookworm" in text
    assert "CACHED [internal] load metadata" in text
    assert "ERROR [3/3] RUN make" in text
    assert "sha256:abc" in text and "2.10MB / 2.10MB (3.50MB/s)" in text
    assert "[+] Building" in text


class FakeClock:
    """The local clock, at T0 + ``seconds`` (the recorded stream's daemon clock)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self) -> float:
        return T0.timestamp() + self.seconds


def tty_text(renderer: TtyRenderer) -> str:
    out = io.StringIO()
    Console(file=out, width=120, height=30).print(renderer._live_view())
    return out.getvalue()


def test_tty_running_step_timer_advances_after_a_replayed_old_start():
    # BuildKit replays a shared step's original start (an hour ago); the running step's
    # timer must still count from its own start, as the clock advances.
    clock = FakeClock(0.0)
    renderer = TtyRenderer(Console(file=io.StringIO(), width=120, height=30), clock=clock)
    renderer.recorder.update(
        control_pb2.StatusResponse(vertexes=[vertex(BASE, "image debian", started=-3600.0, completed=-3599.9,
                                                    cached=True)])
    )
    renderer.recorder.update(control_pb2.StatusResponse(vertexes=[vertex(UPDATE, "os: apt-get install", started=0.0)]))
    step_line = next(line for line in tty_text(renderer).splitlines() if "os: apt-get install" in line)
    assert step_line.rstrip().endswith(" 0.0s")
    clock.seconds = 93.0
    step_line = next(line for line in tty_text(renderer).splitlines() if "os: apt-get install" in line)
    assert step_line.rstrip().endswith(" 93.0s")


def test_tty_running_step_timer_advances_when_the_stream_is_silent():
    # No message arrives while a silent step runs; its timer still moves with the local clock.
    clock = FakeClock(0.0)
    renderer = TtyRenderer(Console(file=io.StringIO(), width=120, height=30), clock=clock)
    renderer.recorder.update(control_pb2.StatusResponse(vertexes=[vertex(UPDATE, "torch: pip install", started=0.0)]))
    clock.seconds = 12.0
    step_line = next(line for line in tty_text(renderer).splitlines() if "torch: pip install" in line)
    assert step_line.rstrip().endswith(" 12.0s")


def test_tty_shows_bytes_and_rate_of_a_running_download():
    renderer = TtyRenderer(Console(file=io.StringIO(), width=120, height=30), clock=FakeClock(2.0))
    renderer.recorder.update(control_pb2.StatusResponse(vertexes=[vertex(BASE, "pull nvidia/cuda", started=0.0)]))
    renderer.recorder.update(
        control_pb2.StatusResponse(statuses=[status(BASE, "sha256:layer", 500_000_000, 2_000_000_000, 0.0, 2.0)])
    )
    line = next(line for line in tty_text(renderer).splitlines() if "sha256:layer" in line)
    assert "500.00MB / 2.00GB (250.00MB/s)" in line


def test_plain_gives_a_finished_step_one_final_state_when_a_sibling_fails():
    lines = render_plain(
        [
            control_pb2.StatusResponse(vertexes=[vertex(COPY, "init: files", started=0.0, completed=0.1)]),
            control_pb2.StatusResponse(vertexes=[vertex(FAIL, "download Miniconda", started=0.0)]),
            control_pb2.StatusResponse(
                vertexes=[
                    vertex(FAIL, "download Miniconda", started=0.0, completed=0.2, error="dial tcp: no such host"),
                    vertex(COPY, "init: files", started=0.0, completed=0.3, error="context canceled: context canceled"),
                ]
            ),
        ]
    )
    assert [line for line in lines if line.startswith("#1 ") and line != "#1 init: files"] == ["#1 DONE 0.1s"]
    assert "#2 ERROR: dial tcp: no such host" in lines


def test_plain_prints_one_verdict_for_a_step_reported_finished_twice():
    lines = render_plain(
        [
            control_pb2.StatusResponse(vertexes=[vertex(COPY, "init: image-info", completed=0.1)]),
            control_pb2.StatusResponse(vertexes=[vertex(COPY, "init: image-info", started=0.2, completed=0.3)]),
        ]
    )
    assert [line for line in lines if "DONE" in line] == ["#1 DONE"]


def test_quiet_renderer_records_without_output():
    renderer = QuietRenderer()
    for message in failing_build():
        renderer.update(message)
    renderer.close()
    assert renderer.recorder.failed_vertices()[0].exit_code == 2


def test_make_renderer_modes():
    plain_stream = io.StringIO()  # StringIO is not a terminal: auto means plain
    assert isinstance(make_renderer("auto", plain_stream), PlainRenderer)
    assert isinstance(make_renderer("plain", plain_stream), PlainRenderer)
    assert isinstance(make_renderer("rawjson", plain_stream), RawJsonRenderer)
    assert isinstance(make_renderer("quiet", plain_stream), QuietRenderer)
    assert isinstance(make_renderer("tty", plain_stream), TtyRenderer)
    with pytest.raises(UsageError):
        make_renderer("fancy", plain_stream)  # type: ignore[arg-type]


def test_human_bytes_uses_decimal_units():
    assert human_bytes(512) == "512B"
    assert human_bytes(1_050_000) == "1.05MB"
    assert human_bytes(2_100_000_000) == "2.10GB"
    assert human_bytes(1000) == "1.00kB"
