"""Target platforms (os/architecture/variant), as BuildKit's ``pb.Platform``."""

from __future__ import annotations

import platform as _host
from dataclasses import dataclass

from llbgen._proto.buildkit import ops_pb2

# Python's machine names → OCI architecture names (what containerd's platforms package uses).
_ARCH_ALIASES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm"}


@dataclass(frozen=True)
class Platform:
    """An OCI platform such as linux/amd64 or linux/arm/v7."""

    os: str = "linux"
    architecture: str = "amd64"
    variant: str = ""

    @classmethod
    def parse(cls, text: str) -> Platform:
        """``linux/amd64`` or ``linux/arm64/v8`` → Platform."""
        parts = text.strip().split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ValueError(f"invalid platform {text!r}: expected os/arch[/variant], e.g. linux/amd64")
        return cls(parts[0], _ARCH_ALIASES.get(parts[1], parts[1]), parts[2] if len(parts) == 3 else "")

    @classmethod
    def host(cls) -> Platform:
        """The platform of this machine, as BuildKit's Go client defaults to."""
        machine = _host.machine().lower()
        arch = _ARCH_ALIASES.get(machine, machine)
        return cls("linux", arch, "v7" if arch == "arm" else "")

    def to_pb(self) -> ops_pb2.Platform:
        return ops_pb2.Platform(OS=self.os, Architecture=self.architecture, Variant=self.variant)

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)
