"""``export_dockerfile``: the whole build context in a directory — no builder, no network, no Docker.

Everything is rendered in memory first (spec, stages, Dockerfile, build.sh, README), so
a problem leaves the directory untouched. A non-empty directory is refused unless
``force``; with it, the files this export owns (``Dockerfile``, ``build.sh``,
``README.md``, the layers tool, ``init/``) are replaced and anything else is left alone.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from llbgen.dockerfile.buildscript import render_build_script
from llbgen.dockerfile.layout import LAYERS_TOOL, ContextFile, Dockerfile, render_dockerfile
from llbgen.dockerfile.readme import render_readme
from llbgen.errors import UsageError
from llbgen.reference import check_tag
from llbgen.spec import ResolvedSpec
from llbgen.spec.credentials import UNUSED_FIELDS
from stages.context import NetworkMode, StageContext
from stages.plan import layer_plan

OWNED = ("Dockerfile", "build.sh", "README.md", LAYERS_TOOL, "init")


@dataclass(frozen=True)
class Export:
    """What was (or would be) written: path relative to the directory -> (mode, bytes)."""

    dockerfile: Dockerfile
    files: dict[str, tuple[int, bytes]]


def render_export(resolved: ResolvedSpec, *, tag: str | None = None, network: NetworkMode = "sandbox",
                  lang: str = "en", syntax_line: bool = False) -> Export:
    """Every file of the export, in memory.

    >>> export = render_export(load_spec(None, {"torch": "2.3.0", "cuda": "12.1"}))
    >>> sorted(export.files)[:3]
    ['Dockerfile', 'README.md', 'build.sh']
    """
    if tag is not None:
        try:
            check_tag(tag)
        except ValueError as err:
            raise UsageError(f"tag {err}") from None
    _refuse_logins(resolved)
    ctx = StageContext.create(resolved, image_tag=tag, network=network)
    plan = layer_plan(ctx, merge_supported=True)
    dockerfile = render_dockerfile(plan, ctx, syntax_line=syntax_line)
    files: dict[str, tuple[int, bytes]] = {
        "Dockerfile": (0o644, dockerfile.text.encode()),
        "build.sh": (0o755, render_build_script(dockerfile, ctx).encode()),
        "README.md": (0o644, render_readme(dockerfile, ctx, lang).encode()),
    }
    for f in dockerfile.context_files:
        files[f.path] = (f.mode, f.data)
    return Export(dockerfile, files)


def _refuse_logins(resolved: ResolvedSpec) -> None:
    """A mirror login a build step needs would have to be in the Dockerfile or build.sh: refused."""
    used = [x.field for x in resolved.logins if x.field not in UNUSED_FIELDS]
    if used:
        raise UsageError(f"{used[0]}: a login in the URL cannot go into an exported Dockerfile or build.sh; "
                         "build with llbgen build (it passes the login as a build secret), or export with a "
                         "mirror that needs no login")


def _check_target(out_dir: Path, force: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"-o {out_dir}: not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise UsageError(f"-o {out_dir}: directory is not empty (use --force to overwrite the exported files)")


def write_export(export: Export, out_dir: Path, *, force: bool = False) -> list[Path]:
    """Write ``export`` into ``out_dir`` (created if missing); the paths written, sorted."""
    _check_target(out_dir, force)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in OWNED:
        path = out_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    written = []
    for rel, (mode, data) in sorted(export.files.items()):
        path = out_dir / rel
        for parent in reversed(path.relative_to(out_dir).parents[:-1]):
            d = out_dir / parent
            d.mkdir(exist_ok=True)
            d.chmod(0o755)  # the context's directories become the image's: not the umask's
        path.write_bytes(data)
        path.chmod(mode)
        written.append(path)
    return written


def export_dockerfile(resolved: ResolvedSpec, out_dir: Path, *, tag: str | None = None,
                      network: NetworkMode = "sandbox", lang: str = "en", syntax_line: bool = False,
                      force: bool = False) -> Export:
    """Render and write the build context for ``resolved`` into ``out_dir``."""
    _check_target(out_dir, force)  # before rendering too: a refused directory is refused at once
    export = render_export(resolved, tag=tag, network=network, lang=lang, syntax_line=syntax_line)
    write_export(export, out_dir, force=force)
    return export


__all__ = ["ContextFile", "Export", "export_dockerfile", "render_export", "write_export"]
