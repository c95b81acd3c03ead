"""``llbgen verify IMAGE``: run a container of an image and check it the way the seed's §6 does."""

from __future__ import annotations

from typing import Annotated

import typer

from llbgen.cli.main import app, fail
from llbgen.errors import LlbgenError


@app.command()
def verify(
    image: Annotated[str, typer.Argument(help="Image to check, e.g. pytorch:2.3.0-python3.8-cuda12.1.0-cudnn8-devel-ubuntu22.04.")],
    docker_host: Annotated[
        str | None, typer.Option("--docker-host", help="Docker Engine to run the container on (default: $DOCKER_HOST, else the local socket).")
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1, help="Seconds to wait for sshd, JupyterLab and TensorBoard to come up.")
    ] = 180.0,
    password: Annotated[
        bool, typer.Option("--password", help="Also set a random ROOT_PASSWORD and check password login (else: check it is refused).")
    ] = False,
    gpus: Annotated[
        str | None, typer.Option("--gpus", help="GPUs for the container (all, N or device=ID,...): also checks CUDA, cuDNN and torch.cuda.is_available().")
    ] = None,
    keep: Annotated[bool, typer.Option("--keep", help="Leave the container running afterwards (prints how to reach it).")] = False,
) -> None:
    """Start IMAGE with a throwaway SSH key and a random Jupyter token, and check SSH (banner, locale, Chinese,
    CST), JupyterLab (/jupyter, token), TensorBoard (/monitor), the versions in its io.llbgen.spec label and
    that no host keys or passwords are baked in. Prints a table; exits non-zero on any failure."""
    from rich.console import Console

    from llbgen.errors import UsageError
    from llbgen.reference import check_reference
    from llbgen.verify import VerifyOptions
    from llbgen.verify import verify as run_verify

    try:  # an image ID is a reference too
        check_reference(image)
    except ValueError as e:
        fail(UsageError(f"IMAGE {e}"))
    out, err = Console(), Console(stderr=True)
    if not out.is_terminal:  # a log or a pipe: keep each row on one line where it fits
        out = Console(width=max(out.width, 160))
    opts = VerifyOptions(image=image, docker_host=docker_host, timeout=timeout, password=password, gpus=gpus, keep=keep)
    try:
        report, kept = run_verify(opts, say=lambda msg: err.print(f"[dim]verify: {msg}[/dim]"))
    except LlbgenError as e:
        fail(e)
        return
    report.render(out)
    if kept:  # plain lines (no wrapping): they are meant to be copied
        typer.echo(f"kept container {kept.name} (remove it with: docker rm -f {kept.name}; rm -r {kept.workdir})", err=True)
        typer.echo(f"  ssh:         {kept.ssh_command}", err=True)
        typer.echo(f"  JupyterLab:  {kept.jupyter_url}", err=True)
        typer.echo(f"  TensorBoard: {kept.tensorboard_url}", err=True)
    raise typer.Exit(report.exit_code)
