"""Imports every command module so each registers itself on the app."""

from llbgen.cli import (  # noqa: F401
    builder_cmd,
    solve_cmd,
    version_cmd,
    versions_cmd,
)
from llbgen.cli import build_cmd  # noqa: F401  (build, plan)
from llbgen.cli import verify_cmd  # noqa: F401
