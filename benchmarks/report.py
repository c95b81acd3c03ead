"""Tables: one row per contender, each measured value followed by its ratio to (b) and to (c)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

Row = Mapping[str, object]


def seconds(value: object) -> str:
    return f"{value:.1f} s" if isinstance(value, (int, float)) else str(value)


def short_seconds(value: object) -> str:
    """Sub-second times (no-op rebuilds) to the hundredth."""
    return f"{value:.2f} s" if isinstance(value, (int, float)) else str(value)


def size(value: object) -> str:
    if not isinstance(value, (int, float)):
        return str(value)
    if abs(value) >= 1e9:
        return f"{value / 1e9:.2f} GB"
    return f"{value / 1e6:.1f} MB"


def percent(value: object) -> str:
    return f"{100 * value:.1f} %" if isinstance(value, (int, float)) else str(value)


def load(value: object) -> str:
    """A mean 1-minute load average (2 cores here: above 2 means builds waited for CPU)."""
    return f"{value:.1f}" if isinstance(value, (int, float)) else "—"


def plain(value: object) -> str:
    return str(value)


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    fmt: Callable[[object], str] = plain
    ratios: bool = False  # add ÷(b) and ÷(c) columns


def ratio(value: object, reference: object) -> str:
    if not isinstance(value, (int, float)) or not isinstance(reference, (int, float)):
        return "—"
    if reference == 0:
        return "—" if value else "1.00"
    return f"{value / reference:.2f}"


def table(title: str, rows: Mapping[str, Row], labels: Mapping[str, str], columns: Sequence[Column],
          note: str = "") -> list[str]:
    """A Markdown table: the contenders in ``rows`` (key -> values), ratios against rows 'b' and 'c'."""
    header = ["contender"]
    for col in columns:
        header.append(col.header)
        if col.ratios:
            header += ["÷(b)", "÷(c)"]
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key, row in rows.items():
        cells = [labels.get(key, key)]
        for col in columns:
            value = row.get(col.key, "—")
            cells.append(col.fmt(value) if value is not None else "—")
            if col.ratios:
                cells += [ratio(value, rows.get(ref, {}).get(col.key)) for ref in ("b", "c")]
        lines.append("| " + " | ".join(c.replace("|", "/").replace("\n", " ") for c in cells) + " |")
    if note:
        lines += ["", note]
    return lines + [""]


@dataclass(frozen=True)
class Target:
    text: str
    measured: str
    met: bool | None  # None: not measured in this run

    @property
    def verdict(self) -> str:
        return {True: "met", False: "NOT met", None: "not measured"}[self.met]


def targets_table(targets: Sequence[Target]) -> list[str]:
    lines = ["### Targets (issue 5)", "", "| target | measured | verdict |", "|---|---|---|"]
    lines += [f"| {t.text} | {t.measured.replace('|', '/')} | {t.verdict} |" for t in targets]
    return lines + [""]


def facts_lines(facts: Mapping[str, str]) -> list[str]:
    return ["### Machine", ""] + [f"- {k}: {v}" for k, v in facts.items()] + [""]
