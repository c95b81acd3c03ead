"""What the connected builder can do, and one-line advice when it cannot.

The feature matrix comes from the daemons' source (research notes §5, §6): the Docker
Engine's BuildKit differs by image store. With the classic (graphdriver) store it
disables MergeOp/DiffOp, exports only moby/local/tar and caches only inline; with the
containerd image store it is close to a standalone buildkitd. The image store is what the
engine's ``/info`` says (``image_store_of``, as everywhere else); only for an engine reached
without its API does the worker label ``org.mobyproject.buildkit.worker.snapshotter`` decide.
A builder on a plain gRPC address may be any BuildKit, old or trimmed: what its gateway's
capability list can tell (daemon_caps.py) replaces the profile's guess, and
``BuilderInfo.sources`` records for each field whether it was asked or assumed.
"""

from __future__ import annotations

from typing import Literal

import grpc
from pydantic import BaseModel, ConfigDict, computed_field

from llbgen.builder.connection import BuilderConnection, describe_rpc_error
from llbgen.builder.daemon_caps import (
    CACHE_BACKEND_CAPS,
    CAP_DIFF_OP,
    CAP_MERGE_OP,
    CAP_MULTIPLE_EXPORTERS,
    DaemonCaps,
    ask_daemon_caps,
)
from llbgen.errors import BuilderUnavailable, CapabilityMissing

SNAPSHOTTER_LABEL = "org.mobyproject.buildkit.worker.snapshotter"
# Only the Docker Engine's BuildKit labels its workers under this prefix (moby
# builder-next/worker/label: ``...moby.host-gateway-ip``, set with either image store);
# a standalone buildkitd uses ``org.mobyproject.buildkit.worker.*`` without ``moby.``.
# It tells an engine reached some other way (its /grpc spliced onto a unix socket or a
# TCP port by a relay or proxy) from a real buildkitd.
ENGINE_WORKER_LABEL_PREFIX = "org.mobyproject.buildkit.worker.moby."
# The Debian-built engine reports this placeholder instead of the vendored BuildKit version.
UNKNOWN_VERSIONS = {"", "v0.0.0+unknown", "v0.0.0-unknown", "v0.0.0+unknown-moby"}

ImageStore = Literal["containerd", "classic", "n/a"]

INFO_TIMEOUT = 15.0


class WorkerInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    platforms: list[str]
    labels: dict[str, str]


class BuilderInfo(BaseModel):
    """Everything ``llbgen builder inspect`` shows; also what graphs are checked against."""

    model_config = ConfigDict(frozen=True)

    address: str
    kind: Literal["docker", "unix", "tcp"]
    buildkit_version: str | None
    engine_version: str | None = None
    workers: list[WorkerInfo]
    image_store: ImageStore
    merge_op: bool
    diff_op: bool
    direct_push: bool
    exporters: list[str]
    cache_exporters: list[str]
    cache_importers: list[str]
    # Several exporters in one solve (BuildKit >= 0.13, LLB cap ``exporter.multiple``).
    multiple_exporters: bool = True
    # Per capability field: how it was learned, "asked: ..." (the daemon said so) or
    # "assumed: ..." (a profile of what such a daemon has; BuildKit publishes no list).
    sources: dict[str, str] = {}

    @computed_field  # type: ignore[prop-decorator]
    @property
    def buildkit_version_inferred(self) -> str | None:
        """The BuildKit minor the engine vendors, from its version, when BuildKit's own is not reported."""
        if self.buildkit_version or not self.engine_version:
            return None
        from llbgen.builder.engine_buildkit import inferred_buildkit_version

        return inferred_buildkit_version(self.engine_version)

    @property
    def platforms(self) -> list[str]:
        seen: dict[str, None] = {}
        for worker in self.workers:
            seen.update(dict.fromkeys(worker.platforms))
        return list(seen)

    def supports(self, feature: str) -> bool:
        """``merge_op``, ``diff_op``, ``direct_push``, ``exporter:<type>``, ``cache_export:<type>``, ``cache_import:<type>``."""
        kind, _, name = feature.partition(":")
        if kind == "exporter":
            return name in self.exporters
        if kind == "cache_export":
            return name in self.cache_exporters
        if kind == "cache_import":
            return name in self.cache_importers
        if feature in ("merge_op", "diff_op", "direct_push"):
            return bool(getattr(self, feature))
        raise ValueError(f"unknown builder feature {feature!r}")

    def require(self, feature: str) -> None:
        """Raise ``CapabilityMissing`` (one line, saying what to enable) unless ``feature`` is supported."""
        if not self.supports(feature):
            raise CapabilityMissing(_missing_message(self, feature))


