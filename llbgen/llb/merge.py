"""Merge and diff vertices: the layer algebra that keeps layers independent.

``merge([a, b, c])`` stacks the filesystems in order (later wins) and, when
exported, is simply the concatenation of each input's layers — so a layer
built once is reused byte for byte under any base. ``diff(lower, upper)`` is
"what upper changed on top of lower"; merging that diff onto another base
attaches the same layer there. Together they let a stage build on a neutral
builder image and be attached to a CUDA base without depending on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from llbgen._proto.buildkit import ops_pb2
from llbgen.llb.metadata import OpMetadata
from llbgen.llb.vertex import EMPTY, InputDigest, Output, Vertex, constraints_pb


@dataclass(frozen=True)
class MergeOp(Vertex):
    sources: tuple[Output, ...]
    metadata: OpMetadata = field(default_factory=lambda: OpMetadata(caps=frozenset({"mergeop"})))

    def __post_init__(self) -> None:
        if len(self.sources) < 2:
            raise ValueError("merge needs at least 2 non-scratch inputs")

    def inputs(self) -> tuple[Output, ...]:
        return self.sources

    def to_op(self, to_input: InputDigest) -> ops_pb2.Op:
        # No de-duplication of inputs: merging the same state twice is legal and positional.
        op = ops_pb2.Op(inputs=[to_input(o) for o in self.sources])
        op.constraints.CopyFrom(constraints_pb())
        op.merge.CopyFrom(ops_pb2.MergeOp(inputs=[ops_pb2.MergeInput(input=i) for i in range(len(self.sources))]))
        return op


@dataclass(frozen=True)
class DiffOp(Vertex):
    lower: Output | None
    upper: Output | None
    metadata: OpMetadata = field(default_factory=lambda: OpMetadata(caps=frozenset({"diffop"})))

    def inputs(self) -> tuple[Output, ...]:
        return tuple(o for o in (self.lower, self.upper) if o is not None)

    def to_op(self, to_input: InputDigest) -> ops_pb2.Op:
        op = ops_pb2.Op(inputs=[to_input(o) for o in self.inputs()])
        lower_index = EMPTY if self.lower is None else 0
        upper_index = EMPTY if self.upper is None else len(op.inputs) - 1
        op.constraints.CopyFrom(constraints_pb())
        op.diff.CopyFrom(ops_pb2.DiffOp(lower=ops_pb2.LowerDiffInput(input=lower_index),
                                        upper=ops_pb2.UpperDiffInput(input=upper_index)))
        return op
