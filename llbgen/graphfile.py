"""Load a user's graph from ``FILE.py:NAME`` or ``package.module:NAME``.

NAME is a State, or a function returning one. A function may take a ``resolve``
argument: ``resolve("debian:bookworm")`` returns the base image pinned to the
digest the builder resolved, with its config inherited. Without a builder (as
for ``llbgen llb``) images stay unpinned.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from llbgen.errors import LlbgenError, UsageError
from llbgen.llb.state import State

ImageResolver = Callable[[str], State]


@dataclass(frozen=True)
class GraphTarget:
    """What ``FILE.py:NAME`` names, found but not yet evaluated."""

    target: str
    value: object

    @property
    def needs_builder(self) -> bool:
        """True for a function taking ``resolve``: it runs once a builder can pin its images."""
        return self._is_function() and "resolve" in self._parameters()

    def _is_function(self) -> bool:
        return callable(self.value) and not isinstance(self.value, State)

    def _parameters(self):
        try:
            return inspect.signature(self.value).parameters  # type: ignore[arg-type]
        except (TypeError, ValueError):  # a callable without a signature takes no resolve
            return {}

    def evaluate(self, resolve: ImageResolver | None = None) -> State:
        """The State, calling the function when NAME is one; what it raises is reported as one line."""
        value = self.value
        if self._is_function():
            try:
                if self.needs_builder:
                    from llbgen import llb

                    value = value(resolve=resolve or (lambda ref: llb.image(ref)))  # type: ignore[operator]
                else:
                    value = value()  # type: ignore[operator]
            except LlbgenError:  # resolve's own errors (builder, registry) say what they are
                raise
            except Exception as err:  # a user's function: report it, no traceback
                name = self.target.rpartition(":")[2]
                raise UsageError(f"graph {self.target!r}: {name}() raised {type(err).__name__}: {err}") from None
        if not isinstance(value, State):
            raise UsageError(f"graph {self.target!r} is a {type(value).__name__}, not an llbgen.llb.State")
        return value


def find_graph(target: str) -> GraphTarget:
    """Import the module ``target`` names and find NAME in it (no builder needed)."""
    location, sep, name = target.rpartition(":")
    if not sep or not location or not name:
        raise UsageError(f"graph {target!r}: expected FILE.py:NAME or module:NAME")
    module = _import(location)
    if not hasattr(module, name):
        raise UsageError(f"graph {target!r}: {location} has no {name!r}")
    return GraphTarget(target, getattr(module, name))


def load_graph(target: str, resolve: ImageResolver | None = None) -> State:
    """Import the graph named by ``target`` and evaluate it to a State."""
    return find_graph(target).evaluate(resolve)


def _import(location: str):
    path = Path(location)
    if location.endswith(".py"):
        if not path.is_file():
            raise UsageError(f"graph file {location} not found")
        spec = importlib.util.spec_from_file_location(f"llbgen_graph_{abs(hash(path.resolve()))}", path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as err:  # a user's file: report it, no traceback
            raise UsageError(f"graph file {location} failed to load: {type(err).__name__}: {err}") from None
        return module
    try:
        return importlib.import_module(location)
    except ImportError as err:
        raise UsageError(f"graph module {location}: {err}") from None
