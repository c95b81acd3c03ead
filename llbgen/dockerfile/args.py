"""The Dockerfile's build arguments: versions and sources, with the resolved values as defaults.

Like the seed's ``--build-arg``s, but every default is what llbgen resolved and checked
(torch ↔ torchvision ↔ torchaudio ↔ index, the installer's sha256), so ``docker build``
without arguments builds exactly the exported spec. The step scripts stay the stage
objects' own text: a resolved value that is one unquoted shell word of a script
(``torch==2.3.0``, the index URL) becomes ``${ARG}`` in that word, and only there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from llbgen.dockerfile.text import word
from llbgen.errors import UsageError

_PINNED = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9][A-Za-z0-9.+!_-]*)$")

# Each argument's meaning, for the Dockerfile's comments (README.md explains them in either language).
HELP = {
    "BASE_IMAGE": "image the os layer is built on and the image starts from (nvidia/cuda for GPU, the distro for CPU)",
    "BUILDER_IMAGE": "neutral image (same distro family, no CUDA) the python, jupyter and torch stages are built on",
    "MINICONDA_URL": "URL of the Miniconda installer",
    "MINICONDA_SHA256": "its sha256 (ADD --checksum refuses anything else)",
    "TORCH_INDEX_URL": "wheel index torch, torchvision and torchaudio come from",
}


def version_arg(package: str) -> str:
    """``torch`` -> ``TORCH_VERSION``."""
    return re.sub(r"[^A-Za-z0-9]", "_", package).upper() + "_VERSION"


@dataclass(frozen=True)
class BuildArg:
    name: str
    default: str
    help: str

    def declaration(self) -> str:
        """``ARG NAME=default``; a default with any other character is double-quoted, as data (``\\$`` is a ``$``)."""
        if any(ord(c) < 0x20 or c == "\x7f" for c in self.default):  # refused at input; a newline would end the ARG
            raise UsageError(f"{self.name}: {self.default!r} has a control character; it cannot be an ARG default")
        return f"ARG {self.name}={word(self.default)}"


@dataclass
class ArgRegistry:
    """The arguments a Dockerfile uses, in order of first use (collected while it is rendered)."""

    args: dict[str, BuildArg] = field(default_factory=dict)

    def use(self, name: str, default: str, help: str | None = None) -> str:
        """Declare ``name`` (once) and return ``${name}``."""
        known = self.args.get(name)
        if known is not None and known.default != default:
            raise ValueError(f"ARG {name}: two defaults, {known.default!r} and {default!r}")
        self.args.setdefault(name, BuildArg(name, default, help or HELP.get(name, "")))
        return "${" + name + "}"

    def defaults(self) -> dict[str, str]:
        return {a.name: a.default for a in self.args.values()}


def replace_word(script: str, word: str, replacement: str) -> tuple[str, bool]:
    """``word`` replaced where it stands as a whole unquoted shell word; (text, found)."""
    pattern = re.compile(rf"(?<![^\s]){re.escape(word)}(?![^\s])")
    new, count = pattern.subn(lambda _: replacement, script)
    return new, count > 0


def parametrize(script: str, registry: ArgRegistry, *, requirements: Iterable[str] = (),
                index_url: str | None = None) -> tuple[str, tuple[str, ...]]:
    """The script with pinned requirements and the index URL as ``${ARG}`` words; (script, ARG names used)."""
    used: list[str] = []
    for req in requirements:
        m = _PINNED.match(req)
        if not m:
            continue
        package, version = m.groups()
        name = version_arg(package)
        candidate, found = replace_word(script, req, f"{package}==${{{name}}}")
        if found:
            registry.use(name, version, f"{package} release")
            script = candidate
            used.append(name)
    if index_url:
        candidate, found = replace_word(script, index_url, "${TORCH_INDEX_URL}")
        if found:
            registry.use("TORCH_INDEX_URL", index_url)
            script = candidate
            used.append("TORCH_INDEX_URL")
    return script, tuple(dict.fromkeys(used))
