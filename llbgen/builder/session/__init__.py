"""The BuildKit session: the gRPC services the daemon calls back into during a solve."""

from llbgen.builder.session.auth import DockerAuthProvider
from llbgen.builder.session.server import Session

__all__ = ["DockerAuthProvider", "Session"]
