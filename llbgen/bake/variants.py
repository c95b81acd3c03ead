"""Resolve every variant of a bake before anything builds; every problem of every variant in one error.

Each variant's spec is the shared defaults, then its axis and include values, then the
command line's ``--set`` values, resolved by the spec resolver (``check_values``) — the
same checks ``llbgen build`` makes. Tag and cache templates are rendered, and a tag or
a cache export two variants would both write is refused.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from llbgen.bake.expand import Assignment, expand, short_plain
from llbgen.bake.model import SPEC_FIELDS, BakeFile
from llbgen.bake.overrides import Overrides
from llbgen.builder.options import CacheEntry
from llbgen.errors import UsageError
from llbgen.reference import check_tag
from llbgen.spec import ResolvedSpec, check_values
from llbgen.spec.model import TAG_PLACEHOLDERS, format_problems
from llbgen.spec.resolve import tag_distro
from llbgen.spec.toml_config import merge_values

# What a template's placeholders become when its fixed part is checked (a valid name component and tag).
TEMPLATE_SAMPLE = "0"


@dataclass(frozen=True)
class Variant:
    """One image of the bake, resolved and ready to build."""

    name: str
    resolved: ResolvedSpec
    tags: tuple[str, ...]
    cache_to: tuple[str, ...] = ()
    cache_from: tuple[str, ...] = ()
    axes: Mapping[str, Any] = field(default_factory=dict)
    origin: str = "axes"

    @property
    def tag(self) -> str:
        return self.tags[0]

    def cache_entries(self) -> tuple[list[CacheEntry], list[CacheEntry]]:
        return ([CacheEntry.parse(c, export=True) for c in self.cache_to],
                [CacheEntry.parse(c, export=False) for c in self.cache_from])


def tag_values(resolved: ResolvedSpec) -> dict[str, str]:
    """The spec's tag placeholders, as the spec's own tag template sees them."""
    return {
        "torch": resolved.torch,
        "torchvision": resolved.torchvision or "none",
        "torchaudio": resolved.torchaudio or "none",
        "python": resolved.python,
        "cuda": resolved.cuda or "cpu",
        "cuda_full": resolved.cuda_full or "cpu",
        "cudnn": resolved.cudnn or "",
        "flavour": resolved.flavour,
        "distro": tag_distro(resolved),
        "variant": resolved.variant,
    }


def render(template: str, values: Mapping[str, str]) -> str:
    """``template`` with ``{key}`` filled from ``values``; ValueError names an unknown placeholder."""
    try:
        keys = [k for _, k, _, _ in string.Formatter().parse(template) if k is not None]
    except ValueError as err:
        raise ValueError(str(err)) from None
    for key in keys:
        if key not in values:
            valid = ", ".join("{" + k + "}" for k in values)
            raise ValueError(f"unknown placeholder {{{key}}}; valid: {valid}")
    return template.format(**{k: values[k] for k in keys})


def describe(assignment: Assignment) -> str:
    """``name (torch=2.1.2, cuda=12.4)``: how a problem names the variant it is about."""
    shown = assignment.axes or {k: v for k, v in assignment.values.items() if k in SPEC_FIELDS}
    inner = ", ".join(f"{k}={short_plain(v)}" for k, v in shown.items())
    return f"{assignment.name} ({inner})" if inner else assignment.name


def spec_values(bake: BakeFile, assignment: Assignment, overrides: Overrides) -> dict[str, Any]:
    own = {k: v for k, v in assignment.values.items() if k in SPEC_FIELDS}
    return merge_values(merge_values(bake.defaults, own), overrides.spec)


def resolve_variants(bake: BakeFile, overrides: Overrides | None = None,
                     problems: Sequence[str] = ()) -> list[Variant]:
    """Every variant resolved; one ``UsageError`` listing the problems of every variant at once,
    after ``problems`` found before (the file's shape, ``--set``)."""
    overrides = overrides or Overrides()
    found, bad_templates = template_problems(bake, overrides)
    problems = [*problems, *found]
    variants: list[Variant] = []
    sound: list[Variant] = []  # variants without a problem of their own, checked for clashes
    for assignment in expand(bake):
        who = describe(assignment)
        mine = [f"{who}: {p}" for p in assignment.problems]
        resolved, found = check_values(spec_values(bake, assignment, overrides))
        mine += [f"{who}: {p}" for p in found]
        if resolved is None:
            problems += mine
            continue
        placeholders = {**tag_values(resolved), "name": assignment.name}
        placeholders.update({k: short_plain(v) for k, v in assignment.axes.items() if k not in placeholders})
        tag_templates = overrides.tag or assignment.values.get("tag") or bake.options.tag
        tags = _render_all(tag_templates, placeholders, who, "tag", mine, bad_templates)
        tags = tags or (resolved.tag,)
        for tag in tags:
            try:
                check_tag(tag)
            except ValueError as err:
                mine.append(f"{who}: tag {err}")
        caches: dict[str, tuple[str, ...]] = {}
        for key in ("cache_to", "cache_from"):
            given = getattr(overrides, key)
            templates = given if given is not None else (assignment.values.get(key) or getattr(bake.options, key))
            caches[key] = _render_all(templates, placeholders, who, key, mine, bad_templates)
            for text in caches[key]:
                try:
                    CacheEntry.parse(text, export=key == "cache_to")
                except UsageError as err:
                    mine.append(f"{who}: {key}: {err}")
        problems += mine
        variants.append(Variant(assignment.name, resolved, tags, caches["cache_to"], caches["cache_from"],
                                assignment.axes, assignment.origin))
        if not mine:
            sound.append(variants[-1])
    problems += _clashes(sound)
    if problems:
        raise UsageError(format_problems(problems))
    return variants


def template_problems(bake: BakeFile, overrides: Overrides) -> tuple[list[str], set[str]]:
    """Placeholders no variant could fill, each template reported once (not once per variant)."""
    known = list(dict.fromkeys([*placeholder_names(), *bake.axes]))
    where = f"{bake.path.name}: " if bake.path is not None else ""
    problems: list[str] = []
    bad: set[str] = set()
    sources: list[tuple[str, Sequence[str]]] = [(k, getattr(bake.options, k)) for k in ("tag", "cache_to", "cache_from")]
    sources += [(f"--{k.replace('_', '-')}", getattr(overrides, k) or ()) for k in ("tag", "cache_to", "cache_from")]
    for i, entry in enumerate(bake.include, start=1):
        sources += [(f"include[{i}].{k}", entry.get(k) or ()) for k in ("tag", "cache_to", "cache_from")]
    for key, templates in sources:
        for template in templates:
            if template in bad:
                continue
            try:
                rendered = render(template, dict.fromkeys(known, TEMPLATE_SAMPLE))
                if key.rpartition(".")[2].lstrip("-") == "tag":  # checked here for every variant, even a failing one
                    check_tag(rendered)
            except ValueError as err:
                bad.add(template)
                problems.append(f"{where}{key} {template!r}: {err}")
    return problems, bad


def _render_all(templates: Sequence[str], values: Mapping[str, str], who: str, key: str,
                problems: list[str], skip: set[str] | frozenset[str] = frozenset()) -> tuple[str, ...]:
    out: list[str] = []
    for template in templates:
        if template in skip:
            continue
        try:
            out.append(render(template, values))
        except ValueError as err:
            problems.append(f"{who}: {key} {template!r}: {err}")
    return tuple(out)


def _clashes(variants: Sequence[Variant]) -> list[str]:
    """Two variants writing the same tag or the same cache export would overwrite each other."""
    problems: list[str] = []
    owners: dict[tuple[str, str], str] = {}
    for v in variants:
        targets = [("tag", t) for t in v.tags]
        for text in v.cache_to:
            entry = CacheEntry.parse(text, export=True)
            where = entry.attrs.get("ref") or entry.attrs.get("dest")
            if where:
                targets.append(("cache_to", f"type={entry.type} {where}"))
        for kind, target in targets:
            first = owners.setdefault((kind, target), v.name)
            if first != v.name:
                hint = "give tag a template with {name} (or the axes that differ)" if kind == "tag" else \
                    "put {name} in its ref"
                problems.append(f"{kind}: variants {first} and {v.name} would both write {target}; {hint}")
    return problems


def placeholder_names() -> tuple[str, ...]:
    return (*TAG_PLACEHOLDERS, "name")
