"""Per-vertex metadata: progress name, cache bypass and the caps a vertex needs.

Metadata travels beside the op bytes in a Definition (keyed by op digest), so it
never changes a digest or a cache key.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from llbgen._proto.buildkit import ops_pb2

# The key BuildKit shows as the vertex name in progress output.
CUSTOM_NAME = "llb.customname"


@dataclass(frozen=True)
class OpMetadata:
    """What a vertex carries besides its op: name, ignore-cache, caps, extra descriptions."""

    name: str | None = None
    ignore_cache: bool = False
    caps: frozenset[str] = field(default_factory=frozenset)
    description: tuple[tuple[str, str], ...] = ()

    def with_caps(self, *caps: str) -> OpMetadata:
        return replace(self, caps=self.caps | frozenset(caps))

    def merged(self, other: OpMetadata) -> OpMetadata:
        """Combine two metadata for the same digest (the second's name wins)."""
        return OpMetadata(
            name=other.name or self.name,
            ignore_cache=self.ignore_cache or other.ignore_cache,
            caps=self.caps | other.caps,
            description=tuple(dict(self.description + other.description).items()),
        )

    def to_pb(self) -> ops_pb2.OpMetadata:
        md = ops_pb2.OpMetadata(ignore_cache=self.ignore_cache)
        desc = dict(self.description)
        if self.name:
            desc[CUSTOM_NAME] = self.name
        md.description.update(desc)
        md.caps.update({cap: True for cap in self.caps})
        return md
