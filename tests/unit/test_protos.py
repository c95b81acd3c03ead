"""The generated stubs under llbgen/_proto: in sync with protos/, importable
together, and carrying the field numbers BuildKit puts on the wire."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ROOT / "llbgen" / "_proto"
PROTOS = ROOT / "protos"


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def _modules() -> list[str]:
    return sorted(
        "llbgen._proto." + ".".join(p.relative_to(GENERATED).with_suffix("").parts)
        for p in GENERATED.rglob("*_pb2*.py")
    )


def test_generated_stubs_match_protos(tmp_path: Path) -> None:
    out = tmp_path / "_proto"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--out", str(out)],
        check=True,
        cwd=ROOT,
    )
    fresh, committed = _files(out), _files(GENERATED)
    hint = "run: .venv/bin/python scripts/gen_protos.py"
    assert sorted(fresh) == sorted(committed), f"generated file set differs; {hint}"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"stale generated files {stale}; {hint}"


def test_every_proto_has_a_module() -> None:
    for proto in PROTOS.rglob("*.proto"):
        rel = proto.relative_to(PROTOS).with_suffix("")
        assert (GENERATED / rel.parent / f"{rel.name}_pb2.py").is_file(), proto


def test_all_modules_import_together() -> None:
    # One process, one default descriptor pool: a duplicate symbol (e.g. two
    # files of the same proto package both defining BytesMessage) fails here.
    modules = _modules()
    assert "llbgen._proto.buildkit.control_pb2_grpc" in modules
    for name in modules:
        importlib.import_module(name)


def test_service_stubs_exist() -> None:
    from llbgen._proto.buildkit import control_pb2_grpc, gateway_pb2_grpc
    from llbgen._proto.session import (
        auth_pb2_grpc,
        filesync_pb2_grpc,
        secrets_pb2_grpc,
        sshforward_pb2_grpc,
    )

    for stub in (
        control_pb2_grpc.ControlStub,
        gateway_pb2_grpc.LLBBridgeStub,
        filesync_pb2_grpc.FileSyncStub,
        filesync_pb2_grpc.FileSendStub,
        auth_pb2_grpc.AuthStub,
        secrets_pb2_grpc.SecretsStub,
        sshforward_pb2_grpc.SSHStub,
    ):
        assert callable(stub)


def _field(full_message: str, field: str):
    from google.protobuf import descriptor_pool

    for name in _modules():
        importlib.import_module(name)
    return (
        descriptor_pool.Default()
        .FindMessageTypeByName(full_message)
        .fields_by_name[field]
    )


@pytest.mark.parametrize(
    ("message", "field", "number"),
    [
        ("pb.Op", "platform", 10),
        ("pb.Op", "constraints", 11),
        ("pb.Op", "diff", 7),
        ("pb.Mount", "cacheOpt", 20),
        ("pb.Mount", "contentCache", 24),
        ("pb.FileActionCopy", "modeStr", 15),
        ("pb.Definition", "def", 1),
        ("moby.buildkit.v1.SolveRequest", "Session", 5),
        ("moby.buildkit.v1.SolveRequest", "Cache", 8),
        ("moby.buildkit.v1.SolveRequest", "SourcePolicy", 12),
        ("moby.buildkit.v1.SolveRequest", "Exporters", 13),
        ("moby.buildkit.v1.SolveRequest", "EnableSessionExporter", 14),
        ("moby.buildkit.v1.CacheOptions", "Imports", 5),
        ("moby.buildkit.v1.Vertex", "error", 7),
        ("moby.buildkit.v1.Vertex", "progressGroup", 8),
        ("moby.buildkit.v1.VertexLog", "msg", 4),
        ("moby.buildkit.v1.types.WorkerRecord", "CDIDevices", 6),
        ("moby.buildkit.v1.types.GCPolicy", "reservedSpace", 3),
        ("moby.buildkit.v1.frontend.Result", "attestations", 12),
        ("moby.buildkit.v1.frontend.SolveRequest", "Final", 10),
        ("moby.buildkit.v1.frontend.SolveResponse", "result", 3),
        ("fsutil.types.Stat", "modTime", 6),
        ("fsutil.types.Stat", "linkname", 7),
        ("fsutil.types.Stat", "xattrs", 10),
        ("fsutil.types.Packet", "ID", 3),
        ("fsutil.types.Packet", "data", 4),
        ("moby.buildkit.secrets.v1.GetSecretRequest", "annotations", 2),
        ("moby.filesync.v1.FetchTokenResponse", "IssuedAt", 3),
    ],
)
def test_wire_field_numbers(message: str, field: str, number: int) -> None:
    assert _field(message, field).number == number


def test_wire_types_that_matter() -> None:
    from google.protobuf.descriptor import FieldDescriptor as F

    assert _field("fsutil.types.Stat", "mode").type == F.TYPE_UINT32
    assert _field("fsutil.types.Stat", "modTime").type == F.TYPE_INT64
    assert _field("fsutil.types.Packet", "ID").type == F.TYPE_UINT32
    assert _field("pb.FileActionCopy", "mode").type == F.TYPE_INT32
    assert _field("pb.Mount", "input").type == F.TYPE_INT64


def test_grpc_paths() -> None:
    from llbgen._proto.buildkit import control_pb2, gateway_pb2
    from llbgen._proto.session import (
        auth_pb2,
        filesync_pb2,
        secrets_pb2,
        sshforward_pb2,
    )

    def methods(module, service: str) -> set[str]:
        svc = module.DESCRIPTOR.services_by_name[service]
        return {f"/{svc.full_name}/{m.name}" for m in svc.methods}

    assert {
        "/moby.buildkit.v1.Control/Solve",
        "/moby.buildkit.v1.Control/Session",
    } <= methods(control_pb2, "Control")
    assert "/moby.buildkit.v1.frontend.LLBBridge/Ping" in methods(
        gateway_pb2, "LLBBridge"
    )
    assert methods(filesync_pb2, "FileSync") == {
        "/moby.filesync.v1.FileSync/DiffCopy",
        "/moby.filesync.v1.FileSync/TarStream",
    }
    assert methods(filesync_pb2, "FileSend") == {"/moby.filesync.v1.FileSend/DiffCopy"}
    assert "/moby.filesync.v1.Auth/Credentials" in methods(auth_pb2, "Auth")
    assert methods(secrets_pb2, "Secrets") == {
        "/moby.buildkit.secrets.v1.Secrets/GetSecret"
    }
    assert methods(sshforward_pb2, "SSH") == {
        "/moby.sshforward.v1.SSH/CheckAgent",
        "/moby.sshforward.v1.SSH/ForwardAgent",
    }
    diffcopy = filesync_pb2.DESCRIPTOR.services_by_name["FileSync"].methods_by_name[
        "DiffCopy"
    ]
    assert diffcopy.input_type.full_name == "fsutil.types.Packet"
    assert diffcopy.output_type.full_name == "fsutil.types.Packet"
    assert diffcopy.client_streaming and diffcopy.server_streaming
