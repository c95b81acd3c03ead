"""``llbgen versions``: the torch compatibility table llbgen resolves specs against."""

from __future__ import annotations

import typer

from llbgen.cli.main import app, fail


@app.command()
def versions(
    torch: str | None = typer.Option(None, "--torch", help="One release (2.3.0) or a series (2.3)."),
) -> None:
    """Show torch releases with their torchvision, torchaudio, Python and CUDA builds."""
    from rich.console import Console
    from rich.table import Table

    from llbgen.errors import UsageError
    from llbgen.spec import compat

    releases = compat.torch_releases()
    if torch:
        releases = tuple(r for r in releases if r.version == torch or r.version.startswith(torch.rstrip(".") + "."))
        if not releases:
            fail(UsageError(f"--torch: unknown release {torch}; valid: {', '.join(compat.torch_versions())}"))

    table = Table(title="torch releases llbgen knows", caption="* the default build (what PyPI serves); (x.y) the default Python")
    table.add_column("torch", no_wrap=True, min_width=max(len(r.version) for r in releases))
    for column in ("torchvision", "torchaudio", "python", "builds (CUDA)"):
        table.add_column(column, overflow="fold")
    for rel in releases:
        audio = rel.torchaudio or "-"
        missing = [v.name for v in rel.variants if rel.torchaudio and not v.torchaudio]
        if missing:
            audio += f" (none on {', '.join(missing)})"
        pythons = f"{rel.pythons[0]}-{rel.pythons[-1]} ({rel.default_python})"
        builds = " ".join(
            ("cpu" if v.cuda is None else v.cuda) + ("*" if v.name == rel.default_variant_name else "") for v in rel.variants
        )
        table.add_row(rel.version, rel.torchvision, audio, pythons, builds)
    Console().print(table)
