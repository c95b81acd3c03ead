"""The verify report: one row per check (check, result, detail), shown as a rich table.

Pure data and formatting; nothing here touches Docker or the network.

>>> r = Report()
>>> r.passed("locale", "LANG=zh_CN.UTF-8").failed("timezone", "UTC+0000").skipped("CUDA", "CPU image")
Report(3 checks: 1 passed, 1 failed, 1 skipped)
>>> r.ok, r.exit_code
(False, 1)
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

from rich.console import Console
from rich.table import Table
from rich.text import Text


class Status(enum.Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    SKIP = "SKIP"


_STYLE = {Status.PASS: "bold green", Status.FAIL: "bold red", Status.SKIP: "yellow"}
DETAIL_LIMIT = 300  # characters of detail kept per row (command output can be long)


def clip(text: str, limit: int = DETAIL_LIMIT) -> str:
    """One printable string of at most ``limit`` characters."""
    text = " ".join(text.replace("\r", "").split()) if "\n" in text or "\r" in text else text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class CheckResult:
    """One row: which check, its outcome, and what was seen (or why it was skipped)."""

    name: str
    status: Status
    detail: str = ""


@dataclass
class Report:
    """The checks of one ``llbgen verify`` run, in the order they ran."""

    image: str = ""
    results: list[CheckResult] = field(default_factory=list)

    def add(self, name: str, status: Status, detail: str = "") -> Report:
        self.results.append(CheckResult(name, status, clip(detail)))
        return self

    def passed(self, name: str, detail: str = "") -> Report:
        return self.add(name, Status.PASS, detail)

    def failed(self, name: str, detail: str = "") -> Report:
        return self.add(name, Status.FAIL, detail)

    def skipped(self, name: str, detail: str = "") -> Report:
        return self.add(name, Status.SKIP, detail)

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        """PASS when ``ok``, else FAIL; returns ``ok``."""
        self.add(name, Status.PASS if ok else Status.FAIL, detail)
        return ok

    def extend(self, results: Iterable[CheckResult]) -> Report:
        for r in results:
            self.add(r.name, r.status, r.detail)
        return self

    def count(self, status: Status) -> int:
        return sum(1 for r in self.results if r.status is status)

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if r.status is Status.FAIL]

    @property
    def ok(self) -> bool:
        """True when something was checked and nothing failed."""
        return not self.failures and self.count(Status.PASS) > 0

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def summary(self) -> str:
        passed, failed, skipped = (self.count(s) for s in Status)
        if self.ok:
            return f"OK: all {passed} checks passed" + (f" ({skipped} skipped)" if skipped else "")
        if not failed:
            return "FAILED: nothing was checked"
        return f"FAILED: {failed} of {passed + failed} checks failed" + (f" ({skipped} skipped)" if skipped else "")

    def table(self) -> Table:
        table = Table(title=f"llbgen verify {self.image}".rstrip(), title_justify="left", show_lines=False)
        table.add_column("check", no_wrap=True)
        table.add_column("result", no_wrap=True)
        table.add_column("detail", overflow="fold")
        for r in self.results:
            table.add_row(r.name, Text(r.status.value, style=_STYLE[r.status]), Text(r.detail))
        return table

    def render(self, console: Console) -> None:
        console.print(self.table())
        console.print(Text(self.summary(), style="bold green" if self.ok else "bold red"))

    def __repr__(self) -> str:
        passed, failed, skipped = (self.count(s) for s in Status)
        return f"Report({len(self.results)} checks: {passed} passed, {failed} failed, {skipped} skipped)"
