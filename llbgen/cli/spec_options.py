"""The image-spec flags every command that takes a spec shares (``build``, ``plan``, ``export-dockerfile``).

Each flag maps to an ``ImageSpec`` key (``SPEC_KEYS``); values from ``--config
llbgen.toml`` are overridden by the flags that were given. ``load_resolved``
turns a command's parameters into a ``ResolvedSpec`` before anything else runs,
so bad input fails in one line without a builder.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from llbgen.errors import UsageError

if TYPE_CHECKING:
    from llbgen.spec import ResolvedSpec

ConfigOpt = Annotated[Optional[Path], typer.Option("--config", help="llbgen.toml with the spec; flags override it.")]
TorchOpt = Annotated[Optional[str], typer.Option("--torch", help="torch release, e.g. 2.3.0 (see `llbgen versions`).")]
TorchvisionOpt = Annotated[Optional[str], typer.Option("--torchvision", help="torchvision release (default: paired with torch).")]
TorchaudioOpt = Annotated[Optional[str], typer.Option("--torchaudio", help="torchaudio release (default: paired); 'none' installs none.")]
CudaOpt = Annotated[Optional[str], typer.Option("--cuda", help="CUDA version, 12.1 or 12.1.0 (default: torch's default build).")]
CpuOpt = Annotated[Optional[bool], typer.Option("--cpu", help="CPU-only image: Ubuntu base, CPU wheel index.")]
CudnnOpt = Annotated[Optional[str], typer.Option("--cudnn", help="cuDNN major version of the base (default: the nvidia/cuda image's).")]
PythonOpt = Annotated[Optional[str], typer.Option("--python", help="Python version Miniconda installs (default: torch's default).")]
DistroOpt = Annotated[Optional[str], typer.Option("--distro", help="Base distro, e.g. ubuntu22.04 or debian12.")]
FlavourOpt = Annotated[Optional[str], typer.Option("--flavour", help="nvidia/cuda flavour: devel or runtime.")]
BaseImageOpt = Annotated[Optional[str], typer.Option("--base-image", help="Base image replacing the resolved nvidia/cuda or ubuntu image.")]
BuilderImageOpt = Annotated[Optional[str], typer.Option("--builder-image", help="Neutral image (same distro family, no CUDA) the python/jupyter/torch layers are built on.")]
AptPackageOpt = Annotated[Optional[list[str]], typer.Option("--apt-package", help="Extra apt package for the os layer (repeatable).")]
PipPackageOpt = Annotated[Optional[list[str]], typer.Option("--pip-package", help="Extra pip requirement, installed after torch in a layer of its own (repeatable).")]
AptMirrorOpt = Annotated[Optional[str], typer.Option("--apt-mirror", help="Apt mirror replacing the distro's archive.")]
PipIndexOpt = Annotated[Optional[str], typer.Option("--pip-index-url", help="pip index for everything but torch (also written to the image's pip.conf).")]
PipExtraIndexOpt = Annotated[Optional[list[str]], typer.Option("--pip-extra-index-url", help="Extra pip index (repeatable).")]
MinicondaUrlOpt = Annotated[Optional[str], typer.Option("--miniconda-url", help="Base URL of the directory holding the Miniconda installer.")]
MinicondaInstallerOpt = Annotated[Optional[str], typer.Option("--miniconda-installer", help="Miniconda installer file name.")]
MinicondaShaOpt = Annotated[Optional[str], typer.Option("--miniconda-sha256", help="sha256 of the Miniconda installer.")]
CondaChannelOpt = Annotated[Optional[list[str]], typer.Option("--conda-channel", help="Conda channel URL for the image's .condarc (repeatable).")]
TorchIndexOpt = Annotated[Optional[str], typer.Option("--torch-index-url", help="torch wheel index; {variant} becomes cu121, cpu, ...")]
CaCertOpt = Annotated[Optional[Path], typer.Option("--ca-cert", help="PEM CA bundle trusted by download steps (a secret mount; never in the image).")]
HttpProxyOpt = Annotated[Optional[str], typer.Option("--http-proxy", help="http_proxy for download steps (a secret; never in the image).")]
HttpsProxyOpt = Annotated[Optional[str], typer.Option("--https-proxy", help="https_proxy for download steps (a secret; never in the image).")]
NoProxyOpt = Annotated[Optional[str], typer.Option("--no-proxy", help="no_proxy for download steps.")]
TagTemplateOpt = Annotated[Optional[str], typer.Option("--tag-template", help="Image tag template, e.g. 'pytorch:{torch}-{variant}'.")]
# How download steps reach the network (build, plan, export-dockerfile).
NetworkOpt = Annotated[str, typer.Option("--network", help="default, or host: download steps use the host's network (grants network.host).")]

# Parameter name -> ImageSpec key (dotted: a key of the mirrors or proxy table).
SPEC_KEYS = {
    "torch": "torch", "torchvision": "torchvision", "torchaudio": "torchaudio", "cuda": "cuda", "cpu": "cpu",
    "cudnn": "cudnn", "python": "python", "distro": "distro", "flavour": "flavour", "base_image": "base_image",
    "builder_image": "builder_image", "apt_package": "apt_packages", "pip_package": "pip_packages",
    "apt_mirror": "mirrors.apt", "pip_index_url": "mirrors.pip_index_url",
    "pip_extra_index_url": "mirrors.pip_extra_index_urls", "miniconda_url": "mirrors.miniconda_url",
    "conda_channel": "mirrors.conda_channels", "torch_index_url": "mirrors.torch_index_url",
    "miniconda_installer": "miniconda_installer", "miniconda_sha256": "miniconda_sha256", "ca_cert": "ca_cert",
    "http_proxy": "proxy.http_proxy", "https_proxy": "proxy.https_proxy", "no_proxy": "proxy.no_proxy",
    "tag_template": "tag_template",
}


def spec_overrides(values: Mapping[str, Any]) -> dict[str, Any]:
    """The spec flags that were given, as ``load_spec`` overrides."""
    overrides: dict[str, Any] = {}
    for param, key in SPEC_KEYS.items():
        value = values.get(param)
        if value is None or value is False or value == []:
            continue
        if isinstance(value, list):
            value = tuple(value)
        elif isinstance(value, Path):
            value = str(value.expanduser().absolute())
        overrides[key] = value
    return overrides


def network_mode(value: str) -> str:
    if value in ("default", "sandbox"):
        return "sandbox"
    if value == "host":
        return "host"
    raise UsageError(f"--network {value!r}: use default or host")


def load_resolved(values: Mapping[str, Any]) -> ResolvedSpec:
    """The spec of a command's parameters (``locals()``): ``--config`` file, then the flags given."""
    from llbgen.spec import load_spec

    config = values.get("config")
    return load_spec(config.expanduser() if config else None, spec_overrides(values))
