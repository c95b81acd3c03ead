"""Build every variant, concurrently and bounded, spread across the builders.

Each variant is one ``recipe.build_image`` on a thread; at most ``max_parallel`` run at
once. Variants start in bake order, each on the least loaded builder when its turn
comes (``schedule``), so the spread is the same from run to run. All variants on
one builder share that builder's connection and its pinned base images, and BuildKit
computes the steps they share once. A failed variant is recorded and the others go
on; Ctrl-C closes the connections (BuildKit cancels the builds) and stops.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from llbgen.bake.progress import VariantStream
from llbgen.bake.schedule import BuilderPool
from llbgen.bake.size import image_size
from llbgen.bake.variants import Variant
from llbgen.errors import Cancelled, LlbgenError

if TYPE_CHECKING:
    from llbgen.builder.client import Builder
    from llbgen.recipe import BuildOutcome
    from stages import LayerPlan

OK, FAILED, CANCELLED, NOT_RUN = "ok", "failed", "cancelled", "not run"


@dataclass
class VariantResult:
    """How one variant's build went (filled in as it runs)."""

    variant: Variant
    builder: str = ""
    status: str = NOT_RUN
    outcome: BuildOutcome | None = None
    error: str | None = None
    seconds: float | None = None
    size: int | None = None
    size_source: str = ""

    @property
    def ok(self) -> bool:
        return self.status == OK


def export_outputs(variant: Variant, builder: Builder, *, push: bool, load: bool):
    from llbgen.cli.common import plan_outputs

    return plan_outputs(outputs=None, tags=list(variant.tags), load=load, push=push,
                        docker_builder=builder.address.kind == "docker")


def run_bake(
    variants: Sequence[Variant],
    builders: Sequence[Builder],
    *,
    push: bool = False,
    load: bool = False,
    network: str = "sandbox",
    max_parallel: int = 4,
    progress: str = "plain",
    stream: IO[str] | None = None,
    user_secrets: Mapping[str, bytes] | None = None,
) -> list[VariantResult]:
    """Build ``variants`` on ``builders`` (connected); one result per variant, in bake order."""
    from llbgen.recipe import ImageResolver, build_image, stage_secrets

    stream = stream if stream is not None else sys.stderr
    pool = BuilderPool(len(builders))
    resolvers = [ImageResolver(b) for b in builders]
    results = [VariantResult(v) for v in variants]
    cancel = threading.Event()
    noticed: set[str] = set()
    notice_lock = threading.Lock()

    def job(result: VariantResult, index: int) -> None:
        variant = result.variant
        builder = builders[index]
        result.builder = str(builder.address)
        out = VariantStream(variant.name, stream, json_lines=progress == "rawjson")
        started = time.monotonic()

        def notice(plan: LayerPlan) -> None:
            for warning in plan.warnings:
                out.line(f"warning: {warning}")
            with notice_lock:
                if not plan.notice or result.builder in noticed:
                    return
                noticed.add(result.builder)
            out.line(f"notice: {result.builder}: {plan.notice}")

        try:
            if cancel.is_set():
                result.status = CANCELLED
                return
            if progress != "quiet":
                out.line(f"building {', '.join(variant.tags)} on {result.builder}")
            cache_to, cache_from = variant.cache_entries()
            outcome = build_image(
                builder, variant.resolved, tags=variant.tags,
                outputs=export_outputs(variant, builder, push=push, load=load),
                cache_to=cache_to, cache_from=cache_from,
                secrets=stage_secrets(variant.resolved, user_secrets), network=network,
                progress=progress, progress_stream=out, resolver=resolvers[index], on_plan=notice,  # type: ignore[arg-type]
            )
        except LlbgenError as err:
            result.status, result.error = (CANCELLED if cancel.is_set() else FAILED), str(err)
        except Exception as err:  # a bug or an unexpected transport error must not stop the other variants
            result.status = CANCELLED if cancel.is_set() else FAILED
            result.error = f"{type(err).__name__}: {err}"
        else:
            result.outcome, result.status = outcome, OK
        finally:
            result.seconds = time.monotonic() - started
            out.flush()
            pool.release(index)
            slots.release()
        if result.status == OK:  # after the slot is free: the figure is not part of the build
            result.size, result.size_source = image_size(builder.address, variant.tag, pushed=push)
        if result.status == OK and progress != "quiet":
            out.line(f"done in {result.seconds:.1f}s: {outcome.image_digest or variant.tag}")
        elif result.status == FAILED:
            out.line(f"FAILED after {result.seconds:.1f}s on {result.builder}: {result.error}")

    # Variants start in bake order, each on the least loaded builder at the moment a slot frees.
    slots = threading.Semaphore(max(1, max_parallel))
    executor = ThreadPoolExecutor(max_workers=max(1, max_parallel), thread_name_prefix="llbgen-bake")
    futures = []
    try:
        for result in results:
            while not slots.acquire(timeout=0.5):  # in slices: Ctrl-C must get through
                pass
            futures.append(executor.submit(job, result, pool.acquire()))
        pending = set(futures)
        while pending:
            _, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
    except KeyboardInterrupt:
        cancel.set()
        for builder in builders:  # cancels every Solve in flight; BuildKit then stops the builds
            builder.connection.close()
        executor.shutdown(wait=True, cancel_futures=True)
        for r in results:
            if r.status == NOT_RUN:
                r.status = CANCELLED
        raise Cancelled("bake cancelled") from None
    executor.shutdown(wait=True)
    for future in futures:
        future.result()  # re-raise a bug in job() itself
    return results
