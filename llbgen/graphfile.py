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
from pathlib import Path

from llbgen.errors import UsageError
from llbgen.llb.state import State

ImageResolver = Callable[[str], State]


def load_graph(target: str, resolve: ImageResolver | None = None) -> State:
    """Import the graph named by ``target`` and evaluate it to a State."""
    location, sep, name = target.rpartition(":")
    if not sep or not location or not name:
        raise UsageError(f"graph {target!r}: expected FILE.py:NAME or module:NAME")
    module = _import(location)
    if not hasattr(module, name):
        raise UsageError(f"graph {target!r}: {location} has no {name!r}")
    value = getattr(module, name)
    if callable(value) and not isinstance(value, State):
        params = inspect.signature(value).parameters
        if "resolve" in params:
            from llbgen import llb

            value = value(resolve=resolve or (lambda ref: llb.image(ref)))
        else:
            value = value()
    if not isinstance(value, State):
        raise UsageError(f"graph {target!r} is a {type(value).__name__}, not an llbgen.llb.State")
    return value


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
