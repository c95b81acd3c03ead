"""Imports every command module so each registers itself on the app."""

from llbgen.cli import (  # noqa: F401
    builder_cmd,
    solve_cmd,
    version_cmd,
    versions_cmd,
)
