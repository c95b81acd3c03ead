"""Vertices and their outputs: the nodes and edges of an LLB graph.

A vertex is an immutable value describing one op. It knows its inputs and how
to build its ``pb.Op`` once the digests of those inputs are known; the walk
that assigns digests lives in ``definition.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from llbgen._proto.buildkit import ops_pb2
from llbgen.llb.metadata import OpMetadata

# Index constants from BuildKit's solver/pb: "no input" (scratch) and "no output".
EMPTY = -1
SKIP_OUTPUT = -1

InputDigest = Callable[["Output"], ops_pb2.Input]


class Vertex(ABC):
    """One LLB op. Subclasses are frozen dataclasses, so equal vertices are equal values."""

    metadata: OpMetadata

    @abstractmethod
    def inputs(self) -> tuple[Output, ...]:
        """The outputs this vertex reads, in the order the walk visits them."""

    @abstractmethod
    def to_op(self, to_input: InputDigest) -> ops_pb2.Op:
        """Build the ``pb.Op``; ``to_input`` turns an input Output into a ``pb.Input``."""

    def op_metadata(self) -> OpMetadata:
        return self.metadata


@dataclass(frozen=True)
class Output:
    """Output number ``index`` of ``vertex``: what a State or a mount points at."""

    vertex: Vertex
    index: int = 0


def constraints_pb() -> ops_pb2.WorkerConstraints:
    # The Go client always sets an (empty) constraints message on every op; it is
    # part of the bytes, so it must be here for the digests to match.
    return ops_pb2.WorkerConstraints()
