"""Build one resolved spec on a connected builder: the library behind ``llbgen build`` and ``llbgen bake``.

    with Builder.connect("docker://") as b:
        outcome = build_image(b, load_spec(None, {"torch": "2.3.0", "cuda": "12.1"}),
                              tags=["pytorch:2.3.0"], outputs=[Output("moby", {"name": "pytorch:2.3.0"})])
        outcome.image_digest, outcome.layers   # {"os": "built", "python": "reused", ...}

The steps are the ones ``llbgen build`` always took: pin the base (and the neutral
builder image) on the builder, lower the stages into the layer plan (MergeOp/DiffOp
when the builder has them), solve with the CA/proxy secrets, and report what was
built. Which layers were built and which reused comes from the builder's own
progress stream (``SolveResult.vertices``): a layer is *built* when one of its steps
ran, *reused* when every step of it came from the cache.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING

from llbgen.errors import UsageError

if TYPE_CHECKING:
    from llbgen.builder.client import Builder
    from llbgen.builder.options import CacheEntry, Output
    from llbgen.builder.progress import BuildSummary, ProgressMode, VertexState
    from llbgen.builder.solve import SolveResult
    from llbgen.llb import State
    from llbgen.spec import ResolvedSpec
    from stages import LayerPlan

# What a layer's steps told: built (a step ran), reused (every step cached),
# failed (a step failed), incomplete (the build stopped before it finished).
LayerStatus = str
BUILT, REUSED, FAILED, INCOMPLETE = "built", "reused", "failed", "incomplete"


@dataclass(frozen=True)
class BuildOutcome:
    """What one image build did."""

    tags: tuple[str, ...]
    builder: str  # the builder's address
    image_digest: str | None
    seconds: float
    plan: LayerPlan
    result: SolveResult
    # Layer name -> the daemon digests of the steps that make it (as the progress stream named them).
    layer_vertices: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @property
    def tag(self) -> str:
        return self.tags[0] if self.tags else ""

    @property
    def summary(self) -> BuildSummary | None:
        return self.result.summary

    @property
    def layers(self) -> dict[str, LayerStatus]:
        """Layer name (image order) -> built / reused / failed / incomplete."""
        return layer_statuses(self.layer_vertices, self.result.vertices)

    @property
    def built_layers(self) -> tuple[str, ...]:
        return tuple(name for name, status in self.layers.items() if status == BUILT)

    @property
    def reused_layers(self) -> tuple[str, ...]:
        return tuple(name for name, status in self.layers.items() if status == REUSED)


class ImageResolver:
    """Base images pinned on one builder, each asked once (thread-safe; bake shares one per builder)."""

    def __init__(self, builder: Builder) -> None:
        self._builder = builder
        self._states: dict[str, State] = {}
        self._lock = threading.Lock()
        self._pending: dict[str, threading.Event] = {}

    def resolve(self, ref: str) -> State:
        from stages.context import PLATFORM

        while True:
            with self._lock:
                if ref in self._states:
                    return self._states[ref]
                waiting = self._pending.get(ref)
                if waiting is None:
                    self._pending[ref] = threading.Event()
                    break
            waiting.wait()
        try:
            state = self._builder.resolve(ref, platform=PLATFORM)
            with self._lock:
                self._states[ref] = state
            return state
        finally:
            with self._lock:
                self._pending.pop(ref).set()


def check_secret_ids(user_secrets: Collection[str]) -> None:
    """A user secret may not take an id llbgen uses itself (CA bundle, proxies)."""
    from stages.context import RESERVED_SECRET_IDS

    clash = sorted(RESERVED_SECRET_IDS & set(user_secrets))
    if clash:
        raise UsageError(f"--secret id={clash[0]}: this id is llbgen's own (--ca-cert, --http-proxy, ...); pick another")


def stage_secrets(resolved: ResolvedSpec, user_secrets: Mapping[str, bytes] | None = None) -> dict[str, bytes]:
    """The user's ``--secret`` values plus llbgen's own (CA bundle, proxies; read now)."""
    from stages import StageContext

    user = dict(user_secrets or {})
    check_secret_ids(user)
    return {**user, **StageContext.create(resolved).secrets()}


def build_image(
    builder: Builder,
    resolved: ResolvedSpec,
    *,
    tags: Sequence[str] = (),
    outputs: Sequence[Output] = (),
    cache_to: Sequence[CacheEntry] = (),
    cache_from: Sequence[CacheEntry] = (),
    secrets: Mapping[str, bytes] | None = None,
    network: str = "sandbox",
    progress: ProgressMode = "auto",
    progress_stream: IO[str] | None = None,
    resolver: ImageResolver | None = None,
    on_plan: Callable[[LayerPlan], None] | None = None,
) -> BuildOutcome:
    """Build ``resolved`` on ``builder`` (connected) and export it to ``outputs``.

    ``secrets`` are the session secrets (``stage_secrets``: computed here when None).
    ``on_plan`` sees the layer plan before the solve starts (``llbgen build`` prints it).
    Raises ``BuildFailed``/``Cancelled``/``CapabilityMissing`` like ``Builder.solve``.
    """
    from llbgen.builder.solve import SolveOptions
    from llbgen.errors import BuildFailed
    from llbgen.input_hints import step_hint
    from stages import StageContext, layer_plan
    from stages.network import needs_host_network

    started = time.monotonic()
    tag_list = tuple(tags) or (resolved.tag,)
    if secrets is None:
        secrets = stage_secrets(resolved)
    resolver = resolver or ImageResolver(builder)
    base = _resolve_input(resolver, resolved.base_image, builder_image=False)
    builder_state = base if resolved.builder_image == resolved.base_image else _resolve_input(
        resolver, resolved.builder_image, builder_image=True)
    ctx = StageContext.create(resolved, base=base, builder=builder_state, image_tag=tag_list[0],
                              network=network)  # type: ignore[arg-type]
    plan = layer_plan(ctx, merge_supported=builder.info.merge_op and builder.info.diff_op)
    if on_plan is not None:
        on_plan(plan)
    options = SolveOptions(
        outputs=list(outputs), cache_to=list(cache_to), cache_from=list(cache_from), secrets=dict(secrets),
        # network.host for --network host, or for the steps that reach a loopback mirror
        entitlements=["network.host"] if needs_host_network(plan.steps(), ctx) else [], progress=progress,
        progress_stream=progress_stream,
    )
    try:
        result = builder.solve(plan.image, options)
    except BuildFailed as err:
        hint = step_hint(str(err))
        if hint:
            raise BuildFailed(f"{err}\n{hint}") from None
        raise
    return BuildOutcome(tags=tag_list, builder=str(builder.address), image_digest=result.image_digest,
                        seconds=time.monotonic() - started, plan=plan, result=result,
                        layer_vertices=layer_vertices(plan, result.vertices))


def _resolve_input(resolver: ImageResolver, ref: str, *, builder_image: bool) -> State:
    """The image pinned; when it cannot be had, the error says which image it is and which flag replaces it."""
    from llbgen.input_hints import image_error

    try:
        return resolver.resolve(ref)
    except UsageError as err:
        raise UsageError(image_error(ref, str(err), builder_image=builder_image)) from None


# --- which layer each reported step belongs to ------------------------------------------


def layer_ops(plan: LayerPlan) -> dict[str, frozenset[str]]:
    """Layer name -> digests of the ops that make it (llbgen's digests): its execs, file ops, merges, diffs.

    An op belongs to the first layer (in image order) whose graph holds it. Sources
    belong to no layer: an image source only pins or pulls a base, and BuildKit reports
    an HTTP source (the Miniconda installer, checked by sha256) as run whenever it
    checks it again, though nothing is rebuilt unless the content changed — in which
    case the step using it runs and says so.
    """
    from llbgen.llb import marshal

    seen: set[str] = set(marshal(plan.base).digests)
    owned: dict[str, frozenset[str]] = {}
    for layer in plan.layers:
        definition = marshal(layer.state)
        digests = {d for d in definition.digests[:-1] if not _is_source(definition, d)} - seen  # [:-1]: terminal
        owned[layer.name] = frozenset(digests)
        seen |= digests
    return owned


def _is_source(definition, digest: str) -> bool:
    return definition.op(digest).WhichOneof("op") == "source"


def layer_vertices(plan: LayerPlan, vertices: Sequence[VertexState]) -> dict[str, frozenset[str]]:
    """Layer name -> the daemon digests of the reported steps that make it."""
    from llbgen.llb import marshal

    index = marshal(plan.image).vertex_index()
    owner: dict[str, str] = {}
    for name, digests in layer_ops(plan).items():
        for digest in digests:
            owner.setdefault(digest, name)
    result: dict[str, set[str]] = {layer.name: set() for layer in plan.layers}
    for vertex in vertices:
        info = index.lookup(vertex.digest)
        name = owner.get(info.digest) if info is not None else None
        if name is not None:
            result[name].add(vertex.digest)
    return {name: frozenset(digests) for name, digests in result.items()}


def executed(vertex: VertexState) -> bool:
    """The step ran (it was not a cache hit) and finished."""
    return vertex.is_completed and not vertex.cached and not vertex.error


def layer_statuses(layer_digests: Mapping[str, Collection[str]], vertices: Sequence[VertexState],
                   ran_elsewhere: Collection[str] = ()) -> dict[str, LayerStatus]:
    """Per layer: built, reused, failed or incomplete.

    ``ran_elsewhere``: daemon digests of steps that ran once for several concurrent builds
    (BuildKit computes a shared step once); for every build but the one credited with
    them they count as reused.
    """
    by_digest = {v.digest: v for v in vertices}
    skip = set(ran_elsewhere)
    statuses: dict[str, LayerStatus] = {}
    for name, digests in layer_digests.items():
        states = [by_digest[d] for d in digests if d in by_digest]
        if any(v.is_failed for v in states):
            statuses[name] = FAILED
        elif any(executed(v) and v.digest not in skip for v in states):
            statuses[name] = BUILT
        elif states and all(v.is_completed and not v.error for v in states):
            statuses[name] = REUSED
        elif not states:
            statuses[name] = REUSED if vertices else INCOMPLETE
        else:
            statuses[name] = INCOMPLETE
    return statuses
