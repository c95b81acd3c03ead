"""The bake file: a matrix of images in TOML, as a pydantic model.

Top-level keys are shared by every variant: any ``ImageSpec`` key (``python``,
``cpu``, ``[mirrors]``, ``ca_cert`` ...) and the build options (``tag``,
``cache_to``, ``cache_from``, ``push``, ``load``, ``network``, ``builders``,
``max_parallel``, ``name``). ``[axes]`` lists the values to combine; ``include`` and
``exclude`` adjust the combinations the way a GitHub Actions matrix does::

    python = "3.11"
    tag = "registry.example.com/pytorch:{torch}-{cuda}-py{python}"
    cache_to = ["type=registry,ref=registry.example.com/cache:{name},mode=max"]
    cache_from = ["type=registry,ref=registry.example.com/cache:{name}"]

    [axes]
    torch = ["2.4.1", "2.5.1"]
    cuda = ["12.1", "12.4"]

    [[exclude]]                 # a partial assignment: every combination it matches is dropped
    torch = "2.4.1"
    cuda = "12.4"

    [[include]]                 # added to the combinations it matches, else a variant of its own
    torch = "2.5.1"
    pip_packages = ["transformers"]

Templates (``tag``, ``cache_to``, ``cache_from``) are rendered per variant with the
spec's tag placeholders ({torch} {torchvision} {torchaudio} {python} {cuda}
{cuda_full} {cudnn} {flavour} {distro} {variant} — the wheel variant, cu121 or
cpu), {name} (the variant's name) and the variant's own axis values by key.
``name`` may be given per variant (in an include) or as a template of axis keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llbgen.errors import UsageError
from llbgen.spec.model import ImageSpec, format_problems
from llbgen.spec.toml_config import _known as known_spec_values
from llbgen.spec.toml_config import read_toml

# Keys a variant may set for itself (top level: the shared value; include: this variant's).
VARIANT_OPTIONS = ("name", "tag", "cache_to", "cache_from")
# Keys only the top level may set.
GLOBAL_OPTIONS = ("push", "load", "network", "builders", "max_parallel")
STRUCTURE = ("axes", "include", "exclude")
SPEC_FIELDS = tuple(ImageSpec.model_fields)


class VariantOptions(BaseModel):
    """The build options one variant may set (templates, rendered per variant)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str | None = Field(None, description="The variant's name, or a template of its axis keys, e.g. '{torch}-{cuda}'.")
    tag: tuple[str, ...] = Field((), description="Image tag template(s); default: the spec's own tag.")
    cache_to: tuple[str, ...] = Field((), description="Cache exports (buildx syntax), templates.")
    cache_from: tuple[str, ...] = Field((), description="Cache imports (buildx syntax), templates.")


