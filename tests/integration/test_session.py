"""The session against the real Docker Engine: local sources in, secrets in, tar out.

Each case runs with both ways of attaching the session: ``Control.Session`` over
dockerd's /grpc, and dockerd's own ``POST /session`` upgrade. Definitions are
built by hand from ops_pb2 so nothing but the session is under test.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import threading
import uuid
from pathlib import Path

import grpc
import pytest

from llbgen._proto.buildkit import control_pb2, ops_pb2
from llbgen.builder.address import BuilderAddress
from llbgen.builder.connection import BuilderConnection
from llbgen.builder.session import Session

pytestmark = pytest.mark.integration

ATTACH_STYLES = ["control", "docker"]


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _definition(ops: list[ops_pb2.Op]) -> ops_pb2.Definition:
    """Ops in dependency order; the terminal op (only an input) goes last."""
    defs = [op.SerializeToString(deterministic=True) for op in ops]
    terminal = ops_pb2.Op(inputs=[ops_pb2.Input(digest=_digest(defs[-1]), index=0)])
    defs.append(terminal.SerializeToString(deterministic=True))
    return ops_pb2.Definition(**{"def": defs})


def _input(op: ops_pb2.Op) -> ops_pb2.Input:
    return ops_pb2.Input(digest=_digest(op.SerializeToString(deterministic=True)), index=0)


@pytest.fixture(scope="module")
def connection(docker_engine: str):
    with BuilderConnection(BuilderAddress("docker", docker_engine)) as conn:
        conn.wait_ready()
        yield conn


def _attach(session: Session, connection: BuilderConnection, style: str) -> None:
    if style == "control":
        session.attach_control(connection.control)
    else:
        session.attach_docker(connection.engine)


def _solve(connection: BuilderConnection, session: Session, definition: ops_pb2.Definition) -> control_pb2.SolveResponse:
    """Solve with a tar exporter; on failure, report the vertex errors the Status stream saw."""
    ref = uuid.uuid4().hex
    errors: list[str] = []
    logs: list[bytes] = []

    def watch() -> None:
        try:
            for update in connection.control.Status(control_pb2.StatusRequest(Ref=ref), timeout=300):
                errors.extend(f"{v.name}: {v.error}" for v in update.vertexes if v.error)
                logs.extend(entry.msg for entry in update.logs)
        except grpc.RpcError:
            pass

    watcher = threading.Thread(target=watch, name="test-status")
    watcher.start()
    request = control_pb2.SolveRequest(
        Ref=ref,
        Definition=definition,
        Session=session.id,
        Exporters=[control_pb2.Exporter(Type="tar", Attrs={})],
        ExporterDeprecated="tar",
    )
    try:
        return connection.control.Solve(request, timeout=300)
    except grpc.RpcError as err:
        watcher.join(10)
        pytest.fail(f"solve failed: {err.details()}; vertex errors: {errors}; logs: {b''.join(logs)[-2000:]!r}")
    finally:
        watcher.join(30)


def _members(path: Path) -> set[str]:
    with tarfile.open(path) as tar:
        return {m.name.rstrip("/") for m in tar.getmembers()}


def _session_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("llbgen-session")]


@pytest.mark.parametrize("style", ATTACH_STYLES)
def test_local_source_include_exclude_to_tar(style: str, connection: BuilderConnection, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    for rel, text in {
        "app/main.py": "print('hi')\n",
        "app/debug.log": "noise\n",
        "app/pkg/util.py": "x = 1\n",
        "README.md": "readme\n",
        "notes.txt": "not included\n",
        "vendor/big.bin": "excluded\n",
        "vendor/keep.txt": "re-included\n",
    }.items():
        (ctx / rel).parent.mkdir(parents=True, exist_ok=True)
        (ctx / rel).write_text(text)
    os.symlink("main.py", ctx / "app" / "link.py")
    out = tmp_path / "out" / "ctx.tar"

    source = ops_pb2.Op(
        source=ops_pb2.SourceOp(
            identifier="local://ctx",
            attrs={
                "local.includepattern": json.dumps(["app", "README.md", "vendor"]),
                "local.excludepatterns": json.dumps(["**/*.log", "vendor", "!vendor/keep.txt"]),
                "local.sharedkeyhint": f"llbgen-test-{style}",
            },
        )
    )
    copy = ops_pb2.Op(
        inputs=[_input(source)],
        file=ops_pb2.FileOp(
            actions=[
                ops_pb2.FileAction(
                    input=-1,  # scratch
                    secondaryInput=0,
                    output=0,
                    copy=ops_pb2.FileActionCopy(
                        src="/", dest="/", mode=-1, timestamp=-1, dirCopyContents=True, createDestPath=True, allowWildcard=True, followSymlink=False
                    ),
                )
            ]
        ),
    )
    with Session(local_dirs={"ctx": ctx}, file_outputs={0: out}) as session:
        _attach(session, connection, style)
        _solve(connection, session, _definition([source, copy]))

    assert _members(out) == {
        "app",
        "app/main.py",
        "app/link.py",
        "app/pkg",
        "app/pkg/util.py",
        "README.md",
        "vendor",
        "vendor/keep.txt",
    }
    with tarfile.open(out) as tar:
        assert tar.extractfile("app/main.py").read() == b"print('hi')\n"
        assert tar.getmember("app/link.py").issym() and tar.getmember("app/link.py").linkname == "main.py"
    assert not [p.name for p in out.parent.iterdir() if p.name != "ctx.tar"], "temp file left behind"
    assert not _session_threads()


@pytest.mark.parametrize("style", ATTACH_STYLES)
def test_exec_with_secret_mount(style: str, connection: BuilderConnection, base_image: str, tmp_path: Path) -> None:
    out = tmp_path / "secret.tar"
    secret = f"s3cr3t-{uuid.uuid4().hex}".encode()
    image = ops_pb2.Op(
        source=ops_pb2.SourceOp(identifier=f"docker-image://docker.io/{base_image}", attrs={"image.resolvemode": "local"})
    )
    run = ops_pb2.Op(
        inputs=[_input(image)],
        exec=ops_pb2.ExecOp(
            meta=ops_pb2.Meta(
                # The sleep outlasts two of the daemon's 5-second session health checks.
                args=["/bin/sh", "-c", "sleep 11; cat /run/secrets/token > /out/token.txt"],
                env=["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", f"CACHEBUST={uuid.uuid4().hex}"],
                cwd="/",
            ),
            mounts=[
                ops_pb2.Mount(input=0, dest="/", output=-1, readonly=True),
                ops_pb2.Mount(input=-1, dest="/out", output=0),
                ops_pb2.Mount(
                    input=-1,
                    dest="/run/secrets/token",
                    output=-1,
                    mountType=ops_pb2.MountType.SECRET,
                    secretOpt=ops_pb2.SecretOpt(ID="token", uid=0, gid=0, mode=0o400),
                ),
            ],
        ),
    )
    with Session(secrets={"token": secret}, file_outputs={0: out}) as session:
        _attach(session, connection, style)
        _solve(connection, session, _definition([image, run]))

    with tarfile.open(out) as tar:
        assert tar.extractfile("token.txt").read() == secret
    assert not _session_threads()


def test_missing_secret_fails_the_step(connection: BuilderConnection, base_image: str, tmp_path: Path) -> None:
    image = ops_pb2.Op(
        source=ops_pb2.SourceOp(identifier=f"docker-image://docker.io/{base_image}", attrs={"image.resolvemode": "local"})
    )
    run = ops_pb2.Op(
        inputs=[_input(image)],
        exec=ops_pb2.ExecOp(
            meta=ops_pb2.Meta(args=["/bin/true"], env=[f"CACHEBUST={uuid.uuid4().hex}"], cwd="/"),
            mounts=[
                ops_pb2.Mount(input=0, dest="/", output=0),
                ops_pb2.Mount(
                    input=-1, dest="/run/secrets/nope", output=-1, mountType=ops_pb2.MountType.SECRET, secretOpt=ops_pb2.SecretOpt(ID="nope")
                ),
            ],
        ),
    )
    with Session(secrets={}, file_outputs={0: tmp_path / "x.tar"}) as session:
        session.attach_control(connection.control)
        request = control_pb2.SolveRequest(
            Ref=uuid.uuid4().hex,
            Definition=_definition([image, run]),
            Session=session.id,
            Exporters=[control_pb2.Exporter(Type="tar", Attrs={})],
            ExporterDeprecated="tar",
        )
        with pytest.raises(grpc.RpcError) as info:
            connection.control.Solve(request, timeout=120)
    assert "nope" in info.value.details() and "not found" in info.value.details()
    assert not (tmp_path / "x.tar").exists()
