"""File vertices: mkdir, mkfile, rm, symlink and copy, chained into one FileOp.

Chains follow BuildKit's conventions: an action's input is the base state (first
action) or ``len(inputs) + k`` for "the result of action k of this op"; only the
last action has output 0; an unset mode or timestamp is -1, since 0 would mean
chmod 000 or mtime 1970.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Literal

from llbgen._proto.buildkit import ops_pb2
from llbgen.llb.metadata import OpMetadata
from llbgen.llb.vertex import EMPTY, SKIP_OUTPUT, InputDigest, Output, Vertex, constraints_pb

UNSET = -1

Owner = tuple[int | str, int | str] | None


def clean_path(p: str) -> str:
    """Go's ``path.Clean`` (posixpath.normpath keeps a leading ``//``; Go does not)."""
    cleaned = posixpath.normpath(p)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


def _normalize(parent: str, p: str, keep_slash: bool) -> str:
    cleaned = clean_path(p)
    if not cleaned.startswith("/"):
        cleaned = clean_path(posixpath.join("/", parent, cleaned))
    if keep_slash:
        if p.endswith("/") and not cleaned.endswith("/"):
            cleaned += "/"
        elif p.endswith("/."):
            cleaned = (cleaned if cleaned == "/" else cleaned + "/") + "."
    return cleaned


@dataclass(frozen=True)
class FileAction:
    """One step of a file chain; ``prev`` is the step before it (``None`` for the first)."""

    kind: Literal["mkdir", "mkfile", "rm", "symlink", "copy"]
    path: str
    prev: FileAction | None = None
    mode: int = UNSET
    data: bytes = b""
    make_parents: bool = False
    allow_not_found: bool = False
    allow_wildcard: bool = False
    owner: Owner = None
    timestamp_ns: int = UNSET
    # copy only
    source: Output | None = None
    source_dir: str = "/"
    dest: str = ""
    follow_symlinks: bool = False
    contents_only: bool = False
    create_dest_path: bool = False
    allow_empty_wildcard: bool = False
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    # symlink only
    target: str = ""

    def chain(self) -> list[FileAction]:
        actions: list[FileAction] = []
        node: FileAction | None = self
        while node is not None:
            actions.append(node)
            node = node.prev
        return actions[::-1]

    # Fluent continuations: each returns a new action whose prev is this one.
    def mkdir(self, path: str, mode: int = 0o755, *, make_parents: bool = False, owner: Owner = None,
              timestamp_ns: int = UNSET) -> FileAction:
        return mkdir(path, mode, make_parents=make_parents, owner=owner, timestamp_ns=timestamp_ns, after=self)

    def mkfile(self, path: str, mode: int, data: bytes | str, *, owner: Owner = None,
               timestamp_ns: int = UNSET) -> FileAction:
        return mkfile(path, mode, data, owner=owner, timestamp_ns=timestamp_ns, after=self)

    def rm(self, path: str, *, allow_not_found: bool = False, allow_wildcard: bool = False) -> FileAction:
        return rm(path, allow_not_found=allow_not_found, allow_wildcard=allow_wildcard, after=self)

    def symlink(self, target: str, path: str, *, owner: Owner = None) -> FileAction:
        return symlink(target, path, owner=owner, after=self)

    def copy(self, source: object, src: str, dest: str, **options: object) -> FileAction:
        return copy(source, src, dest, after=self, **options)  # type: ignore[arg-type]


def mkdir(path: str, mode: int = 0o755, *, make_parents: bool = False, owner: Owner = None,
          timestamp_ns: int = UNSET, after: FileAction | None = None) -> FileAction:
    """Create a directory (``make_parents`` like ``mkdir -p``)."""
    return FileAction("mkdir", path, prev=after, mode=mode & 0o777, make_parents=make_parents, owner=owner,
                      timestamp_ns=timestamp_ns)


def mkfile(path: str, mode: int, data: bytes | str, *, owner: Owner = None, timestamp_ns: int = UNSET,
           after: FileAction | None = None) -> FileAction:
    """Create a file with the given content."""
    payload = data.encode() if isinstance(data, str) else bytes(data)
    return FileAction("mkfile", path, prev=after, mode=mode & 0o777, data=payload, owner=owner,
                      timestamp_ns=timestamp_ns)


def rm(path: str, *, allow_not_found: bool = False, allow_wildcard: bool = False,
       after: FileAction | None = None) -> FileAction:
    """Remove a file or directory."""
    return FileAction("rm", path, prev=after, allow_not_found=allow_not_found, allow_wildcard=allow_wildcard)


def symlink(target: str, path: str, *, owner: Owner = None, after: FileAction | None = None) -> FileAction:
    """Create a symlink at ``path`` pointing to ``target``."""
    return FileAction("symlink", path, prev=after, target=target, owner=owner)


