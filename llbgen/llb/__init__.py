"""A Python LLB graph API: immutable values, no I/O, no gRPC.

    from llbgen import llb
    base = llb.image("debian:bookworm")
    built = base.run("apt-get update", mounts=[llb.cache_mount("/var/cache/apt", "apt")]).root
    layer = llb.diff(base, built)
    definition = llb.marshal(llb.merge([other_base, layer]))
"""

from __future__ import annotations

from collections.abc import Sequence

from llbgen.llb.definition import Definition, VertexIndex, VertexInfo, marshal
from llbgen.llb.exec import Mount, SecretEnv
from llbgen.llb.fileop import FileAction, copy, mkdir, mkfile, rm, symlink
from llbgen.llb.imageconfig import Healthcheck, ImageConfig
from llbgen.llb.merge import DiffOp, MergeOp
from llbgen.llb.metadata import OpMetadata
from llbgen.llb.platform import Platform
from llbgen.llb.source import git_source, http_source, image_source, local_source
from llbgen.llb.state import ExecState, State
from llbgen.llb.vertex import Output

__all__ = [
    "Definition", "DiffOp", "ExecState", "FileAction", "Healthcheck", "ImageConfig", "MergeOp", "Mount",
    "OpMetadata", "Output", "Platform", "SecretEnv", "State", "VertexIndex", "VertexInfo", "bind", "cache_mount",
    "copy", "diff", "git", "http", "image", "local", "marshal", "merge", "mkdir", "mkfile", "rm", "scratch",
    "secret_mount", "ssh_mount", "symlink", "tmpfs",
]


def scratch(platform: Platform | None = None) -> State:
    """The empty filesystem."""
    return State(platform=platform or Platform.host())


def image(
    ref: str,
    *,
    platform: Platform | None = None,
    digest: str | None = None,
    config: dict | None = None,
    resolve_mode: str | None = None,
    name: str | None = None,
) -> State:
    """A container image. Pass the ``digest`` and OCI ``config`` resolved by a builder to
    pin the image and inherit its Env, WorkingDir, User, Entrypoint, Cmd, ports and labels."""
    plat = platform or Platform.host()
    src = image_source(ref, platform=plat, digest=digest, resolve_mode=resolve_mode, name=name)
    state = State(output=Output(src), platform=plat)
    if config:
        body = config.get("config") or {}
        env = []
        for item in body.get("Env") or []:
            key, _, value = item.partition("=")
            if key:
                env.append((key, value))
        state = State(output=state.output, env=tuple(env), cwd=body.get("WorkingDir") or "/",
                      user=body.get("User") or "", platform=plat, config=ImageConfig.from_oci_config(body))
    return state


def local(name: str, *, include: Sequence[str] = (), exclude: Sequence[str] = (),
          follow_paths: Sequence[str] = (), shared_key_hint: str | None = None, unique_id: str = "") -> State:
    """A directory the client session provides under ``name``."""
    return State(output=Output(local_source(name, include=include, exclude=exclude, follow_paths=follow_paths,
                                            shared_key_hint=shared_key_hint, unique_id=unique_id)))


def http(url: str, *, checksum: str | None = None, filename: str | None = None, permissions: int | None = None,
         name: str | None = None) -> State:
    """A file fetched over HTTP(S); with ``checksum`` the fetch is verified and cached by it."""
    return State(output=Output(http_source(url, checksum=checksum, filename=filename, permissions=permissions,
                                           name=name)))


def git(remote: str, ref: str = "", *, subdir: str = "", keep_git_dir: bool = False) -> State:
    """A git checkout."""
    return State(output=Output(git_source(remote, ref, subdir=subdir, keep_git_dir=keep_git_dir)))


def merge(states: Sequence[State], *, name: str | None = None) -> State:
    """Stack states in order (later wins). Scratch inputs are dropped; one input is itself."""
    present = [s for s in states if s.output is not None]
    if not present:
        return scratch(states[0].platform if states else None)
    if len(present) == 1:
        return present[0]
    op = MergeOp(tuple(s.output for s in present),  # type: ignore[misc]
                 metadata=OpMetadata(name=name, caps=frozenset({"mergeop"})))
    return present[0].with_output(Output(op))


def diff(lower: State, upper: State, *, name: str | None = None) -> State:
    """What ``upper`` changed on top of ``lower``; ``diff(scratch, x)`` is ``x``."""
    if lower.output is None:
        return upper if upper.output is not None else lower
    op = DiffOp(lower.output, upper.output, metadata=OpMetadata(name=name, caps=frozenset({"diffop"})))
    return lower.with_output(Output(op))


def bind(dest: str, state: State, *, selector: str = "", readonly: bool = False, no_output: bool = False) -> Mount:
    """Mount another state at ``dest`` (writable mounts get an output of their own)."""
    return Mount(dest, "bind", source=state.output, selector=selector, readonly=readonly, no_output=no_output)


def cache_mount(dest: str, cache_id: str, *, sharing: str = "shared") -> Mount:
    """A persistent cache directory (apt, pip): never part of a layer or a cache key."""
    if sharing not in ("shared", "private", "locked"):
        raise ValueError(f"invalid cache sharing {sharing!r}: use shared, private or locked")
    return Mount(dest, "cache", cache_id=cache_id, sharing=sharing)  # type: ignore[arg-type]


def tmpfs(dest: str, *, size: int = 0) -> Mount:
    return Mount(dest, "tmpfs", tmpfs_size=size)


def secret_mount(dest: str, secret_id: str, *, mode: int = 0o400, uid: int = 0, gid: int = 0,
                 optional: bool = False) -> Mount:
    """A secret served by the session at ``dest`` for this step only (never in a layer)."""
    return Mount(dest, "secret", secret_id=secret_id, mode=mode, uid=uid, gid=gid, optional=optional)


def ssh_mount(dest: str = "/run/buildkit/ssh_agent.0", ssh_id: str = "default", *, mode: int = 0o600,
              optional: bool = False) -> Mount:
    return Mount(dest, "ssh", secret_id=ssh_id, mode=mode, optional=optional)
