"""What the command line sets for every variant of a bake: ``--set KEY=VALUE``, ``--ca-cert``,
``--tag``, ``--cache-to`` / ``--cache-from`` (templates, replacing the file's).

``--set`` takes any ``ImageSpec`` key (``mirrors.apt``, ``proxy.https_proxy`` for the
tables); list keys take comma-separated values, ``cpu`` takes true/false. Values
apply on top of the file's, variant by variant, and are checked with the spec.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llbgen.errors import UsageError
from llbgen.spec.model import ImageSpec, Mirrors, Proxy, format_problems

_TABLES = {"mirrors": Mirrors, "proxy": Proxy}
_LISTS = {"apt_packages", "pip_packages", "mirrors.pip_extra_index_urls", "mirrors.conda_channels"}
_BOOLS = {"cpu"}
_PATHS = {"ca_cert"}


@dataclass(frozen=True)
class Overrides:
    """Values the command line gives every variant."""

    spec: Mapping[str, Any] = field(default_factory=dict)  # nested ImageSpec values
    tag: tuple[str, ...] | None = None  # tag templates replacing the file's when given
    cache_to: tuple[str, ...] | None = None  # replace the file's when given
    cache_from: tuple[str, ...] | None = None


def _valid_keys() -> list[str]:
    keys = [k for k in ImageSpec.model_fields if k not in _TABLES]
    for table, model in _TABLES.items():
        keys += [f"{table}.{k}" for k in model.model_fields]
    return keys


def parse_sets(items: Sequence[str], problems: list[str] | None = None) -> dict[str, Any]:
    """``["python=3.11", "mirrors.apt=https://..."]`` -> nested spec values; every bad item in one error
    (or, given a ``problems`` list, added to it and the bad items left out)."""
    values: dict[str, Any] = {}
    collect = problems
    problems = []
    valid = _valid_keys()
    for item in items:
        raw_key, sep, value = item.partition("=")
        key = raw_key.strip().replace("-", "_")
        if not sep or not key:
            problems.append(f"--set {item!r}: expected KEY=VALUE")
            continue
        if key not in valid:
            problems.append(f"--set {raw_key}: unknown key; valid: {', '.join(valid)}")
            continue
        parsed: Any = value
        if key in _LISTS:
            parsed = tuple(v.strip() for v in value.split(",") if v.strip())
        elif key in _BOOLS:
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                problems.append(f"--set {key}={value}: expected true or false")
                continue
            parsed = value.lower() in ("true", "1", "yes")
        elif key in _PATHS:
            parsed = str(Path(value).expanduser().absolute())
        head, _, sub = key.partition(".")
        if sub:
            values.setdefault(head, {})[sub] = parsed
        else:
            values[head] = parsed
    if collect is not None:
        collect += problems
    elif problems:
        raise UsageError(format_problems(problems))
    return values
