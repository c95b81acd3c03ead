"""Progress of concurrent variants on one terminal: each line says which variant it is about.

Every variant's solve renders its own progress (plain or rawjson) into a
``VariantStream``; complete lines reach the shared output under one lock, prefixed
``[name] `` (plain) or given a ``"variant"`` key (rawjson), so lines of different
variants interleave but never mix.
"""

from __future__ import annotations

import io
import threading
from typing import IO

BAKE_PROGRESS_MODES = ("auto", "plain", "quiet", "rawjson")
_LOCK = threading.Lock()


def check_bake_progress(mode: str) -> str:
    """auto and plain both print prefixed plain lines: a live view of several builds would fight over the screen."""
    from llbgen.errors import UsageError

    if mode == "tty":
        raise UsageError("--progress tty: bake builds variants concurrently; use plain (prefixed lines) or quiet")
    if mode not in BAKE_PROGRESS_MODES:
        raise UsageError(f"--progress {mode!r}: use one of {', '.join(BAKE_PROGRESS_MODES)}")
    return "plain" if mode == "auto" else mode


class VariantStream(io.TextIOBase):
    """A text stream that forwards whole lines to ``target``, each marked with the variant's name."""

    def __init__(self, name: str, target: IO[str], *, json_lines: bool = False) -> None:
        super().__init__()
        self.name = name
        self._target = target
        self._json = json_lines
        self._pending = ""

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        *lines, self._pending = (self._pending + text).split("\n")
        if lines:
            self._emit(lines)
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self._emit([self._pending])
            self._pending = ""

    def line(self, text: str) -> None:
        """One message line of llbgen's own (not from the build), marked the same way."""
        self._emit(text.split("\n"))

    def _emit(self, lines: list[str]) -> None:
        if self._json:
            import json

            out = [(f'{{"variant":{json.dumps(self.name)},' + line[1:]) if line.startswith("{") else
                   json.dumps({"variant": self.name, "message": line}) for line in lines if line]
        else:
            out = [f"[{self.name}] {line}" for line in lines if line.strip()]  # blank separators would mislead
        if not out:
            return
        with _LOCK:
            self._target.write("".join(line + "\n" for line in out))
            self._target.flush()
