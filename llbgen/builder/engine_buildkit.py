"""Which BuildKit a Docker Engine vendors, for engines that do not say.

Debian's (and other distributions') engines report a placeholder instead of their vendored
BuildKit version. The release notes of moby/moby name the BuildKit each minor release
updates to; a guess from that table is always shown as inferred, never as reported.
"""

from __future__ import annotations

import re

# Docker Engine major.minor → the BuildKit minor it vendors (moby/moby release notes).
ENGINE_BUILDKIT = {
    (23, 0): "0.11", (24, 0): "0.11", (25, 0): "0.12", (26, 0): "0.13", (26, 1): "0.13",
    (27, 0): "0.14", (27, 1): "0.15", (27, 2): "0.15", (27, 3): "0.16", (27, 4): "0.17",
    (27, 5): "0.18", (28, 0): "0.20", (28, 1): "0.21", (28, 2): "0.22", (28, 3): "0.23",
    (28, 4): "0.24", (28, 5): "0.25",
}


def inferred_buildkit_version(engine_version: str | None) -> str | None:
    """``"26.1.5+dfsg1"`` → ``"0.13"``; None for an engine the table does not know."""
    match = re.match(r"v?(\d+)\.(\d+)", engine_version or "")
    if not match:
        return None
    return ENGINE_BUILDKIT.get((int(match.group(1)), int(match.group(2))))
