"""Who built what, when several variants ran on one builder at the same time.

BuildKit computes a step that several concurrent solves share once, and reports it to
each of them — as running, not cached. Counting it as built by every variant would
hide exactly the sharing bake exists for, so each such step is credited to one
variant: the one that saw it start first (ties: bake order); for the others it was
reused. Steps that came from the cache are reported cached to everyone already.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from llbgen.builder.progress import VertexState
from llbgen.recipe import executed


def ran_elsewhere(runs: Sequence[tuple[str, str, Sequence[VertexState]]]) -> dict[str, frozenset[str]]:
    """Per variant name, the daemon digests of steps it saw run that are credited to another variant.

    ``runs``: (variant name, builder, reported steps), in bake order.
    """
    owner: dict[tuple[str, str], tuple[float, int, str]] = {}
    for order, (name, builder, vertices) in enumerate(runs):
        for v in vertices:
            if not executed(v):
                continue
            key = (builder, v.digest)
            claim = (v.started if v.started is not None else float("inf"), order, name)
            if key not in owner or claim < owner[key]:
                owner[key] = claim
    result: dict[str, frozenset[str]] = {}
    for name, builder, vertices in runs:
        result[name] = frozenset(v.digest for v in vertices
                                 if executed(v) and owner[(builder, v.digest)][2] != name)
    return result


def step_counts(vertices: Sequence[VertexState], elsewhere: frozenset[str] | set[str],
                ours: Mapping[str, frozenset[str]] | None = None) -> dict[str, int]:
    """Steps run here, run once for another variant (shared), and taken from the cache."""
    counted = set().union(*ours.values()) if ours else None
    chosen = [v for v in vertices if counted is None or v.digest in counted]
    return {
        "run": sum(1 for v in chosen if executed(v) and v.digest not in elsewhere),
        "shared": sum(1 for v in chosen if executed(v) and v.digest in elsewhere),
        "cached": sum(1 for v in chosen if v.is_completed and v.cached),
    }
