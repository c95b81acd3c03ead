"""Human formatting of sizes, durations, transfers and failures."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only annotations: the recorder itself formats with this module
    from llbgen.builder.progress.recorder import ProgressRecorder, TransferStatus


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


def transfer_rate(status: TransferStatus) -> str:
    """``3.50MB/s``: the average rate so far, once the transfer has run long enough to tell."""
    end = status.completed if status.completed is not None else status.timestamp
    if status.started is None or end is None or not status.current:
        return ""
    seconds = end - status.started
    if seconds < 0.05:
        return ""
    return f"{human_bytes(round(status.current / seconds))}/s"


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
