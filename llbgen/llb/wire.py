"""Op bytes and digests exactly as BuildKit computes them.

BuildKit hashes the bytes of each marshaled ``pb.Op``. Current BuildKit (Go,
protobuf-go) writes an Op's non-oneof fields first and its oneof (exec, source,
file, ...) last; older gogo-era daemons (BuildKit ≤ 0.16, e.g. Docker Engine 26)
re-marshal ops in plain field-number order. ``marshal_op`` produces the Go bytes;
``field_order_bytes`` the old ones, so progress can be matched on both.
"""

from __future__ import annotations

import hashlib

from llbgen._proto.buildkit import ops_pb2


def digest_of(data: bytes) -> str:
    """The OCI digest string BuildKit uses for an op: ``sha256:<hex>``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def marshal_op(op: ops_pb2.Op) -> bytes:
    """Serialize an Op as protobuf-go does: maps sorted, oneof fields after the others."""
    which = op.WhichOneof("op")
    if which is None:
        return op.SerializeToString(deterministic=True)
    head = ops_pb2.Op()
    head.CopyFrom(op)
    head.ClearField("op")
    tail = ops_pb2.Op()
    getattr(tail, which).CopyFrom(getattr(op, which))
    # Concatenated protobuf messages parse as one: head fields, then the oneof.
    return head.SerializeToString(deterministic=True) + tail.SerializeToString(deterministic=True)


def field_order_bytes(op: ops_pb2.Op) -> bytes:
    """Serialize an Op in field-number order, as gogo-era BuildKit re-marshals it."""
    return op.SerializeToString(deterministic=True)
