"""``ImageSpec``: what the user asks for, as given (flags and/or ``llbgen.toml``).

Fields only check their own shape (a version looks like a version, a URL like
a URL). Whether the combination exists — torch 2.3.0 with CUDA 12.4, say — is
decided by ``resolve.py`` against the compatibility data, which also fills every
``None`` with its default.

>>> ImageSpec(torch="2.3.0", cuda="12.1").python is None   # resolved later: 3.8
True
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from llbgen.errors import UsageError
from llbgen.reference import check_reference

DEFAULT_TAG_TEMPLATE = "pytorch:{torch}-python{python}-cuda{cuda_full}-cudnn{cudnn}-{flavour}-{distro}"
DEFAULT_CPU_TAG_TEMPLATE = "pytorch:{torch}-python{python}-cpu-{distro}"
TAG_PLACEHOLDERS = ("torch", "torchvision", "torchaudio", "python", "cuda", "cuda_full", "cudnn", "flavour", "distro", "variant")

# Shapes, with the hint shown when a value does not match.
RELEASE = r"^\d+\.\d+\.\d+$"
RELEASE_OR_NONE = r"^(\d+\.\d+\.\d+|none|)$"
CUDA = r"^(\d+\.\d+(\.\d+)?|cpu)$"
PYTHON = r"^3\.\d+$"
DISTRO = r"^[a-z]+\d+(\.\d+)?$"
URL = r"^https?://\S+$"
APT_PACKAGE = r"^[a-z0-9][a-z0-9+.:=~-]*$"
PIP_REQUIREMENT = r"^[A-Za-z0-9][^\s;&|`$\\]*$"
SHA256 = r"^[0-9a-f]{64}$"
INSTALLER = r"^[A-Za-z0-9][\w.+-]*\.sh$"
NO_PROXY = r"^\S*$"

_HINTS = {
    RELEASE: "a release like 2.3.0",
    RELEASE_OR_NONE: "a release like 2.3.0, or none",
    CUDA: "a CUDA version like 12.1 or 12.1.0, or cpu",
    PYTHON: "a Python version like 3.11",
    r"^\d+$": "a cuDNN major version like 8",
    DISTRO: "a distro like ubuntu22.04",
    URL: "an http(s) URL",
    APT_PACKAGE: "an apt package name",
    PIP_REQUIREMENT: "a pip requirement like numpy<2",
    SHA256: "64 lowercase hex digits",
    INSTALLER: "an installer file name like Miniconda3-py38_23.11.0-2-Linux-x86_64.sh",
    NO_PROXY: "a comma-separated host list without spaces",
}

Release = Annotated[str, StringConstraints(pattern=RELEASE)]
Url = Annotated[str, StringConstraints(pattern=URL)]
# C0 and C1 control characters (ESC, BEL, NUL, newline ...): no spec value needs one, and
# printed raw (by plan, in an error) they would drive the terminal.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _image_reference(value: str) -> str:
    try:
        return check_reference(value)
    except ValueError as err:
        raise PydanticCustomError("image_reference", "{problem}", {"problem": str(err)}) from None


Image = Annotated[str, AfterValidator(_image_reference)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        texts = value if isinstance(value, (list, tuple)) else (value,)
        for text in texts:
            if isinstance(text, str) and _CONTROL.search(text):
                raise PydanticCustomError(
                    "control_character", "{value} contains a control character (ESC, BEL, NUL, a newline ...); remove it",
                    {"value": repr(text)})
        return value


class Mirrors(_Frozen):
    """Where downloads come from instead of the upstream hosts (e.g. mirrors inside China)."""

    apt: Url | None = Field(
        None, description="Apt mirror replacing the distro's archive, e.g. https://mirrors.tuna.tsinghua.edu.cn/ubuntu/."
    )
    pip_index_url: Url | None = Field(
        None, description="pip index for everything but torch, e.g. https://pypi.tuna.tsinghua.edu.cn/simple."
    )
    pip_extra_index_urls: tuple[Url, ...] = Field((), description="Extra pip indexes searched after pip_index_url.")
    miniconda_url: Url | None = Field(
        None,
        description="Base URL of the directory holding the Miniconda installer (default https://repo.anaconda.com/miniconda).",
    )
    conda_channels: tuple[Url, ...] = Field((), description="Conda channel URLs written to .condarc, replacing the defaults.")
    torch_index_url: Url | None = Field(
        None,
        description="Index for torch/torchvision/torchaudio replacing download.pytorch.org; '{variant}' is replaced by cu121, cpu, ... "
        "e.g. https://mirrors.aliyun.com/pytorch-wheels/{variant}/.",
    )


class Proxy(_Frozen):
    """Proxy variables set for build steps only (never stored in the image)."""

    http_proxy: Url | None = Field(None, description="HTTP proxy URL for build steps.")
    https_proxy: Url | None = Field(None, description="HTTPS proxy URL for build steps.")
    no_proxy: Annotated[str, StringConstraints(pattern=NO_PROXY)] | None = Field(
        None, description="Hosts that bypass the proxy, comma-separated."
    )


class ImageSpec(_Frozen):
    """One PyTorch image, as the user describes it; ``None`` means "the resolved default"."""

    torch: Release = Field(description="torch release, e.g. 2.3.0.")
    torchvision: Annotated[str, StringConstraints(pattern=RELEASE_OR_NONE)] | None = Field(
        None, description="torchvision release; None picks the paired one, 'none' or '' installs no torchvision."
    )
    torchaudio: Annotated[str, StringConstraints(pattern=RELEASE_OR_NONE)] | None = Field(
        None, description="torchaudio release; None picks the paired one, 'none' or '' installs no torchaudio."
    )
    cuda: Annotated[str, StringConstraints(pattern=CUDA)] | None = Field(
        None,
        description="CUDA version, short (12.1) or full (12.1.0); None picks the torch release's default; 'cpu' is the same as cpu=true.",
    )
    cpu: bool = Field(False, description="Build a CPU-only image: an Ubuntu base and the CPU wheel index.")
    cudnn: Annotated[str, StringConstraints(pattern=r"^\d+$")] | None = Field(
        None, description="cuDNN major version in the base image (8, 9); None takes the one in the nvidia/cuda image."
    )
    python: Annotated[str, StringConstraints(pattern=PYTHON)] | None = Field(
        None, description="Python version installed by Miniconda, e.g. 3.8; None picks the torch release's default."
    )
    distro: Annotated[str, StringConstraints(pattern=DISTRO)] | None = Field(
        None, description="Base distro, e.g. ubuntu22.04; None picks ubuntu22.04 when the base offers it."
    )
    flavour: Literal["devel", "runtime"] = Field(
        "devel", description="nvidia/cuda image flavour: devel (nvcc, headers) or runtime."
    )
    base_image: Image | None = Field(None, description="Base image replacing the resolved nvidia/cuda or ubuntu image.")
    builder_image: Image | None = Field(
        None, description="Neutral image (same distro family, no CUDA) the python/jupyter/torch layers are built on."
    )
    apt_packages: tuple[Annotated[str, StringConstraints(pattern=APT_PACKAGE)], ...] = Field(
        (), description="Extra apt packages for the os layer."
    )
    pip_packages: tuple[Annotated[str, StringConstraints(pattern=PIP_REQUIREMENT)], ...] = Field(
        (), description="Extra pip requirements installed after torch."
    )
    mirrors: Mirrors = Field(default_factory=Mirrors, description="Download mirrors.")
    ca_cert: Path | None = Field(None, description="PEM CA bundle trusted by build steps only (not copied into the image).")
    proxy: Proxy = Field(default_factory=Proxy, description="Proxy variables for build steps.")
    miniconda_installer: Annotated[str, StringConstraints(pattern=INSTALLER)] | None = Field(
        None, description="Miniconda installer file name replacing the one picked for the Python version."
    )
    miniconda_sha256: Annotated[str, StringConstraints(pattern=SHA256)] | None = Field(
        None, description="sha256 of the Miniconda installer; required when no published checksum is recorded for it."
    )
    tag_template: str | None = Field(
        None,
        description=f"Image tag template; None uses {DEFAULT_TAG_TEMPLATE!r} (CPU: {DEFAULT_CPU_TAG_TEMPLATE!r}). "
        f"Placeholders: {', '.join('{' + p + '}' for p in TAG_PLACEHOLDERS)}.",
    )

    @model_validator(mode="before")
    @classmethod
    def _cuda_cpu_alias(cls, values: Any) -> Any:
        if isinstance(values, Mapping) and values.get("cuda") == "cpu":
            return {**values, "cuda": None, "cpu": True}
        return values


def format_problems(problems: list[str]) -> str:
    """One problem is one line; several are ``"N problems:"`` and one indented line each."""
    if len(problems) == 1:
        return problems[0]
    return f"{len(problems)} problems:\n" + "\n".join(f" - {p}" for p in problems)


_PASSWORD_IN_URL = re.compile(r"(://[^/@\s:]*:)[^/@\s]*@")


def _describe(error: Mapping[str, Any]) -> str:
    field = ".".join(str(part) for part in error["loc"]) or "spec"
    kind, value = error["type"], error.get("input")
    if isinstance(value, str):  # a mirror URL's password is not echoed back
        value = _PASSWORD_IN_URL.sub(r"\1***@", value)
    if kind == "string_pattern_mismatch":
        hint = _HINTS.get(error["ctx"]["pattern"], f"a value matching {error['ctx']['pattern']}")
        return f"{field}: {value!r} is not {hint}"
    if kind in ("image_reference", "control_character"):
        return f"{field}: {error['msg']}"
    if kind == "missing":
        return f"{field}: required"
    if kind == "extra_forbidden":
        owner = {"mirrors": Mirrors, "proxy": Proxy}.get(str(error["loc"][0]), ImageSpec) if len(error["loc"]) > 1 else ImageSpec
        return f"{field}: unknown key; valid: {', '.join(owner.model_fields)}"
    if kind == "string_type" and isinstance(value, (int, float)):
        return f'{field}: {value!r} must be a string (quote it: "{value}")'
    return f"{field}: {error['msg']}"


def describe_validation_error(err: ValidationError) -> list[str]:
    """Each pydantic error as one ``field: problem`` line."""
    return [_describe(e) for e in err.errors()]


def spec_from_values(values: Mapping[str, Any]) -> ImageSpec:
    """Validate raw values into an ``ImageSpec``; every shape problem in one ``UsageError``."""
    try:
        return ImageSpec.model_validate(dict(values))
    except ValidationError as err:
        raise UsageError(format_problems(describe_validation_error(err))) from None
