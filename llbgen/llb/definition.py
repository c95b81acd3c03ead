"""Marshal a State into a BuildKit ``Definition`` and read one back.

The walk matches BuildKit's Go client: inputs before the ops that use them
(depth first, in input order), each distinct op once, and a terminal op (an Op
with only the result as input) last. Op bytes are produced once and hashed;
they are never re-serialized, so digests are stable across marshals.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from llbgen._proto.buildkit import ops_pb2
from llbgen.llb.metadata import OpMetadata
from llbgen.llb.vertex import Output, Vertex
from llbgen.llb.wire import digest_of, field_order_bytes, marshal_op


@dataclass(frozen=True)
class Definition:
    """Marshaled ops (terminal last) and their metadata, keyed by op digest."""

    ops: tuple[bytes, ...]
    metadata: tuple[tuple[str, OpMetadata], ...]

    @property
    def digests(self) -> tuple[str, ...]:
        return tuple(digest_of(dt) for dt in self.ops)

    @property
    def head(self) -> str | None:
        """Digest of the result op (the terminal's input), ``None`` for an empty graph."""
        if not self.ops:
            return None
        terminal = ops_pb2.Op.FromString(self.ops[-1])
        return terminal.inputs[0].digest

    def op(self, digest: str) -> ops_pb2.Op:
        for dt in self.ops:
            if digest_of(dt) == digest:
                return ops_pb2.Op.FromString(dt)
        raise KeyError(digest)

    def to_pb(self) -> ops_pb2.Definition:
        definition = ops_pb2.Definition(**{"def": list(self.ops)})
        for digest, md in self.metadata:
            definition.metadata[digest].CopyFrom(md.to_pb())
        return definition

    def to_bytes(self) -> bytes:
        """The bytes ``buildctl build`` reads on stdin."""
        return self.to_pb().SerializeToString(deterministic=True)

    def json_lines(self) -> Iterator[str]:
        """One readable JSON object per op: digest, inputs, op, metadata."""
        # Imported here: json_format is slow to load and only ``llbgen llb --format json`` needs it.
        from google.protobuf import json_format

        metadata = dict(self.metadata)
        for dt in self.ops:
            digest = digest_of(dt)
            op = ops_pb2.Op.FromString(dt)
            line = {
                "digest": digest,
                "inputs": [{"digest": i.digest, "index": i.index} for i in op.inputs],
                "op": json_format.MessageToDict(op, preserving_proto_field_name=True),
            }
            line["op"].pop("inputs", None)
            if digest in metadata:
                line["metadata"] = json_format.MessageToDict(metadata[digest].to_pb(),
                                                             preserving_proto_field_name=True)
            yield json.dumps(line, sort_keys=True)

    def vertex_index(self) -> VertexIndex:
        return VertexIndex.build(self)


def marshal(state: object) -> Definition:
    """Marshal a State (or an Output) and everything it depends on.

    >>> marshal(image("debian").run("true").root).digests
    """
    from llbgen.llb.state import State

    output = state.output if isinstance(state, State) else state
    if output is None:
        return Definition((), ())
    if not isinstance(output, Output):
        raise TypeError("marshal expects a State or an Output")
    ops: list[bytes] = []
    seen_digests: set[str] = set()
    digest_by_vertex: dict[int, str] = {}
    keep_alive: list[Vertex] = []  # ids stay unique only while the objects live
    metadata: dict[str, OpMetadata] = {}

    def to_input(out: Output) -> ops_pb2.Input:
        return ops_pb2.Input(digest=digest_by_vertex[id(out.vertex)], index=out.index)

    # Iterative post-order walk: deep graphs must not hit Python's recursion limit.
    stack: list[tuple[Vertex, bool]] = [(output.vertex, False)]
    while stack:
        vertex, expanded = stack.pop()
        if id(vertex) in digest_by_vertex:
            continue
        if not expanded:
            stack.append((vertex, True))
            for inp in reversed(vertex.inputs()):
                if id(inp.vertex) not in digest_by_vertex:
                    stack.append((inp.vertex, False))
            continue
        dt = marshal_op(vertex.to_op(to_input))
        digest = digest_of(dt)
        digest_by_vertex[id(vertex)] = digest
        keep_alive.append(vertex)
        md = vertex.op_metadata()
        metadata[digest] = metadata[digest].merged(md) if digest in metadata else md
        if digest not in seen_digests:
            seen_digests.add(digest)
            ops.append(dt)

    terminal = ops_pb2.Op(inputs=[to_input(output)]).SerializeToString(deterministic=True)
    caps = {"constraints", "platform"}
    if any(md.ignore_cache for md in metadata.values()):
        caps.add("meta.ignorecache")
    if any(md.name or md.description for md in metadata.values()):
        caps.add("meta.description")
    metadata[digest_of(terminal)] = OpMetadata(caps=frozenset(caps))
    ops.append(terminal)
    return Definition(tuple(ops), tuple(sorted(metadata.items())))


@dataclass(frozen=True)
class VertexInfo:
    digest: str
    name: str | None
    op: ops_pb2.Op


@dataclass(frozen=True)
class VertexIndex:
    """Find the op behind a digest a daemon reports in its Status stream.

    Daemons re-marshal every op and report their own digests: BuildKit ≥ 0.17
    reproduces ours; gogo-era daemons (≤ 0.16) write fields in number order, which
    changes the digest of any op with a platform and, through inputs, of all ops
    below it. Both digests are indexed.
    """

    by_digest: dict[str, VertexInfo]

    @classmethod
    def build(cls, definition: Definition) -> VertexIndex:
        names = {d: md.name for d, md in definition.metadata}
        index: dict[str, VertexInfo] = {}
        legacy: dict[str, str] = {}
        for dt in definition.ops[:-1]:
            digest = digest_of(dt)
            op = ops_pb2.Op.FromString(dt)
            info = VertexInfo(digest, names.get(digest), op)
            index[digest] = info
            old = ops_pb2.Op()
            old.CopyFrom(op)
            for inp in old.inputs:
                inp.digest = legacy.get(inp.digest, inp.digest)
            legacy[digest] = digest_of(field_order_bytes(old))
            index.setdefault(legacy[digest], info)
        return cls(index)

    def lookup(self, daemon_digest: str) -> VertexInfo | None:
        return self.by_digest.get(daemon_digest)

    def name_for(self, daemon_digest: str, daemon_name: str) -> str:
        info = self.lookup(daemon_digest)
        return (info.name if info and info.name else None) or daemon_name
