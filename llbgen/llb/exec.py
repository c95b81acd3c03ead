"""Exec vertices: run a command over a root filesystem with extra mounts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from llbgen._proto.buildkit import ops_pb2
from llbgen.llb.metadata import OpMetadata
from llbgen.llb.platform import Platform
from llbgen.llb.vertex import EMPTY, SKIP_OUTPUT, InputDigest, Output, Vertex, constraints_pb

NetworkMode = Literal["sandbox", "host", "none"]
SecurityMode = Literal["sandbox", "insecure"]
CacheSharing = Literal["shared", "private", "locked"]

_NET = {"sandbox": ops_pb2.UNSET, "host": ops_pb2.HOST, "none": ops_pb2.NONE}
_SECURITY = {"sandbox": ops_pb2.SANDBOX, "insecure": ops_pb2.INSECURE}
_SHARING = {"shared": ops_pb2.SHARED, "private": ops_pb2.PRIVATE, "locked": ops_pb2.LOCKED}


@dataclass(frozen=True)
class Mount:
    """A filesystem mounted into an exec at ``dest``.

    kind ``bind`` mounts another state's output (``source``; ``None`` is scratch);
    ``cache`` a persistent cache directory; ``tmpfs`` memory; ``secret`` a secret
    file served by the client session; ``ssh`` an agent socket.
    """

    dest: str
    kind: Literal["bind", "cache", "tmpfs", "secret", "ssh"] = "bind"
    source: Output | None = None
    selector: str = ""
    readonly: bool = False
    # Writable bind mounts produce an output of their own unless this is set.
    no_output: bool = False
    cache_id: str = ""
    sharing: CacheSharing = "shared"
    tmpfs_size: int = 0
    secret_id: str = ""
    uid: int = 0
    gid: int = 0
    mode: int = 0o400
    optional: bool = False

    def has_output(self) -> bool:
        return self.kind == "bind" and not self.readonly and not self.no_output


@dataclass(frozen=True)
class SecretEnv:
    """A secret exposed to an exec as an environment variable (never stored in the op)."""

    secret_id: str
    env: str
    optional: bool = False


@dataclass(frozen=True)
class ExecOp(Vertex):
    """Runs ``args``; mounts are kept sorted by destination, as BuildKit's Go client does."""

    args: tuple[str, ...]
    env: tuple[str, ...]
    cwd: str
    user: str
    platform: Platform
    mounts: tuple[Mount, ...]
    hostname: str = ""
    network: NetworkMode = "sandbox"
    security: SecurityMode = "sandbox"
    secret_env: tuple[SecretEnv, ...] = ()
    valid_exit_codes: tuple[int, ...] = ()
    extra_hosts: tuple[tuple[str, str], ...] = ()
    metadata: OpMetadata = field(default_factory=OpMetadata)

    def __post_init__(self) -> None:
        if not self.args:
            raise ValueError("exec needs a command")
        if not self.cwd.startswith("/"):
            raise ValueError(f"exec working directory must be absolute, got {self.cwd!r}")
        dests = [m.dest for m in self.mounts]
        if len(set(dests)) != len(dests):
            raise ValueError(f"two mounts share a destination: {sorted(dests)}")
        if "/" not in dests:
            raise ValueError("exec needs a root mount at /")

    def inputs(self) -> tuple[Output, ...]:
        seen: list[Output] = []
        for m in self.mounts:
            if m.source is not None and m.source not in seen:
                seen.append(m.source)
        return tuple(seen)

    def output_index(self, dest: str) -> int:
        """The output number of the writable mount at ``dest``."""
        index = 0
        for m in self.mounts:
            if m.dest == dest:
                if not m.has_output():
                    raise ValueError(f"mount {dest} is read-only or a cache/tmpfs/secret mount: it has no output")
                return index
            if m.has_output() and m.kind == "bind":
                index += 1
        raise KeyError(f"no mount at {dest}")

    def to_op(self, to_input: InputDigest) -> ops_pb2.Op:
        op = ops_pb2.Op()
        meta = ops_pb2.Meta(
            args=list(self.args),
            env=list(self.env),
            cwd=self.cwd,
            user=self.user,
            hostname=self.hostname,
            removeMountStubsRecursive=True,
            validExitCodes=list(self.valid_exit_codes),
        )
        for host, ip in self.extra_hosts:
            meta.extraHosts.add(Host=host, IP=ip)
        exec_pb = ops_pb2.ExecOp(meta=meta, network=_NET[self.network], security=_SECURITY[self.security])
        input_list: list[ops_pb2.Input] = []
        out_index = 0
        plain = [m for m in self.mounts if m.kind not in ("secret", "ssh")]
        for m in plain:
            if m.source is None:
                input_index = EMPTY
            else:
                inp = to_input(m.source)
                if inp in input_list:
                    input_index = input_list.index(inp)
                else:
                    input_index = len(input_list)
                    input_list.append(inp)
            output_index = SKIP_OUTPUT
            if m.has_output():
                output_index = out_index
                out_index += 1
            pm = exec_pb.mounts.add(input=input_index, dest=m.dest, readonly=m.readonly, output=output_index, selector=m.selector)
            if m.kind == "cache":
                pm.mountType = ops_pb2.CACHE
                pm.cacheOpt.ID = m.cache_id
                pm.cacheOpt.sharing = _SHARING[m.sharing]
            elif m.kind == "tmpfs":
                pm.mountType = ops_pb2.TMPFS
                pm.TmpfsOpt.size = m.tmpfs_size
        # Secret and SSH mounts come after the others, unsorted, as in the Go client.
        for s in self.secret_env:
            exec_pb.secretenv.add(ID=s.secret_id, name=s.env, optional=s.optional)
        for m in self.mounts:
            if m.kind == "secret":
                pm = exec_pb.mounts.add(input=EMPTY, dest=m.dest, mountType=ops_pb2.SECRET)
                pm.secretOpt.CopyFrom(
                    ops_pb2.SecretOpt(ID=m.secret_id, uid=m.uid, gid=m.gid, optional=m.optional, mode=m.mode)
                )
        for m in self.mounts:
            if m.kind == "ssh":
                pm = exec_pb.mounts.add(input=EMPTY, dest=m.dest, mountType=ops_pb2.SSH)
                pm.SSHOpt.CopyFrom(ops_pb2.SSHOpt(ID=m.secret_id, uid=m.uid, gid=m.gid, mode=m.mode, optional=m.optional))
        op.inputs.extend(input_list)
        op.platform.CopyFrom(self.platform.to_pb())
        op.constraints.CopyFrom(constraints_pb())
        op.exec.CopyFrom(exec_pb)
        return op


def exec_caps(op: ExecOp) -> frozenset[str]:
    """The BuildKit caps an exec relies on (validated by the daemon before solving)."""
    caps = {"exec.meta.base"}
    if op.network != "sandbox":
        caps.add("exec.meta.network")
    if op.security != "sandbox":
        caps.add("exec.meta.security")
    if op.valid_exit_codes:
        caps.add("exec.validexitcode")
    for m in op.mounts:
        if m.selector:
            caps.add("exec.mount.selector")
        if m.kind == "cache":
            caps |= {"exec.mount.cache", "exec.mount.cache.sharing"}
        elif m.kind == "tmpfs":
            caps.add("exec.mount.tmpfs")
            if m.tmpfs_size:
                caps.add("exec.mount.tmpfs.size")
        elif m.kind == "bind" and m.source is not None:
            caps.add("exec.mount.bind")
        elif m.kind == "secret":
            caps.add("exec.mount.secret")
        elif m.kind == "ssh":
            caps.add("exec.mount.ssh")
    if op.secret_env:
        caps |= {"exec.mount.secret", "exec.secretenv"}
    return frozenset(caps)
