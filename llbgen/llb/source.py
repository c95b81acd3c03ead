"""Source vertices: container images, local directories, HTTP files, git repositories."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from llbgen._proto.buildkit import ops_pb2
from llbgen.llb.metadata import OpMetadata
from llbgen.llb.platform import Platform
from llbgen.llb.vertex import InputDigest, Output, Vertex, constraints_pb
from llbgen.reference import parse_reference

_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class SourceOp(Vertex):
    """A vertex with no inputs whose content comes from outside the graph."""

    identifier: str
    attrs: tuple[tuple[str, str], ...] = ()
    platform: Platform | None = None
    metadata: OpMetadata = field(default_factory=OpMetadata)

    def inputs(self) -> tuple[Output, ...]:
        return ()

    def to_op(self, to_input: InputDigest) -> ops_pb2.Op:
        op = ops_pb2.Op(source=ops_pb2.SourceOp(identifier=self.identifier, attrs=dict(self.attrs)))
        # Only image-like sources are platform specific (BuildKit's Go client drops it for the rest).
        if self.platform is not None:
            op.platform.CopyFrom(self.platform.to_pb())
        op.constraints.CopyFrom(constraints_pb())
        return op


def normalize_image_ref(ref: str) -> str:
    """Docker's normalization: ``debian`` → ``docker.io/library/debian:latest``.

    ``ValueError`` (from the one reference parser, ``llbgen.reference``) when Docker would refuse ``ref``.
    """
    parts = parse_reference(ref)
    domain, path = parts.domain or "docker.io", parts.path
    if domain == "index.docker.io":
        domain = "docker.io"
    if domain == "docker.io" and "/" not in path:
        path = f"library/{path}"
    name = f"{domain}/{path}"
    if parts.tag is not None:
        name += f":{parts.tag}"
    elif parts.digest is None:
        name += ":latest"
    return f"{name}@{parts.digest}" if parts.digest else name


def image_source(
    ref: str,
    *,
    platform: Platform,
    digest: str | None = None,
    resolve_mode: str | None = None,
    name: str | None = None,
) -> SourceOp:
    """A ``docker-image://`` source; ``digest`` pins it to a resolved manifest."""
    normalized = normalize_image_ref(ref)
    if digest:
        if not _DIGEST_RE.match(digest):
            raise ValueError(f"invalid image digest {digest!r}")
        normalized = normalized.split("@", 1)[0] + "@" + digest
    attrs = {}
    if resolve_mode:
        if resolve_mode not in ("default", "pull", "local"):
            raise ValueError(f"invalid resolve mode {resolve_mode!r}: use default, pull or local")
        attrs["image.resolvemode"] = resolve_mode
    return SourceOp(
        identifier=f"docker-image://{normalized}",
        attrs=tuple(sorted(attrs.items())),
        platform=platform,
        metadata=OpMetadata(name=name or f"image {ref}", caps=frozenset({"source.image"})),
    )


def local_source(
    name: str,
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    follow_paths: Sequence[str] = (),
    shared_key_hint: str | None = None,
    unique_id: str = "",
    session_id: str | None = None,
) -> SourceOp:
    """A ``local://`` source: a directory the client's session sends on demand."""
    if not name or "/" in name:
        raise ValueError(f"invalid local source name {name!r}")
    attrs: dict[str, str] = {}
    caps = {"source.local"}
    if session_id:
        attrs["local.session"] = session_id
    else:
        attrs["local.unique"] = unique_id
        caps.add("source.local.unique")
    if include:
        attrs["local.includepattern"] = json.dumps(list(include), separators=(",", ":"))
        caps.add("source.local.includepatterns")
    if exclude:
        attrs["local.excludepatterns"] = json.dumps(list(exclude), separators=(",", ":"))
        caps.add("source.local.excludepatterns")
    if follow_paths:
        attrs["local.followpaths"] = json.dumps(list(follow_paths), separators=(",", ":"))
        caps.add("source.local.followpaths")
    if shared_key_hint:
        attrs["local.sharedkeyhint"] = shared_key_hint
        caps.add("source.local.sharedkeyhint")
    return SourceOp(
        identifier=f"local://{name}",
        attrs=tuple(sorted(attrs.items())),
        metadata=OpMetadata(name=f"local {name}", caps=frozenset(caps)),
    )


def http_source(
    url: str,
    *,
    checksum: str | None = None,
    filename: str | None = None,
    permissions: int | None = None,
    uid: int = 0,
    gid: int = 0,
    name: str | None = None,
) -> SourceOp:
    """An ``http(s)://`` file. With a checksum, a cached copy is reused without any request."""
    if not re.match(r"^https?://[^\s/]+", url):
        raise ValueError(f"invalid URL {url!r}: expected http:// or https://")
    attrs: dict[str, str] = {}
    caps = {"source.http"}
    if checksum:
        if not _DIGEST_RE.match(checksum):
            raise ValueError(f"invalid checksum {checksum!r}: expected sha256:<64 hex digits>")
        attrs["http.checksum"] = checksum
        caps.add("source.http.checksum")
    if filename:
        attrs["http.filename"] = filename
    if permissions:
        attrs["http.perm"] = "0" + format(permissions, "o")
        caps.add("source.http.perm")
    if uid:
        attrs["http.uid"] = str(uid)
        caps.add("source.http.uid")
    if gid:
        attrs["http.gid"] = str(gid)
        caps.add("source.http.uid")
    return SourceOp(
        identifier=url,
        attrs=tuple(sorted(attrs.items())),
        metadata=OpMetadata(name=name or f"https {url}", caps=frozenset(caps)),
    )


def git_source(remote: str, ref: str = "", *, subdir: str = "", keep_git_dir: bool = False) -> SourceOp:
    """A ``git://`` source: ``remote`` like ``https://github.com/org/repo.git``, ``ref`` a branch, tag or commit."""
    m = re.match(r"^(?:(?:https?|ssh|git)://)?(?:[^@/]+@)?([^/:]+)[:/](.+?)/?$", remote)
    if not m:
        raise ValueError(f"invalid git remote {remote!r}")
    ident = f"git://{m.group(1)}/{m.group(2)}"
    if ref or subdir:
        ident += f"#{ref}" + (f":{subdir}" if subdir else "")
    attrs = {"git.fullurl": remote}
    if keep_git_dir:
        attrs["git.keepgitdir"] = "true"
    return SourceOp(
        identifier=ident,
        attrs=tuple(sorted(attrs.items())),
        metadata=OpMetadata(name=f"git {remote}{'#' + ref if ref else ''}", caps=frozenset({"source.git"})),
    )


