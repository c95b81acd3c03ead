"""Errors a user can cause or fix. The CLI prints them as one line and exits non-zero."""

from __future__ import annotations


class LlbgenError(Exception):
    """A problem the user can act on; ``str(err)`` is the whole message."""

    exit_code = 1


class UsageError(LlbgenError):
    """Bad input (flags, spec, files), found before any build starts."""

    exit_code = 2


class BuilderUnavailable(LlbgenError):
    """The BuildKit endpoint cannot be reached or does not answer."""


class CapabilityMissing(LlbgenError):
    """The builder lacks something the graph or the options need."""


class BuildFailed(LlbgenError):
    """The solve itself failed (a step exited non-zero, an export failed, ...)."""


class Cancelled(LlbgenError):
    """The user interrupted the build (Ctrl-C)."""

    exit_code = 130
