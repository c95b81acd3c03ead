"""``llbgen export-dockerfile``: the image as a Dockerfile build context, for ``docker buildx build``.

Takes the same spec flags (and ``--config``) as ``llbgen build``; needs no builder, no
network and no Docker. Writes ``Dockerfile``, ``init/``, ``llbgen-layers.py``, ``build.sh``
and ``README.md`` (English or Chinese) into ``-o DIR``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from llbgen.cli.common import check_tags
from llbgen.cli.main import app
from llbgen.cli.spec_options import (
    AptMirrorOpt,
    AptPackageOpt,
    BaseImageOpt,
    BuilderImageOpt,
    CaCertOpt,
    CondaChannelOpt,
    ConfigOpt,
    CpuOpt,
    CudaOpt,
    CudnnOpt,
    DistroOpt,
    FlavourOpt,
    HttpProxyOpt,
    HttpsProxyOpt,
    MinicondaInstallerOpt,
    MinicondaShaOpt,
    MinicondaUrlOpt,
    NetworkOpt,
    NoProxyOpt,
    PipExtraIndexOpt,
    PipIndexOpt,
    PipPackageOpt,
    PythonOpt,
    TagTemplateOpt,
    TorchaudioOpt,
    TorchIndexOpt,
    TorchOpt,
    TorchvisionOpt,
    load_resolved,
    network_mode,
)
from llbgen.errors import UsageError

OutDirOpt = Annotated[Path, typer.Option("--output", "-o", help="Directory to write (created if missing; must be empty unless --force).")]
ExportTagOpt = Annotated[Optional[str], typer.Option("--tag", "-t", help="Image name build.sh tags (default: the spec's resolved tag).")]
LangOpt = Annotated[Optional[str], typer.Option("--lang", help="Language of README.md: zh or en (default: from LC_ALL / LANG).")]
SyntaxLineOpt = Annotated[bool, typer.Option("--syntax-line", help="Start the Dockerfile with '# syntax=docker/dockerfile:1' (BuildKit then pulls that frontend from Docker Hub).")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Write into a non-empty directory, replacing the files of an earlier export.")]


@app.command("export-dockerfile")
def export_dockerfile_command(
    output: OutDirOpt,
    torch: TorchOpt = None,
    torchvision: TorchvisionOpt = None,
    torchaudio: TorchaudioOpt = None,
    cuda: CudaOpt = None,
    cpu: CpuOpt = None,
    cudnn: CudnnOpt = None,
    python: PythonOpt = None,
    distro: DistroOpt = None,
    flavour: FlavourOpt = None,
    base_image: BaseImageOpt = None,
    builder_image: BuilderImageOpt = None,
    apt_package: AptPackageOpt = None,
    pip_package: PipPackageOpt = None,
    apt_mirror: AptMirrorOpt = None,
    pip_index_url: PipIndexOpt = None,
    pip_extra_index_url: PipExtraIndexOpt = None,
    miniconda_url: MinicondaUrlOpt = None,
    miniconda_installer: MinicondaInstallerOpt = None,
    miniconda_sha256: MinicondaShaOpt = None,
    conda_channel: CondaChannelOpt = None,
    torch_index_url: TorchIndexOpt = None,
    ca_cert: CaCertOpt = None,
    http_proxy: HttpProxyOpt = None,
    https_proxy: HttpsProxyOpt = None,
    no_proxy: NoProxyOpt = None,
    tag_template: TagTemplateOpt = None,
    config: ConfigOpt = None,
    tag: ExportTagOpt = None,
    network: NetworkOpt = "default",
    lang: LangOpt = None,
    syntax_line: SyntaxLineOpt = False,
    force: ForceOpt = False,
) -> None:
    """Write a Dockerfile build context (Dockerfile, init/, build.sh, README.md) that builds the same image with
    docker buildx build. Needs no builder and no network."""
    from llbgen.dockerfile import export_dockerfile
    from llbgen.dockerfile.readme import LANGS, default_lang

    resolved = load_resolved(locals())
    if tag is not None:
        check_tags([tag])
    net = network_mode(network)
    language = (lang or default_lang()).lower()
    if language not in LANGS:
        raise UsageError(f"--lang {lang!r}: use zh or en")
    export_dockerfile(resolved, output, tag=tag, network=net, lang=language,  # type: ignore[arg-type]
                      syntax_line=syntax_line, force=force)
    typer.echo(f"wrote {output}: Dockerfile, init/, build.sh, README.md ({language}); build with: sh {output / 'build.sh'}")
