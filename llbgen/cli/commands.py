"""Which module registers which command on the app, and importing them.

A run imports only the module of the command it runs (each pulls in its own options
and helpers); help, completion and unknown commands import them all.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

COMMAND_MODULES = {
    "bake": "bake_cmd",
    "build": "build_cmd",
    "plan": "build_cmd",
    "builder": "builder_cmd",
    "export-dockerfile": "export_cmd",
    "llb": "solve_cmd",
    "solve": "solve_cmd",
    "verify": "verify_cmd",
    "version": "version_cmd",
    "versions": "versions_cmd",
}


def register(argv: Sequence[str]) -> None:
    """Register the command ``argv`` names (its first word), or every command when it names none."""
    first = argv[0] if argv else ""
    modules = [COMMAND_MODULES[first]] if first in COMMAND_MODULES else sorted(set(COMMAND_MODULES.values()))
    for module in modules:
        importlib.import_module(f"llbgen.cli.{module}")
