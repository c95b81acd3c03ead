"""Which builder a variant goes to: the least loaded one when it starts.

Least loaded = fewest variants running on it now, then fewest given to it so far,
then the order the builders were named in — so with as many slots as builders the
variants go round-robin, and a builder that finishes early takes the next one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class BuilderPool:
    """Hands out builder indexes to concurrent variants."""

    def __init__(self, count: int) -> None:
        if count < 1:
            raise ValueError("a pool needs at least one builder")
        self._running = [0] * count
        self._given = [0] * count
        self._lock = threading.Lock()

    def acquire(self) -> int:
        with self._lock:
            index = min(range(len(self._running)), key=lambda i: (self._running[i], self._given[i], i))
            self._running[index] += 1
            self._given[index] += 1
            return index

    def release(self, index: int) -> None:
        with self._lock:
            self._running[index] -= 1

    @contextmanager
    def slot(self) -> Iterator[int]:
        index = self.acquire()
        try:
            yield index
        finally:
            self.release(index)

    @property
    def given(self) -> tuple[int, ...]:
        with self._lock:
            return tuple(self._given)
