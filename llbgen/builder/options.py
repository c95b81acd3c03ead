"""Parse the buildx-style option strings users type: ``--output``, ``--cache-to/--cache-from``, ``--secret``.

Each is a comma-separated list of ``key=value`` pairs (CSV quoting allowed, as
buildx does) with a ``type``. Parsing happens before any connection, so bad
input fails fast with one line.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

from llbgen.errors import UsageError
from llbgen.reference import check_reference, check_tag

OUTPUT_TYPES = ("image", "registry", "docker", "oci", "tar", "local", "moby")
FILE_OUTPUT_TYPES = ("docker", "oci", "tar")
# BuildKit's own limit on one secret (session/secrets: MaxSecretSize = 500 KiB); a larger one fails the build.
MAX_SECRET_SIZE = 500 * 1024


def parse_pairs(text: str, what: str) -> dict[str, str]:
    """``type=registry,ref=x,mode=max`` → dict; a value may be quoted to hold commas."""
    if not text.strip():
        raise UsageError(f"{what}: empty value")
    try:
        fields = next(csv.reader([text]))
    except csv.Error as err:
        raise UsageError(f"{what} {text!r}: {err}") from None
    pairs: dict[str, str] = {}
    for item in fields:
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep or not key:
            raise UsageError(f"{what} {text!r}: expected key=value pairs, got {item!r}")
        pairs[key] = value.strip()
    return pairs


@dataclass(frozen=True)
class Output:
    """Where the result goes: an exporter type, its attributes, and a local destination for file/dir exports."""

    type: str
    attrs: dict[str, str] = field(default_factory=dict)
    dest: Path | None = None
    # A ``docker`` tarball streamed into the local Docker Engine (``--load`` with a standalone buildkitd).
    load: bool = False

    @classmethod
    def parse(cls, text: str) -> Output:
        pairs = parse_pairs(text, "--output")
        kind = pairs.pop("type", "")
        if kind not in OUTPUT_TYPES:
            raise UsageError(f"--output {text!r}: type must be one of {', '.join(OUTPUT_TYPES)}")
        if kind == "registry":  # buildx's shorthand
            kind, pairs["push"] = "image", "true"
        dest = pairs.pop("dest", None)
        if kind in FILE_OUTPUT_TYPES + ("local",):
            if not dest:
                raise UsageError(f"--output type={kind} needs dest=PATH")
            if dest == "-":
                raise UsageError(f"--output type={kind}: writing to stdout is not supported; give dest=PATH")
            path = Path(dest).expanduser()
            if kind != "local" and path.is_dir():
                raise UsageError(f"--output type={kind}: dest {dest} is a directory; give a file path")
            if not path.parent.exists():
                raise UsageError(f"--output type={kind}: directory {path.parent} does not exist")
            return cls(kind, pairs, path)
        if dest:
            raise UsageError(f"--output type={kind} takes no dest")
        if pairs.get("push") == "true" and not pairs.get("name"):
            raise UsageError(f"--output {text!r}: push=true needs name=REGISTRY/REPO:TAG")
        for name in pairs["name"].split(",") if "name" in pairs else ():
            try:
                check_tag(name)
            except ValueError as err:
                raise UsageError(f"--output name={err}; give name=NAME[:TAG]") from None
        return cls(kind, pairs)


@dataclass(frozen=True)
class CacheEntry:
    """A cache import or export: type (registry, inline, local, gha, ...) and attributes."""

    type: str
    attrs: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str, *, export: bool) -> CacheEntry:
        what = "--cache-to" if export else "--cache-from"
        if "=" not in text:  # buildx accepts a bare ref for --cache-from
            if export:
                raise UsageError(f"{what} {text!r}: expected type=...,key=value")
            pairs = {"type": "registry", "ref": text}
        else:
            pairs = parse_pairs(text, what)
        kind = pairs.pop("type", "registry" if "ref" in pairs else "")
        if not kind:
            raise UsageError(f"{what} {text!r}: missing type= (registry, inline, local, gha, s3, azblob)")
        if kind == "registry" and not pairs.get("ref"):
            raise UsageError(f"{what} {text!r}: type=registry needs ref=REGISTRY/REPO:TAG")
        if kind == "registry":
            try:
                check_reference(pairs["ref"])
            except ValueError as err:
                raise UsageError(f"{what} ref={err}; give ref=REGISTRY/REPO:TAG") from None
        if kind == "local":
            key = "dest" if export else "src"
            if not pairs.get(key):
                raise UsageError(f"{what} {text!r}: type=local needs {key}=DIR")
            if not export and not Path(pairs["src"]).is_dir():
                raise UsageError(f"{what}: cache directory {pairs['src']} does not exist")
        if "mode" in pairs and pairs["mode"] not in ("min", "max"):
            raise UsageError(f"{what} {text!r}: mode must be min or max")
        return cls(kind, pairs)


def parse_secret(text: str) -> tuple[str, bytes]:
    """``id=ca,src=FILE`` or ``id=token,env=VAR`` → (id, value). Read now, never logged."""
    pairs = parse_pairs(text, "--secret")
    secret_id = pairs.get("id", "")
    if not secret_id:
        raise UsageError(f"--secret {text!r}: missing id=")
    if "src" in pairs or "source" in pairs:
        path = Path(pairs.get("src") or pairs["source"]).expanduser()
        try:
            with path.open("rb") as f:
                value = f.read(MAX_SECRET_SIZE + 1)  # bounded: src may be /dev/zero or a pipe
        except OSError as err:
            raise UsageError(f"--secret id={secret_id}: cannot read {path}: {err.strerror}") from None
    else:
        env = pairs.get("env") or secret_id
        if env not in os.environ:
            raise UsageError(f"--secret id={secret_id}: environment variable {env} is not set")
        value = os.environ[env].encode()
    if len(value) > MAX_SECRET_SIZE:
        raise UsageError(f"--secret id={secret_id}: larger than {MAX_SECRET_SIZE // 1024} KiB, the most BuildKit "
                         "passes as a secret; mount a smaller file")
    return secret_id, value
