"""Imports every command module so each registers itself on the app."""

from llbgen.cli import builder_cmd, solve_cmd, version_cmd  # noqa: F401
from llbgen.cli import versions_cmd  # noqa: F401
