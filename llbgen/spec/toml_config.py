"""``llbgen.toml``: an ``ImageSpec`` in a file, which command-line flags override.

Keys are the ``ImageSpec`` field names (``base-image`` is accepted for
``base_image``); ``[mirrors]`` and ``[proxy]`` are tables. A relative
``ca_cert`` is taken relative to the file. Unknown keys are errors, named
together with every other problem of the spec.

    torch = "2.3.0"
    cuda = "12.1"
    python = "3.8"
    pip_packages = ["transformers"]

    [mirrors]
    pip_index_url = "https://pypi.tuna.tsinghua.edu.cn/simple"
    torch_index_url = "https://mirrors.aliyun.com/pytorch-wheels/{variant}/"
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from llbgen.errors import UsageError
from llbgen.spec.model import ImageSpec, Mirrors, Proxy, format_problems
from llbgen.spec.resolve import ResolvedSpec, check_values

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, from PyPI (the `tomli` package)
    import tomli as tomllib

_TABLES: dict[str, type[BaseModel]] = {"mirrors": Mirrors, "proxy": Proxy}


def _normalise(key: str) -> str:
    return key.replace("-", "_")


def _known(values: Mapping[str, Any], where: str) -> tuple[dict[str, Any], list[str]]:
    """Values with keys normalised and unknown keys dropped, plus one problem per unknown key."""
    out: dict[str, Any] = {}
    problems: list[str] = []
    for raw_key, value in values.items():
        key = _normalise(raw_key)
        if key in _TABLES and isinstance(value, Mapping):
            fields = _TABLES[key].model_fields
            out[key] = {_normalise(k): v for k, v in value.items() if _normalise(k) in fields}
            problems += [
                f"{where}{key}.{k}: unknown key; valid: {', '.join(fields)}" for k in value if _normalise(k) not in fields
            ]
        elif key in ImageSpec.model_fields:
            out[key] = value
        else:
            problems.append(f"{where}{raw_key}: unknown key; valid: {', '.join(ImageSpec.model_fields)}")
    return out, problems


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """A TOML file's data; a missing, unreadable, non-UTF-8 or malformed file is one ``UsageError``."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{what}: no file at {path}") from None
    except OSError as err:
        raise UsageError(f"{what}: cannot read {path}: {err.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UsageError(f"{what}: {path} is not UTF-8 text (byte {data[err.start]:#04x} at offset {err.start}); "
                         "save it as UTF-8") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise UsageError(f"{what}: {path} is not valid TOML: {err}") from None


def read_config(path: Path) -> tuple[dict[str, Any], list[str]]:
    """The file's known values (``ca_cert`` made absolute) and a problem per unknown key.

    A missing or unparsable file raises ``UsageError`` at once.
    """
    raw = read_toml(path, "config")
    values, problems = _known(raw, f"{path.name}: ")
    ca_cert = values.get("ca_cert")
    # A NUL (which the spec refuses, naming it) would make resolve() raise first.
    if isinstance(ca_cert, str) and ca_cert and "\0" not in ca_cert and not Path(ca_cert).is_absolute():
        values["ca_cert"] = str((path.parent / ca_cert).resolve())
    return values, problems


def _nest(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Flags as nested values: ``None`` dropped, ``"mirrors.apt"`` -> ``{"mirrors": {"apt": ...}}``."""
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        if value is None:
            continue
        head, _, sub = key.partition(".")
        if sub:
            out.setdefault(head, {})[sub] = value
        elif isinstance(value, Mapping):
            out.setdefault(head, {}).update({k: v for k, v in value.items() if v is not None})
        else:
            out[head] = value
    return out


def merge_values(file_values: Mapping[str, Any], flag_values: Mapping[str, Any]) -> dict[str, Any]:
    """Flags over file values; the ``mirrors`` and ``proxy`` tables merge key by key."""
    merged: dict[str, Any] = {k: dict(v) if isinstance(v, Mapping) else v for k, v in file_values.items()}
    for key, value in flag_values.items():
        if key in _TABLES and isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key].update(value)
        else:
            merged[key] = value
    return merged


def load_values(config: Path | None, overrides: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """File values (if any) with flags on top, and a problem per unknown key in either."""
    file_values, problems = read_config(config) if config is not None else ({}, [])
    flag_values, flag_problems = _known(_nest(overrides), "")
    return merge_values(file_values, flag_values), problems + flag_problems


def load_spec(config: Path | None = None, overrides: Mapping[str, Any] | None = None) -> ResolvedSpec:
    """Read ``config``, apply ``overrides`` (flags; ``None`` = not given) and resolve.

    Unknown keys, malformed values and incompatible combinations all end up in
    one ``UsageError``.

    >>> load_spec(None, {"torch": "2.3.0", "cpu": True}).torch_index_url
    'https://download.pytorch.org/whl/cpu'
    """
    values, problems = load_values(config, overrides or {})
    resolved, more = check_values(values)
    problems += more
    if problems or resolved is None:
        raise UsageError(format_problems(problems))
    return resolved
