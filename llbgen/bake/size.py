"""How big a built image is: the Docker Engine's own figure when it holds the image,
else the sum of the layer sizes in the pushed manifest.

Both are best effort: the summary shows ``?`` rather than failing a build that worked.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from llbgen.builder.address import BuilderAddress
from llbgen.builder.endpoint import EngineEndpoint

MANIFEST_TYPES = ", ".join((
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
))


def engine_image_size(engine: EngineEndpoint, ref: str) -> int | None:
    """The size ``docker images`` shows for ``ref`` (unpacked) in ``engine``.

    With the containerd image store, ``docker image inspect``'s Size is the compressed
    content instead; the image list has the figure users know.
    """
    from llbgen.builder.engine_api import EngineAPI, EngineAPIError
    from llbgen.errors import BuilderUnavailable

    api = EngineAPI(engine)
    try:
        listed = [i for i in api.list_images(ref) if ref in (i.get("RepoTags") or ())
                  or f"docker.io/{ref}" in (i.get("RepoTags") or ())]
        size = listed[0].get("Size") if listed else (api.inspect_image(ref) or {}).get("Size")
    except (EngineAPIError, BuilderUnavailable, AttributeError):
        return None
    return int(size) if isinstance(size, int) else None


def _split(ref: str) -> tuple[str, str, str] | None:
    """(registry host, repository, tag or digest) of a fully qualified reference."""
    name, at, digest = ref.partition("@")
    host, slash, path = name.partition("/")
    if not slash or not ("." in host or ":" in host or host == "localhost"):
        return None  # Docker Hub: anonymous manifest reads need a token dance; not worth it here
    repo, colon, tag = path.rpartition(":") if ":" in path else (path, "", "latest")
    if not colon:
        repo, tag = path, "latest"
    return host, repo, digest if at else tag


def registry_image_size(ref: str, timeout: float = 20) -> int | None:
    """Sum of config and layer sizes of the pushed manifest (the first platform of an index).

    Plain HTTP for loopback registries, HTTPS otherwise; anonymous access only.
    """
    parts = _split(ref)
    if parts is None:
        return None
    host, repo, reference = parts
    scheme = "http" if host.startswith(("127.", "localhost")) else "https"

    def get(what: str) -> dict:
        request = urllib.request.Request(f"{scheme}://{host}/v2/{repo}/manifests/{what}",
                                         headers={"Accept": MANIFEST_TYPES})
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return json.loads(reply.read())

    try:
        manifest = get(reference)
        if "manifests" in manifest:
            platforms = [m for m in manifest["manifests"]
                         if (m.get("platform") or {}).get("architecture") not in (None, "unknown")]
            if not platforms:
                return None
            manifest = get(platforms[0]["digest"])
        sizes = [manifest.get("config", {}).get("size", 0)] + [layer.get("size", 0) for layer in manifest.get("layers", [])]
        return int(sum(sizes))
    except (urllib.error.URLError, OSError, ValueError, KeyError):
        return None


def image_size(address: BuilderAddress, tag: str, *, pushed: bool) -> tuple[int | None, str]:
    """(bytes, where the figure comes from: ``engine`` / ``registry`` / ``""``)."""
    if address.engine is not None:
        size = engine_image_size(address.engine, tag)
        if size is not None:
            return size, "engine"
    if pushed:
        size = registry_image_size(tag)
        if size is not None:
            return size, "registry"
    return None, ""
