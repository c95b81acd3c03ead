"""Imports every command module so each registers itself on the app."""

from llbgen.cli import (  # noqa: F401
    bake_cmd,  # noqa: F401  (bake)
    build_cmd,  # noqa: F401  (build, plan)
    builder_cmd,
    export_cmd,  # noqa: F401  (export-dockerfile)
    solve_cmd,
    verify_cmd,  # noqa: F401
    version_cmd,
    versions_cmd,
)
