"""Imports every command module so each registers itself on the app."""

from llbgen.cli import version_cmd  # noqa: F401
