"""Image references, checked with Docker's own grammar (distribution/reference).

One parser for every name llbgen is given: ``-t`` of build, solve, export-dockerfile
and bake, ``base_image`` and ``builder_image``. A reference that passes here is one
Docker and BuildKit accept, so a bad name fails before a build, in one line::

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [ domain "/" ] path          (at most 255 characters)
    domain     := host [ ":" port ]            (host: DNS labels, IPv4, or [IPv6])
    path       := component [ "/" component ]*
    component  := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
    tag        := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
    digest     := algorithm ":" hex            (sha256: 64, sha384: 96, sha512: 128 lowercase hex)

The first part of the name is a domain only when it has a ``.`` or ``:`` or is
``localhost``, so ``ubuntu`` is ``docker.io/library/ubuntu``. Docker also takes a first
part with a capital letter for a registry host (``UPPER/x`` is host ``UPPER``): that
name is refused here, as the mistyped repository it almost always is.

>>> parse_reference("127.0.0.1:5000/llbgen-test/debian:bookworm").domain
'127.0.0.1:5000'
>>> check_reference("UPPER/x:1")
Traceback (most recent call last):
...
ValueError: 'UPPER/x:1' is not an image reference: repository names must be lowercase
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NAME_MAX = 255
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_LABEL = r"(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])"
_HOST = rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]+\])"
_DOMAIN = re.compile(rf"^{_HOST}(?::[0-9]+)?$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST_HEX = {"sha256": 64, "sha384": 96, "sha512": 128}
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True)
class Reference:
    """A reference split into its parts, as given (not normalized)."""

    domain: str | None
    path: str
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.path}" if self.domain else self.path


def _split(ref: str) -> Reference:
    """The parts of ``ref`` as Docker splits them (``tag``/``digest`` are "" when the separator ends it)."""
    name, at, digest = ref.partition("@")
    domain, slash, rest = name.partition("/")
    if not slash or not ("." in domain or ":" in domain or domain == "localhost"):
        domain, rest = "", name
    path, colon, tag = rest.rpartition(":") if ":" in rest else (rest, "", "")
    return Reference(domain or None, path, tag if colon else None, digest if at else None)


def _problem(ref: str) -> str | None:
    """Why ``ref`` is not a reference Docker accepts, or None."""
    if not ref:
        return "it is empty"
    if any(ord(c) < 0x20 or c == "\x7f" or c.isspace() for c in ref):
        return "it contains a space or a control character"
    if _SCHEME.match(ref):
        return "a URL or a scheme like local:// is not an image (give NAME[:TAG][@DIGEST], e.g. ubuntu:22.04)"
    parts = _split(ref)
    if parts.digest is not None:
        algorithm, colon, hex_part = parts.digest.partition(":")
        size = _DIGEST_HEX.get(algorithm)
        if not colon or size is None or not re.fullmatch(rf"[0-9a-f]{{{size}}}", hex_part):
            return f"the digest {parts.digest!r} is not sha256:<64 lowercase hex digits> (or sha384, sha512)"
    if parts.tag is not None and not _TAG.match(parts.tag):
        return f"the tag {parts.tag!r} is not [A-Za-z0-9_][A-Za-z0-9_.-]* of at most 128 characters"
    if parts.domain is not None and not _DOMAIN.match(parts.domain):
        return f"{parts.domain!r} is not a registry host[:port]"
    if not parts.path:
        return "the repository name is empty"
    if not _PATH.match(parts.path):
        if _PATH.match(parts.path.lower()):
            first = parts.path.split("/", 1)[0]
            if parts.domain is None and "/" in parts.path and first != first.lower():
                # Docker would take it for a registry host; a host is named with a '.' or a port here
                return (f"repository names must be lowercase (for a registry, write {first!r} "
                        "as host.domain or host:port)")
            return "repository names must be lowercase"
        return "each part of the repository name is lowercase letters and digits, joined by '.', '_', '__' or '-'"
    if len(parts.name) > NAME_MAX:
        return f"the name is longer than {NAME_MAX} characters"
    return None


def parse_reference(ref: str) -> Reference:
    """``ref`` split into domain, path, tag and digest; ``ValueError`` says what is wrong with it."""
    problem = _problem(ref)
    if problem:
        raise ValueError(f"{ref!r} is not an image reference: {problem}")
    return _split(ref)


def check_reference(ref: str) -> str:
    """``ref`` when Docker accepts it; ``ValueError`` naming the problem otherwise."""
    parse_reference(ref)
    return ref


def check_tag(ref: str) -> str:
    """A name to tag an image with: a reference without a digest (``docker build -t`` refuses one)."""
    if parse_reference(ref).digest:
        raise ValueError(f"{ref!r} is not an image name to tag with: it has a digest")
    return ref