def _profile(kind: str, image_store: ImageStore) -> dict[str, object]:
    """The capability matrix (§5.1, §5.4, §6 of the research notes)."""
    if kind != "docker":
        return {
            "merge_op": True,
            "diff_op": True,
            "direct_push": True,
            "exporters": ["image", "local", "tar", "oci", "docker"],
            "cache_exporters": ["registry", "inline", "local", "gha", "s3", "azblob"],
            "cache_importers": ["registry", "local", "gha", "s3", "azblob"],
        }
    if image_store == "containerd":
        return {
            "merge_op": True,
            "diff_op": True,
            "direct_push": True,
            # dockerd's `moby` exporter wraps the image exporter; `image` is also registered.
            "exporters": ["moby", "image", "local", "tar", "oci", "docker"],
            "cache_exporters": ["inline", "local", "registry", "gha"],
            "cache_importers": ["registry", "local", "gha"],
        }
    return {
        "merge_op": False,
        "diff_op": False,
        # The classic exporter cannot push; buildx runs `docker push` afterwards.
        "direct_push": False,
        "exporters": ["moby", "local", "tar"],
        "cache_exporters": ["inline"],
        "cache_importers": ["registry", "local"],
    }


def inspect_builder(
    conn: BuilderConnection, *, timeout: float = INFO_TIMEOUT
) -> BuilderInfo:
    """Ask the builder for its workers and version, and derive its capabilities."""
    from llbgen._proto.buildkit import control_pb2

    try:
        reply = conn.control.ListWorkers(
            control_pb2.ListWorkersRequest(), timeout=timeout
        )
    except grpc.RpcError as err:
        raise BuilderUnavailable(
            f"BuildKit at {conn.address} did not list its workers: {describe_rpc_error(err)}"
        ) from None
    workers = [_worker(record) for record in reply.record]
    version = _buildkit_version(conn, reply, timeout)
    address = conn.address
    # An engine's BuildKit has the engine's feature set however it is reached: behind a
    # unix:// or tcp:// address the standalone profile would claim s3/azblob cache
    # backends (and, with the classic store, MergeOp/DiffOp) it does not have.
    engine = address.kind == "docker" or _is_engine(workers)
    engine_version, engine_store = _engine_facts(conn)
    store: ImageStore = "n/a"
    if engine:
        # The engine's own answer (the up-to-date check and base-image lookup read the same);
        # the worker label only for an engine reached without its API (a relayed /grpc).
        store = engine_store or (
            "containerd"
            if any(SNAPSHOTTER_LABEL in w.labels for w in workers)
            else "classic"
        )
    profile = _profile("docker" if engine else address.kind, store)
    if address.kind == "docker":
        sources = dict(ENGINE_SOURCES)
    else:
        # A buildkitd (or anything behind a plain gRPC address) is asked, not trusted to be recent and complete.
        profile, sources = with_asked_caps(profile, ask_daemon_caps(conn), engine=engine)
    return BuilderInfo(
        address=str(address),
        kind=address.kind,
        buildkit_version=version,
        engine_version=engine_version,
        workers=workers,
        image_store=store,
        sources=sources,
        **profile,  # type: ignore[arg-type]
    )


ASKED_LLB_CAPS = "asked: the gateway's LLB caps"
ENGINE_SOURCES = {
    "image_store": "asked: the engine's /info, else its workers' snapshotter label",
    "merge_op": "assumed: from the image store",
    "diff_op": "assumed: from the image store",
    "direct_push": "assumed: from the image store",
    "exporters": "assumed: the Docker Engine's exporters for its image store; BuildKit lists none",
    "cache_exporters": "assumed: the Docker Engine's cache backends for its image store",
    "cache_importers": "assumed: the Docker Engine's cache backends for its image store",
    "multiple_exporters": "assumed",
}


def with_asked_caps(profile: dict[str, object], caps: DaemonCaps, *,
                    engine: bool) -> tuple[dict[str, object], dict[str, str]]:
    """``profile`` corrected by what the daemon's gateway said, and where each field came from."""
    profile = dict(profile)
    profile["merge_op"] = caps.has(CAP_MERGE_OP)
    profile["diff_op"] = caps.has(CAP_DIFF_OP)
    profile["multiple_exporters"] = caps.has(CAP_MULTIPLE_EXPORTERS)
    sources = {"merge_op": ASKED_LLB_CAPS, "diff_op": ASKED_LLB_CAPS, "multiple_exporters": ASKED_LLB_CAPS}
    if engine:
        # An engine's LLB caps list cache.s3/azblob it never registered: keep its own profile.
        sources.update({key: ENGINE_SOURCES[key] for key in
                        ("image_store", "direct_push", "exporters", "cache_exporters", "cache_importers")})
        return profile, sources
    for key in ("cache_exporters", "cache_importers"):
        profile[key] = [name for name in profile[key]  # type: ignore[attr-defined]
                        if name not in CACHE_BACKEND_CAPS or caps.has(CACHE_BACKEND_CAPS[name])]
        sources[key] = (f"asked: {'/'.join(CACHE_BACKEND_CAPS)} from the gateway's LLB caps; "
                        "registry, inline, local assumed (every BuildKit has them)")
    sources["exporters"] = "assumed: BuildKit's built-in exporters; the daemon lists none"
    sources["direct_push"] = "assumed: the image exporter pushes"
    return profile, sources


