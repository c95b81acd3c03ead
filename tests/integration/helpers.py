"""What the image tests share: the llbgen command line, the host CA bundle, reading plain progress."""

from __future__ import annotations

import re
import subprocess
import sys
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
