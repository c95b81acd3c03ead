"""Resolve a base image's digest and config through the builder, never by guessing.

For the Docker Engine builder the engine's own image store answers (the images
BuildKit inside it will use); the graph then pins the image to that digest and
inherits its config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llbgen.builder.connection import BuilderConnection
from llbgen.errors import CapabilityMissing, UsageError
from llbgen.llb.source import normalize_image_ref


@dataclass(frozen=True)
class ResolvedImage:
    ref: str
    digest: str
    config: dict[str, Any]


def resolve_image(conn: BuilderConnection, ref: str) -> ResolvedImage:
    """The digest and OCI config of ``ref`` as the builder sees it."""
    try:
        normalize_image_ref(ref)
    except ValueError as err:
        raise UsageError(str(err)) from None
    if not conn.docker_host:
        raise CapabilityMissing(
            f"resolving base image {ref} through a standalone buildkitd is not supported yet; "
            "use the Docker Engine builder"
        )
    return _resolve_with_engine(conn.docker_host, ref)


def _resolve_with_engine(docker_host: str, ref: str) -> ResolvedImage:
    import docker
    from docker.errors import DockerException, ImageNotFound

    try:
        client = docker.DockerClient(base_url=docker_host, timeout=30)
        try:
            image = client.images.get(ref)
        finally:
            client.close()
    except ImageNotFound:
        raise UsageError(f"base image {ref} is not in the Docker Engine's image store; pull or import it first") from None
    except DockerException as err:
        raise UsageError(f"cannot inspect base image {ref}: {err}") from None
    attrs = image.attrs
    # With the containerd image store the image ID is the manifest (or index) digest that
    # BuildKit resolves; with the classic store it is the config digest.
    digest = attrs.get("Id", "")
    config = {
        "architecture": attrs.get("Architecture", "amd64"),
        "os": attrs.get("Os", "linux"),
        "config": attrs.get("Config") or {},
    }
    return ResolvedImage(ref, digest, config)
