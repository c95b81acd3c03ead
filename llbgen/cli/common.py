"""Options shared by every command that talks to a builder, and their translation to SolveOptions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llbgen.errors import UsageError

BuilderOpt = Annotated[str | None, typer.Option("--builder", help="BuildKit address: docker://[DOCKER_HOST], unix:///path.sock or tcp://host:port (default: $BUILDKIT_HOST, else the local Docker Engine).")]
TlsCaOpt = Annotated[Path | None, typer.Option("--tlscacert", help="CA certificate for a tcp:// buildkitd or a docker://tcp:// engine.")]
TlsCertOpt = Annotated[Path | None, typer.Option("--tlscert", help="Client certificate for a tcp:// buildkitd or a docker://tcp:// engine.")]
TlsKeyOpt = Annotated[Path | None, typer.Option("--tlskey", help="Client key for a tcp:// buildkitd or a docker://tcp:// engine.")]
TlsNameOpt = Annotated[str | None, typer.Option("--tls-server-name", help="Server name to verify for a tcp:// buildkitd or a docker://tcp:// engine.")]
ProgressOpt = Annotated[str, typer.Option("--progress", help="auto, tty, plain, rawjson or quiet.")]
OutputOpt = Annotated[list[str] | None, typer.Option("--output", "-o", help="type=image|registry|docker|oci|tar|local,... (repeatable).")]
TagOpt = Annotated[list[str] | None, typer.Option("--tag", "-t", help="Image name (repeatable).")]
LoadOpt = Annotated[bool, typer.Option("--load", help="Load the image into the Docker Engine (default with the docker builder).")]
PushOpt = Annotated[bool, typer.Option("--push", help="Push the image to its registry.")]
CacheToOpt = Annotated[list[str] | None, typer.Option("--cache-to", help="type=registry,ref=...,mode=max | type=inline | type=local,dest=DIR.")]
CacheFromOpt = Annotated[list[str] | None, typer.Option("--cache-from", help="type=registry,ref=... | type=local,src=DIR.")]
SecretOpt = Annotated[list[str] | None, typer.Option("--secret", help="id=ID,src=FILE or id=ID,env=VAR: given to build steps only, never stored.")]
LocalOpt = Annotated[list[str] | None, typer.Option("--local", help="NAME=DIR for a local source of the graph (repeatable).")]
AllowOpt = Annotated[list[str] | None, typer.Option("--allow", help="Entitlement to grant, e.g. network.host.")]

PROGRESS_MODES = ("auto", "tty", "plain", "rawjson", "quiet")


def check_progress(mode: str) -> str:
    if mode not in PROGRESS_MODES:
        raise UsageError(f"--progress {mode!r}: use one of {', '.join(PROGRESS_MODES)}")
    return mode


def check_tags(tags: list[str] | None, flag: str = "--tag") -> list[str]:
    """Every ``--tag`` as Docker would accept it to name an image (NAME[:TAG], no digest)."""
    from llbgen.reference import check_tag

    for tag in tags or []:
        try:
            check_tag(tag)
        except ValueError as err:
            raise UsageError(f"{flag} {err}; give NAME[:TAG], e.g. registry.example.com/pytorch:2.3.0") from None
    return list(tags or [])


def parse_locals(values: list[str] | None) -> dict[str, Path]:
    result: dict[str, Path] = {}
    for value in values or []:
        name, sep, directory = value.partition("=")
        if not sep or not name or not directory:
            raise UsageError(f"--local {value!r}: expected NAME=DIR")
        path = Path(directory).expanduser()
        if not path.is_dir():
            raise UsageError(f"--local {name}: {directory} is not a directory")
        result[name] = path.resolve()
    return result


def plan_outputs(*, outputs: list[str] | None, tags: list[str] | None, load: bool, push: bool,
                 docker_builder: bool):
    """Turn --output/--tag/--load/--push into exporter outputs (``--load`` is the docker builder's default)."""
    from llbgen.builder.options import Output

    parsed = [Output.parse(o) for o in outputs or []]
    names = ",".join(tags or [])
    if push and not names:
        raise UsageError("--push needs --tag NAME (REGISTRY/REPO:TAG)")
    if push or load or (not parsed and docker_builder):
        attrs = {"name": names} if names else {}
        if push:
            attrs["push"] = "true"
        if load and not docker_builder:
            # A buildkitd has no Docker image store: its image goes to the local engine as a tarball.
            parsed.append(Output("docker", {"name": names} if names else {}, load=True))
            if push:
                parsed.append(Output("image", attrs))
        else:
            parsed.append(Output("moby" if docker_builder and not push else "image", attrs))
    elif tags:
        for i, out in enumerate(parsed):
            if out.type in ("image", "moby", "docker", "oci") and "name" not in out.attrs:
                parsed[i] = Output(out.type, {**out.attrs, "name": names}, out.dest)
    if not parsed:
        raise UsageError("nothing to export: give --output, --push or --load")
    return parsed


def echo_loaded(names) -> None:
    """Say what ``--load`` put into the local Docker Engine (a standalone buildkitd's image)."""
    for name in names:
        typer.echo(f"llbgen: loaded {name} into the local Docker Engine", err=True)
