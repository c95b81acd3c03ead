"""What ``llbgen bake`` prints: the resolved variants (``--print``) and the summary at the end.

Both come as a text table or as JSON (``--json``). In the summary, a layer is *built*
when one of its steps ran for this variant, *reused* when all came from the cache or
ran once for another variant on the same builder (``sharing``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from llbgen.bake.run import VariantResult
from llbgen.bake.sharing import ran_elsewhere, step_counts
from llbgen.bake.variants import Variant
from llbgen.builder.progress import human_bytes
from llbgen.recipe import BUILT, REUSED, layer_statuses


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]]


# --- --print ---------------------------------------------------------------------------


def variant_data(v: Variant) -> dict[str, Any]:
    r = v.resolved
    spec = r.model_dump(mode="json", exclude={"spec": {"proxy"}})
    return {"name": v.name, "tags": list(v.tags), "axes": dict(v.axes), "origin": v.origin,
            "cache_to": list(v.cache_to), "cache_from": list(v.cache_from), "spec": spec}


def variants_json(variants: Sequence[Variant]) -> str:
    return json.dumps([variant_data(v) for v in variants], indent=2, default=str)


def variants_table(variants: Sequence[Variant]) -> list[str]:
    header = ("VARIANT", "TORCH", "CUDA", "PYTHON", "BASE", "TAG", "CACHE")
    rows = []
    for v in variants:
        r = v.resolved
        cache = "; ".join([*(f"to {c}" for c in v.cache_to), *(f"from {c}" for c in v.cache_from)]) or "-"
        rows.append((v.name, r.torch, r.cuda_full or "cpu", r.python, r.base_image, ", ".join(v.tags), cache))
    return [*_table(header, rows), f"{len(variants)} variant{'s' if len(variants) != 1 else ''}"]


# --- the summary ---------------------------------------------------------------------------


def summary_rows(results: Sequence[VariantResult]) -> list[dict[str, Any]]:
    """One dict per variant: where it ran, what it made, what it built and reused, how long, how big."""
    runs = [(r.variant.name, r.builder, r.outcome.result.vertices) for r in results if r.outcome is not None]
    elsewhere = ran_elsewhere(runs)
    rows: list[dict[str, Any]] = []
    for r in results:
        row: dict[str, Any] = {
            "variant": r.variant.name, "builder": r.builder or None, "status": r.status,
            "tags": list(r.variant.tags), "digest": None, "layers": {}, "layers_built": [], "layers_reused": [],
            "steps": None, "seconds": round(r.seconds, 3) if r.seconds is not None else None,
            "size": r.size, "size_source": r.size_source or None, "error": r.error,
        }
        if r.outcome is not None:
            shared = elsewhere.get(r.variant.name, frozenset())
            vertices = r.outcome.result.vertices
            layers = layer_statuses(r.outcome.layer_vertices, vertices, shared)
            row.update(digest=r.outcome.image_digest, layers=layers,
                       layers_built=[n for n, s in layers.items() if s == BUILT],
                       layers_reused=[n for n, s in layers.items() if s == REUSED],
                       steps=step_counts(vertices, shared))
        rows.append(row)
    return rows


def summary_json(results: Sequence[VariantResult]) -> str:
    return json.dumps(summary_rows(results), indent=2)


def summary_table(results: Sequence[VariantResult], wall_seconds: float | None = None) -> list[str]:
    rows = summary_rows(results)
    header = ("VARIANT", "BUILDER", "TAG", "DIGEST", "LAYERS", "STEPS", "TIME", "SIZE", "RESULT")
    cells = []
    for row in rows:
        steps = row["steps"]
        size = "-" if row["size"] is None else human_bytes(row["size"])
        cells.append((
            row["variant"], row["builder"] or "-", ", ".join(row["tags"]),
            (row["digest"] or "-")[:19],
            f"{len(row['layers_built'])} built / {len(row['layers_reused'])} reused" if row["layers"] else "-",
            f"{steps['run']} run, {steps['shared']} shared, {steps['cached']} cached" if steps else "-",
            "-" if row["seconds"] is None else f"{row['seconds']:.1f}s",
            size,
            row["status"] if row["status"] != "failed" else "FAILED",
        ))
    lines = _table(header, cells)
    for row in rows:
        if row["layers"]:
            built = ", ".join(row["layers_built"]) or "none"
            reused = ", ".join(row["layers_reused"]) or "none"
            others = [f"{n} {s}" for n, s in row["layers"].items() if s not in (BUILT, REUSED)]
            lines.append(f"  {row['variant']}: built {built}; reused {reused}" + (f"; {', '.join(others)}" if others else ""))
        elif row["error"]:
            lines.append(f"  {row['variant']}: {row['error'].splitlines()[0]}")
    ok = sum(1 for r in rows if r["status"] == "ok")
    failed = sum(1 for r in rows if r["status"] == "failed")
    builders = sorted({r["builder"] for r in rows if r["builder"]})
    tail = f"{len(rows)} variant{'s' if len(rows) != 1 else ''}: {ok} ok"
    tail += f", {failed} failed" if failed else ""
    cancelled = len(rows) - ok - failed
    tail += f", {cancelled} not built" if cancelled else ""
    tail += f"; {len(builders)} builder{'s' if len(builders) != 1 else ''}"
    tail += f"; {wall_seconds:.1f}s in all" if wall_seconds is not None else ""
    lines.append(tail)
    lines.append("shared = steps BuildKit ran once for several variants at the same time, counted where they ran first")
    return lines