def _is_engine(workers: list[WorkerInfo]) -> bool:
    return any(
        key.startswith(ENGINE_WORKER_LABEL_PREFIX)
        for worker in workers
        for key in worker.labels
    )


def _worker(record) -> WorkerInfo:
    platforms = list(dict.fromkeys(_platform_string(p) for p in record.platforms))
    return WorkerInfo(id=record.ID, platforms=platforms, labels=dict(record.Labels))


def _platform_string(platform) -> str:
    parts = [platform.OS, platform.Architecture] + (
        [platform.Variant] if platform.Variant else []
    )
    return "/".join(parts)


def _buildkit_version(
    conn: BuilderConnection, workers_reply, timeout: float
) -> str | None:
    from llbgen._proto.buildkit import control_pb2

    try:
        info = conn.control.Info(control_pb2.InfoRequest(), timeout=timeout)
        version = info.buildkitVersion.version
    except grpc.RpcError as err:
        # Info exists since BuildKit v0.11; older daemons answer UNIMPLEMENTED.
        if err.code() is not grpc.StatusCode.UNIMPLEMENTED:  # type: ignore[attr-defined]
            raise BuilderUnavailable(
                f"BuildKit at {conn.address} failed Info: {describe_rpc_error(err)}"
            ) from None
        version = ""
    if version in UNKNOWN_VERSIONS:
        # Worker records carry the version too (dockerd reports "...-moby" there).
        version = next(
            (
                r.BuildkitVersion.version
                for r in workers_reply.record
                if r.BuildkitVersion.version not in UNKNOWN_VERSIONS
            ),
            "",
        )
    return version or None


def _engine_facts(conn: BuilderConnection) -> tuple[str | None, ImageStore | None]:
    """The Docker Engine's version (the best hint at its BuildKit when BuildKit's own is
    unknown) and image store, from one ``/info``; (None, None) without an engine API.
    """
    if conn.engine is None:
        return None, None
    from llbgen.builder.engine_api import EngineAPI, image_store_of

    api = EngineAPI(conn.engine, timeout=5.0)
    try:
        info = api.info()
        return str(info["ServerVersion"]), image_store_of(info)
    except Exception:  # noqa: BLE001 - unreachable, error status, odd JSON: the worker label decides
        return None, None


CONTAINERD_STORE_HINT = (
    'enable the containerd image store: {"features":{"containerd-snapshotter":true}} '
    "in /etc/docker/daemon.json, or use --builder with a standalone buildkitd"
)


def _missing_message(info: BuilderInfo, feature: str) -> str:
    kind, _, name = feature.partition(":")
    where = (
        f"the Docker Engine at {info.address.removeprefix('docker://')}"
        if info.kind == "docker"
        else f"BuildKit at {info.address}"
    )
    what = {
        "merge_op": "MergeOp/DiffOp",
        "diff_op": "MergeOp/DiffOp",
        "direct_push": "pushing directly from the build",
        "exporter": f"the {name!r} exporter",
        "cache_export": f"cache export to {name!r}",
        "cache_import": f"cache import from {name!r}",
    }[kind if name else feature]
    if (
        info.kind == "docker"
        and info.image_store == "classic"
        and _containerd_store_has(feature)
    ):
        return f"{where} uses the classic image store, which does not support {what}; {CONTAINERD_STORE_HINT}"
    offered = {
        "exporter": info.exporters,
        "cache_export": info.cache_exporters,
        "cache_import": info.cache_importers,
    }.get(kind)
    message = f"{where} does not support {what}"
    if name and offered is not None:
        message += f" (it offers {', '.join(offered)})"
    if info.kind == "docker" and _standalone_has(feature):
        message += "; use --builder with a standalone buildkitd"
    return message


def _containerd_store_has(feature: str) -> bool:
    profile = BuilderInfo(
        address="",
        kind="docker",
        buildkit_version=None,
        workers=[],
        image_store="containerd",
        **_profile("docker", "containerd"),
    )  # type: ignore[arg-type]
    return profile.supports(feature)


def _standalone_has(feature: str) -> bool:
    profile = BuilderInfo(
        address="",
        kind="unix",
        buildkit_version=None,
        workers=[],
        image_store="n/a",
        **_profile("unix", "n/a"),
    )  # type: ignore[arg-type]
    return profile.supports(feature)
