"""The closing lines of a successful ``llbgen build``: what was made, what it cost, what to run next."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence

from llbgen.builder.progress.format import human_bytes

LayerStatuses = Mapping[str, str]


def format_build_summary(*, tags: Sequence[str], digest: str | None, size: int | None, layers: LayerStatuses,
                         seconds: float, in_engine: bool) -> list[str]:
    """``built TAG in 3m05s``, then the digest and size, the layers built/reused, and the next commands.

    ``in_engine``: the image is in the local engine's store, so ``llbgen verify`` and
    ``docker run`` can use it by tag.
    """
    built = [name for name, status in layers.items() if status == "built"]
    reused = [name for name, status in layers.items() if status == "reused"]
    lines = [f"llbgen: built {', '.join(tags)} in {format_wall_time(seconds)}"]
    image = digest or "(no digest reported)"
    if size is not None:
        image += f" ({human_bytes(size)})"
    lines.append(f"  image   {image}")
    lines.append(f"  layers  {len(built)} built ({', '.join(built) or 'none'}), "
                 f"{len(reused)} reused ({', '.join(reused) or 'none'})")
    if in_engine and tags:
        tag = shlex.quote(tags[0])
        lines.append(f"  next    llbgen verify {tag}")
        lines.append(f"          IMAGE={tag} examples/docker-run.sh")
    return lines


def format_wall_time(seconds: float) -> str:
    """``42.3s``, ``3m05s``, ``1h02m``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
