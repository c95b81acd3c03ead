"""What the image tests share: the llbgen command line, the host CA bundle, reading plain progress."""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# The host's CA bundle: it trusts the TLS-intercepting proxy PyPI and Debian are reached through.
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
_STATUS = re.compile(r"^(\d+(\.\d+)?|DONE|ERROR|CANCELED|\.\.\.)\b")


def llbgen(*args: str, timeout: float, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m llbgen`` from the repository root (so the top-level ``stages`` package is importable)."""
    return subprocess.run([sys.executable, "-m", "llbgen", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=env)


def cached_steps(progress: str, prefix: str = "") -> dict[str, bool]:
    """Step name -> whether plain progress reported it CACHED.

    ``prefix``: only lines starting with it, with it removed (bake prefixes each line with ``[variant] ``).
    """
    names: dict[str, str] = {}
    cached: set[str] = set()
    for line in progress.splitlines():
        if not line.startswith(prefix):
            continue
        m = re.match(r"^#(\d+) (.*)$", line[len(prefix):])
        if not m:
            continue
        number, rest = m.groups()
        if rest == "CACHED":
            cached.add(number)
        elif number not in names and not _STATUS.match(rest):
            names[number] = rest
    return {name: number in cached for number, name in names.items()}


class SlowSolve:
    """``llbgen solve`` of one step that sleeps ``seconds`` on ``builder``, its stderr read as it comes.

    For the tests that cut or freeze the builder while a step runs: ``wait_running`` returns
    once the step has printed its marker, ``wait_exit`` how long llbgen took to end after that.
    """

    def __init__(self, builder: str, base: str, tmp_path: Path, *, seconds: int) -> None:
        self.marker = secrets.token_hex(6)
        graph = tmp_path / "slow.py"
        graph.write_text(
            "def graph(resolve):\n"
            f"    return resolve({base!r}).run(['sh', '-c', 'echo \"run\"\"ning-{self.marker}\"; "
            f"sleep {seconds}; echo finished-{self.marker}'], name='slow {self.marker}').root\n"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llbgen", "solve", f"{graph}:graph", "--builder", builder,
             "--output", f"type=tar,dest={tmp_path / 'never.tar'}", "--progress", "plain"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=REPO)
        self.lines: list[str] = []
        self._running = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            if f"running-{self.marker}" in line:
                self._running.set()

    @property
    def stderr(self) -> str:
        return "".join(self.lines)

    def wait_running(self, timeout: float = 120) -> None:
        assert self._running.wait(timeout), self.stderr

    def wait_exit(self, since: float, timeout: float) -> float | None:
        """Seconds from ``since`` (a monotonic time) until llbgen ended; None if it had to be killed."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None
        took = time.monotonic() - since
        self._reader.join(10)
        return took
