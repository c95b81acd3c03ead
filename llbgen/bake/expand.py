"""From a bake file's axes, include and exclude to the list of variants, each with a name.

The rules are a GitHub Actions matrix's:

1. every combination of the axes' values, in the order the axes are written;
2. ``exclude``: a combination matching every key of an entry is dropped;
3. ``include``: an entry is merged into every (original) combination whose axis values
   it does not contradict — keys that are not axes are added, and may overwrite what
   an earlier include added; an entry that fits no combination becomes a variant of its
   own (with the shared defaults).

Names: an include's ``name``, else the ``name`` template, else one built from the axes
whose values differ between variants (``torch2.5.1-cu124-py3.11``); a name given twice
gets ``-2``, ``-3`` ...
"""

from __future__ import annotations

import itertools
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llbgen.bake.model import BakeFile
from llbgen.spec.compat import short_cuda

_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Assignment:
    """One variant before resolution: its name and every value it sets (axes, include, options)."""

    name: str
    values: Mapping[str, Any]
    axes: Mapping[str, Any] = field(default_factory=dict)  # this variant's axis values
    origin: str = "axes"  # "axes", or "include[N]" for a variant an include created
    problems: tuple[str, ...] = ()  # e.g. a name template that cannot be rendered


def _matches(entry: Mapping[str, Any], combination: Mapping[str, Any], keys) -> bool:
    return all(entry[k] == combination[k] for k in keys if k in entry)


def combinations(bake: BakeFile) -> list[tuple[dict[str, Any], dict[str, Any], str]]:
    """(axis values, all values, origin) per variant, in order: axes first, then new include variants."""
    axes = bake.axes
    combos: list[tuple[dict[str, Any], dict[str, Any], str]] = []
    if axes:
        for values in itertools.product(*axes.values()):
            axis_values = dict(zip(axes, values, strict=True))
            if any(_matches(e, axis_values, e) for e in bake.exclude):
                continue
            combos.append((axis_values, dict(axis_values), "axes"))
    elif not bake.include:
        combos.append(({}, {}, "defaults"))
    originals = list(combos)
    for i, entry in enumerate(bake.include, start=1):
        hits = [c for c in originals if _matches(entry, c[0], axes)]
        for _, values, _ in hits:
            values.update(entry)
        if not hits:
            combos.append(({k: entry[k] for k in axes if k in entry}, dict(entry), f"include[{i}]"))
    return combos


def short_value(key: str, value: Any) -> str:
    """A name part for one axis value: torch2.5.1, cu121, cpu, py3.11, debian-bookworm ..."""
    text = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
    if key == "torch":
        return f"torch{text}"
    if key == "cuda":
        return "cpu" if text == "cpu" else "cu" + short_cuda(text).replace(".", "")
    if key == "python":
        return f"py{text}"
    if key == "cpu":
        return "cpu" if value is True else "gpu"
    if key in ("base_image", "builder_image"):
        text = text.rsplit("/", 1)[-1].replace(":", "-").replace("@", "-")
        return text if key == "base_image" else f"builder-{text}"
    if key in ("flavour", "distro", "cudnn"):
        return text if key != "cudnn" else f"cudnn{text}"
    return f"{key}-{text}"


def _clean(name: str) -> str:
    return _NAME_CHARS.sub("-", name).strip("-.") or "variant"


def expand(bake: BakeFile) -> list[Assignment]:
    """Every variant of the bake file, named, in order."""
    combos = combinations(bake)
    varying = [k for k, vs in bake.axes.items() if len(vs) > 1]
    names: list[str] = []
    problems: list[tuple[str, ...]] = []
    for n, (axis_values, values, origin) in enumerate(combos, start=1):
        found: tuple[str, ...] = ()
        explicit = values.get("name") if "name" in values else None
        template = explicit or bake.options.name
        if template:
            name, found = _render_name(template, {**bake.defaults, **values})
        else:
            keys = [k for k in varying if k in axis_values] or (
                [k for k in values if k not in ("tag", "cache_to", "cache_from")] if origin != "axes" else [])
            name = "-".join(short_value(k, values[k]) for k in keys) or ("default" if len(combos) == 1 else f"v{n}")
        names.append(_clean(name))
        problems.append(found)
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return [
        Assignment(name, {k: v for k, v in values.items() if k != "name"}, axis_values, origin, found)
        for name, (axis_values, values, origin), found in zip(unique, combos, problems, strict=True)
    ]


def _render_name(template: str, values: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    try:
        keys = [k for _, k, _, _ in string.Formatter().parse(template) if k is not None]
    except ValueError as err:
        return template, (f"name: {err}",)
    missing = [k for k in keys if k not in values]
    if missing:
        return template, (f"name: {{{missing[0]}}} is not set for this variant; valid: "
                          + ", ".join("{" + k + "}" for k in values if k not in ("tag", "cache_to", "cache_from")),)
    return template.format(**{k: short_plain(values[k]) for k in keys}), ()


def short_plain(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
