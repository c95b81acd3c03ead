"""The up-to-date check: a build whose tags already hold its exact image has nothing to do.

Before connecting to BuildKit, ``llbgen build`` asks the Docker Engine's image store for
the base images and the tags: it computes the layer plan exactly as a build would, and
when every tag already names one image labelled with the plan's build fingerprint
(``llbgen.fingerprint``), BuildKit could only find every step cached and re-export that
same image. The check needs nothing BuildKit-specific, so it costs a few Engine API
reads instead of a session and a solve.

It answers "up to date" only when that is certain, and otherwise (any doubt, any other
kind of output) lets the build run:

* the builder is a Docker Engine with the containerd image store (the store's image IDs
  are the manifest digests a build reports; MergeOp/DiffOp plan assumed, as there);
* the outputs are the engine's own image store only (no push, no files, no cache export:
  those need the solve);
* the base (and builder) image are in that store, so their pinned digests are known;
* every tag names the same image and its label equals the fingerprint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llbgen.fingerprint import fingerprint_of

if TYPE_CHECKING:
    from llbgen.builder.address import BuilderAddress
    from llbgen.builder.engine_api import EngineAPI
    from llbgen.builder.options import CacheEntry, Output
    from llbgen.llb import State
    from llbgen.spec import ResolvedSpec
    from stages import LayerPlan


@dataclass(frozen=True)
class UpToDate:
    """The tags already hold the image this build would make."""

    tags: tuple[str, ...]
    image_id: str  # the manifest digest, as a build prints it
    fingerprint: str
    plan: LayerPlan


def store_only_tags(outputs: Sequence[Output], cache_to: Sequence[CacheEntry]) -> tuple[str, ...]:
    """The tags when the build only stores an image in the engine (``--load``, the default); else ()."""
    if cache_to or len(outputs) != 1:
        return ()
    output = outputs[0]
    if output.type != "moby" or output.dest is not None or set(output.attrs) != {"name"}:
        return ()
    return tuple(name for name in output.attrs["name"].split(",") if name)


def check_up_to_date(address: BuilderAddress, resolved: ResolvedSpec, *, outputs: Sequence[Output],
                     cache_to: Sequence[CacheEntry], network: str) -> UpToDate | None:
    """``UpToDate`` when the engine already holds this build's image under every tag, else None.

    Raises ``BuilderUnavailable`` when the engine cannot be reached (the build would fail the same way).
    """
    tags = store_only_tags(outputs, cache_to)
    if address.kind != "docker" or not tags:
        return None
    from llbgen.builder.engine_api import EngineAPI, EngineAPIError, image_store_of
    from llbgen.errors import UsageError

    assert address.engine is not None
    api = EngineAPI(address.engine)
    try:
        # The tags first: a first build (no such tag) is settled in one read, before any planning.
        held = _image_held(api, tags)
        if held is None or image_store_of(api.info()) != "containerd":
            return None
        image_id, label = held
        plan = _plan(api, resolved, tag=tags[0], network=network)
    except (EngineAPIError, UsageError):
        return None  # the build itself reports what is wrong
    if plan is None:
        return None
    fingerprint = fingerprint_of(plan.image.image_config()["config"])
    return UpToDate(tags, image_id, fingerprint, plan) if fingerprint == label else None


def _plan(api: EngineAPI, resolved: ResolvedSpec, *, tag: str, network: str) -> LayerPlan | None:
    """The plan a build on this engine makes, or None when a base is not in the engine's store."""
    from stages import StageContext, layer_plan

    base = _local_image(api, resolved.base_image)
    if base is None:
        return None
    builder = base if resolved.builder_image == resolved.base_image else _local_image(api, resolved.builder_image)
    if builder is None:
        return None
    ctx = StageContext.create(resolved, base=base, builder=builder, image_tag=tag, network=network)  # type: ignore[arg-type]
    return layer_plan(ctx, merge_supported=True)


def _local_image(api: EngineAPI, ref: str) -> State | None:
    from llbgen.builder.resolve import image_state, resolve_in_engine_store
    from stages.context import PLATFORM

    found = resolve_in_engine_store(api, ref, "containerd")
    return image_state(found[0], PLATFORM) if found is not None else None


def _image_held(api: EngineAPI, tags: Sequence[str]) -> tuple[str, str] | None:
    """(image ID, fingerprint label) of the one labelled image every tag names, else None."""
    held = set()
    for tag in tags:
        attrs = api.inspect_image(tag)
        if attrs is None:
            return None
        held.add((attrs.get("Id", ""), fingerprint_of(attrs.get("Config") or {})))
    if len(held) != 1:
        return None
    image_id, label = held.pop()
    return (image_id, label) if image_id and label else None
