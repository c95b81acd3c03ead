"""Imports every command module so each registers itself on the app."""

from llbgen.cli import solve_cmd, version_cmd  # noqa: F401
