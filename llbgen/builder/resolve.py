"""Resolve a base image's digest and config through the builder, never by guessing.

For the Docker Engine builder the engine's own image store answers (the images
BuildKit inside it will use); any other builder (a standalone buildkitd) is asked
through a short gateway build's ``ResolveImageConfig``, which is how BuildKit itself
resolves the image during the build. The graph then pins the image to that digest
and inherits its config.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llbgen.errors import UsageError
from llbgen.llb.source import normalize_image_ref

if TYPE_CHECKING:
    from llbgen.builder.connection import BuilderConnection
    from llbgen.builder.engine_api import EngineAPI
    from llbgen.builder.session import Session
    from llbgen.llb import State
    from llbgen.llb.platform import Platform


@dataclass(frozen=True)
class ResolvedImage:
    ref: str
    # "" when the builder has no manifest digest to pin to (see _classic_store_digest).
    digest: str
    config: dict[str, Any]


def image_state(resolved: ResolvedImage, platform: Platform | None = None) -> State:
    """The base image as a State: pinned to the resolved digest, inheriting its config."""
    from llbgen.llb import Platform, image

    plat = platform or Platform(resolved.config.get("os", "linux"), resolved.config.get("architecture", "amd64"))
    return image(resolved.ref, platform=plat, digest=resolved.digest, config=resolved.config)


def resolve_image(conn: BuilderConnection, ref: str, *, platform: Platform | None = None,
                  session: Session | None = None, image_store: str | None = None) -> ResolvedImage:
    """The digest and OCI config of ``ref`` as the builder sees it.

    The Docker Engine answers from its own image store first (images there need no
    registry); otherwise, as for any other builder, BuildKit resolves the reference
    through its gateway (the registry, with ``session`` answering credential requests).
    ``image_store`` ("containerd"/"classic", as ``BuilderInfo`` has it) saves asking the engine.
    """
    try:
        normalized = normalize_image_ref(ref)
    except ValueError as err:
        raise UsageError(str(err)) from None
    if conn.engine is not None:
        local = _resolve_with_engine(conn, ref, image_store)
        if local is not None:
            resolved, containerd_store = local
            if containerd_store:
                _record_with_buildkit(conn, normalized, platform)
            return resolved
    from llbgen.builder.gateway import resolve_image_config_via_gateway

    digest, config = resolve_image_config_via_gateway(conn, session, normalized, platform)
    return ResolvedImage(ref, digest, config)


def _record_with_buildkit(conn: BuilderConnection, normalized: str, platform: Platform | None) -> None:
    """Let the engine's BuildKit resolve the image once itself.

    An image the engine got by ``docker load`` or ``docker import`` has no record of its
    repository in the content store, and BuildKit would fetch the pinned manifest from
    the registry instead of using the local one; its own resolve records it. Best
    effort: if it fails, the build reports whatever the real problem is.
    """
    from llbgen.builder.gateway import resolve_image_config_via_gateway

    with contextlib.suppress(Exception):
        resolve_image_config_via_gateway(conn, None, normalized, platform)


def _resolve_with_engine(conn: BuilderConnection, ref: str, image_store: str | None) -> tuple[ResolvedImage, bool] | None:
    from llbgen.builder.engine_api import EngineAPI

    assert conn.engine is not None
    return resolve_in_engine_store(EngineAPI(conn.engine), ref, image_store)


def resolve_in_engine_store(api: EngineAPI, ref: str, image_store: str | None) -> tuple[ResolvedImage, bool] | None:
    """The image as the engine's store has it and whether that is the containerd store; None when absent."""
    from llbgen.builder.engine_api import EngineAPIError, image_store_of

    try:
        attrs = api.inspect_image(ref)
        if attrs is None:
            return None
        if image_store in ("containerd", "classic"):
            containerd_store = image_store == "containerd"
        else:
            containerd_store = image_store_of(api.info()) == "containerd"
    except EngineAPIError as err:
        raise UsageError(f"cannot inspect base image {ref}: {err}") from None
    # With the containerd image store the image ID is the manifest (or index) digest that
    # BuildKit resolves; with the classic store it is the config digest, which BuildKit
    # there cannot find an image by.
    digest = attrs.get("Id", "") if containerd_store else _classic_store_digest(ref, attrs)
    config = {
        "architecture": attrs.get("Architecture", "amd64"),
        "os": attrs.get("Os", "linux"),
        "config": attrs.get("Config") or {},
    }
    return ResolvedImage(ref, digest, config), containerd_store


def _classic_store_digest(ref: str, attrs: dict[str, Any]) -> str:
    """The manifest digest the classic store knows ``ref`` by, or "".

    The classic store finds an image by digest only through a ``name@digest`` reference,
    which it records when it pulls; a loaded or imported image has none and must be
    used by name (pinning it would send BuildKit to the registry).
    """
    repository = _repository(normalize_image_ref(ref))
    for repo_digest in attrs.get("RepoDigests") or []:
        try:
            name, _, digest = normalize_image_ref(repo_digest).partition("@")
        except ValueError:
            continue
        if digest and name == repository:
            return digest
    return ""


def _repository(normalized: str) -> str:
    name = normalized.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}"