class BakeFile(BaseModel):
    """A whole bake file, parsed: shared spec values, options, axes, include/exclude."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: Path | None = Field(None, description="Where it was read from (relative paths are taken from its directory).")
    defaults: dict[str, Any] = Field(default_factory=dict, description="ImageSpec values shared by every variant.")
    options: VariantOptions = Field(default_factory=VariantOptions, description="Build options shared by every variant.")
    axes: dict[str, tuple[Any, ...]] = Field(default_factory=dict, description="Key -> values to combine.")
    include: tuple[dict[str, Any], ...] = Field((), description="Partial assignments added to matching combinations.")
    exclude: tuple[dict[str, Any], ...] = Field((), description="Partial assignments whose matches are dropped.")
    push: bool = Field(False, description="Push every image to its registry.")
    load: bool = Field(False, description="Load every image into the Docker Engine that built it.")
    network: Literal["default", "host"] = Field("default", description="host: download steps use the host's network.")
    builders: tuple[str, ...] = Field((), description="BuildKit addresses to spread the variants across.")
    max_parallel: int | None = Field(None, ge=1, description="How many variants build at once.")


def _strings(value: Any, where: str, problems: list[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return tuple(value)
    problems.append(f"{where}: expected a string or a list of strings, got {value!r}")
    return ()


def split_entry(values: Mapping[str, Any], where: str, problems: list[str], *,
                top_level: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """(ImageSpec values, variant options) of a table; problems for unknown or misplaced keys."""
    spec_part: dict[str, Any] = {}
    options: dict[str, Any] = {}
    for raw_key, value in values.items():
        key = raw_key.replace("-", "_")
        if key in VARIANT_OPTIONS:
            if key == "name":
                if isinstance(value, str) and value:
                    options["name"] = value
                else:
                    problems.append(f"{where}name: expected a non-empty string, got {value!r}")
            else:
                options[key] = _strings(value, f"{where}{key}", problems)
        elif key in GLOBAL_OPTIONS or key in STRUCTURE:
            if not top_level:
                problems.append(f"{where}{raw_key}: only the top level of the bake file may set it")
        else:
            spec_part[raw_key] = value
    known, unknown = known_spec_values(spec_part, where)
    ours = (*VARIANT_OPTIONS, *GLOBAL_OPTIONS, *STRUCTURE) if top_level else VARIANT_OPTIONS
    for problem in unknown:  # a key of a table ([mirrors], [proxy]) keeps the table's own list
        key = problem[len(where):].split(":", 1)[0]
        problems.append(problem if "." in key else problem.replace("; valid: ", "; valid: " + ", ".join(ours) + ", ", 1))
    return known, options


def _absolute_ca(values: dict[str, Any], base: Path | None) -> dict[str, Any]:
    ca_cert = values.get("ca_cert")
    if (base is not None and isinstance(ca_cert, str) and ca_cert and "\0" not in ca_cert  # refused by the spec
            and not Path(ca_cert).is_absolute()):
        return {**values, "ca_cert": str((base / ca_cert).resolve())}
    return values


def parse_bake(raw: Mapping[str, Any], path: Path | None = None, problems: list[str] | None = None) -> BakeFile:
    """A bake file's TOML data as a ``BakeFile``; one ``UsageError`` names every problem of its shape.

    Given a ``problems`` list, the problems are added to it instead and the file is returned
    without what is wrong, so the variants can be checked too and reported in the same error.
    """
    where = f"{path.name}: " if path is not None else ""
    base_dir = path.parent if path is not None else None
    collect = problems
    problems = []
    defaults, options = split_entry(raw, where, problems, top_level=True)
    defaults = _absolute_ca(defaults, base_dir)

    axes: dict[str, tuple[Any, ...]] = {}
    raw_axes = raw.get("axes", {})
    if not isinstance(raw_axes, Mapping):
        problems.append(f"{where}axes: expected a table of key = [values]")
        raw_axes = {}
    for raw_key, values in raw_axes.items():
        key = raw_key.replace("-", "_")
        if key not in SPEC_FIELDS:
            problems.append(f"{where}axes.{raw_key}: not a spec key; valid: {', '.join(SPEC_FIELDS)}")
            continue
        if key in ("mirrors", "proxy"):
            problems.append(f"{where}axes.{raw_key}: a table cannot be an axis; give its variants with include")
            continue
        if not isinstance(values, list) or not values:
            problems.append(f"{where}axes.{raw_key}: expected a non-empty list of values, got {values!r}")
            continue
        if len(set(map(repr, values))) != len(values):
            problems.append(f"{where}axes.{raw_key}: a value is listed twice: {values!r}")
        axes[key] = tuple(_absolute_ca({key: v}, base_dir)[key] for v in values)

    entries: dict[str, list[dict[str, Any]]] = {"include": [], "exclude": []}
    for kind in ("include", "exclude"):
        raw_list = raw.get(kind, [])
        if not isinstance(raw_list, list) or not all(isinstance(e, Mapping) for e in raw_list):
            problems.append(f"{where}{kind}: expected an array of tables ([[{kind}]])")
            continue
        for i, entry in enumerate(raw_list, start=1):
            at = f"{where}{kind}[{i}]."
            if not entry:
                problems.append(f"{where}{kind}[{i}]: empty")
                continue
            if kind == "exclude":
                bad = [k for k in entry if k.replace("-", "_") not in axes]
                problems += [f"{at}{k}: exclude matches axis keys only; axes: {', '.join(axes) or '(none)'}" for k in bad]
                entries[kind].append({k.replace("-", "_"): v for k, v in entry.items()})
                continue
            spec_values, variant_options = split_entry(entry, at, problems, top_level=False)
            entries[kind].append({**_absolute_ca(spec_values, base_dir), **variant_options})

    fields: dict[str, Any] = {"path": path, "defaults": defaults, "options": options, "axes": axes,
                              "include": entries["include"], "exclude": entries["exclude"]}
    for key in GLOBAL_OPTIONS:
        if key in raw:
            fields[key] = _strings(raw[key], f"{where}{key}", problems) if key == "builders" else raw[key]
    try:
        bake = BakeFile.model_validate(fields)
    except ValidationError as err:  # the options' own shapes (push = "maybe", max_parallel = 0, ...)
        problems += [f"{where}{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()]
        bake = BakeFile.model_validate({k: v for k, v in fields.items() if k not in GLOBAL_OPTIONS})
    if collect is not None:
        collect += problems
    elif problems:
        raise UsageError(format_problems(problems))
    return bake


def load_bake(path: Path, problems: list[str] | None = None) -> BakeFile:
    """Read and parse a bake file (``problems``: as for ``parse_bake``)."""
    return parse_bake(read_toml(path, "bake"), path, problems)