def copy(source: object, src: str, dest: str, *, mode: int | None = None, owner: Owner = None,
         follow_symlinks: bool = False, contents_only: bool = False, create_dest_path: bool = False,
         allow_wildcard: bool = False, allow_empty_wildcard: bool = False, include: tuple[str, ...] = (),
         exclude: tuple[str, ...] = (), timestamp_ns: int = UNSET, after: FileAction | None = None) -> FileAction:
    """Copy ``src`` from the ``source`` State into ``dest`` of the state the chain runs on."""
    from llbgen.llb.state import State

    if not isinstance(source, State):
        raise TypeError("copy source must be a State")
    return FileAction(
        "copy", src, prev=after, source=source.output, source_dir=source.cwd, dest=dest,
        mode=UNSET if mode is None else mode, owner=owner, follow_symlinks=follow_symlinks,
        contents_only=contents_only, create_dest_path=create_dest_path, allow_wildcard=allow_wildcard,
        allow_empty_wildcard=allow_empty_wildcard, include=tuple(include), exclude=tuple(exclude),
        timestamp_ns=timestamp_ns,
    )


def _user_opt(value: int | str, base_index: int) -> ops_pb2.UserOpt:
    if isinstance(value, int):
        return ops_pb2.UserOpt(byID=value)
    return ops_pb2.UserOpt(byName=ops_pb2.NamedUserOpt(name=value, input=base_index))


def _owner_pb(owner: Owner, base_index: int) -> ops_pb2.ChownOpt | None:
    if owner is None:
        return None
    user, group = owner
    return ops_pb2.ChownOpt(user=_user_opt(user, base_index), group=_user_opt(group, base_index))


@dataclass(frozen=True)
class FileOp(Vertex):
    """A chain of file actions applied to ``base`` (``None`` = scratch); ``parent_dir`` resolves relative paths."""

    base: Output | None
    action: FileAction
    parent_dir: str = "/"
    metadata: OpMetadata = field(default_factory=OpMetadata)

    def inputs(self) -> tuple[Output, ...]:
        seen: list[Output] = []
        if self.base is not None:
            seen.append(self.base)
        for a in self.action.chain():
            if a.kind == "copy" and a.source is not None and a.source not in seen:
                seen.append(a.source)
        return tuple(seen)

    def to_op(self, to_input: InputDigest) -> ops_pb2.Op:
        outputs = self.inputs()
        index = {out: i for i, out in enumerate(outputs)}
        base_index = index[self.base] if self.base is not None else EMPTY
        actions = self.action.chain()
        file_pb = ops_pb2.FileOp()
        for k, a in enumerate(actions):
            fa = file_pb.actions.add(
                input=base_index if k == 0 else len(outputs) + k - 1,
                secondaryInput=index[a.source] if a.kind == "copy" and a.source is not None else EMPTY,
                output=0 if k == len(actions) - 1 else SKIP_OUTPUT,
            )
            owner = _owner_pb(a.owner, base_index)
            if a.kind == "mkdir":
                fa.mkdir.CopyFrom(ops_pb2.FileActionMkDir(
                    path=_normalize(self.parent_dir, a.path, False), mode=a.mode, makeParents=a.make_parents,
                    owner=owner, timestamp=a.timestamp_ns))
            elif a.kind == "mkfile":
                fa.mkfile.CopyFrom(ops_pb2.FileActionMkFile(
                    path=_normalize(self.parent_dir, a.path, False), mode=a.mode, data=a.data, owner=owner,
                    timestamp=a.timestamp_ns))
            elif a.kind == "rm":
                fa.rm.CopyFrom(ops_pb2.FileActionRm(
                    path=_normalize(self.parent_dir, a.path, False), allowNotFound=a.allow_not_found,
                    allowWildcard=a.allow_wildcard))
            elif a.kind == "symlink":
                fa.symlink.CopyFrom(ops_pb2.FileActionSymlink(
                    oldpath=a.target, newpath=_normalize(self.parent_dir, a.path, False), owner=owner,
                    timestamp=a.timestamp_ns))
            else:
                src = clean_path(a.path)
                if not src.startswith("/"):
                    src = clean_path(posixpath.join(a.source_dir, src))
                fa.copy.CopyFrom(ops_pb2.FileActionCopy(
                    src=src, dest=_normalize(self.parent_dir, a.dest, True), owner=owner, mode=a.mode,
                    followSymlink=a.follow_symlinks, dirCopyContents=a.contents_only,
                    createDestPath=a.create_dest_path, allowWildcard=a.allow_wildcard,
                    allowEmptyWildcard=a.allow_empty_wildcard, timestamp=a.timestamp_ns,
                    include_patterns=list(a.include), exclude_patterns=list(a.exclude)))
        op = ops_pb2.Op(inputs=[to_input(o) for o in outputs])
        op.constraints.CopyFrom(constraints_pb())
        op.file.CopyFrom(file_pb)
        return op


def file_caps(action: FileAction) -> frozenset[str]:
    caps = {"file.base"}
    for a in action.chain():
        if a.include or a.exclude:
            caps.add("file.copy.includeexcludepatterns")
        if a.kind == "symlink":
            caps.add("file.symlink.create")
    return frozenset(caps)
