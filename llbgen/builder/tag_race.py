"""Concurrent builds naming one tag: the export that lost the race, when it lost nothing.

On the Docker Engine's containerd image store, BuildKit names an exported image by
"update the tag, else create it". Two builds that finish together both find the tag
missing, both create it, and the second fails with ``image "NAME": already exists``
although the tag may now hold exactly the image it exported (same graph, same
manifest). That build is then done: the engine's image store is asked what each tag
holds, and only when every tag holds the manifest this export wrote does it count as
a success. A tag holding anything else stays a failure, as the engine reported it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llbgen.builder.connection import BuilderConnection
    from llbgen.builder.options import Output
    from llbgen.builder.progress import ProgressRecorder, VertexState

_ALREADY_EXISTS = re.compile(r'image "([^"]+)": already exists$')
# BuildKit's image exporter reports what it wrote as progress statuses of its step.
_EXPORTED = re.compile(r"^exporting (manifest list|manifest|config) (sha256:[0-9a-f]{64})$")


def exported_digests(vertex: VertexState) -> dict[str, str]:
    """``{"manifest list"|"manifest"|"config": digest}`` from an export step's statuses."""
    found = {}
    for status_id in vertex.statuses:
        match = _EXPORTED.match(status_id)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def lost_naming_race(recorder: ProgressRecorder) -> tuple[str, str] | None:
    """(image digest, config digest) the export wrote, when the one failure is a tag that already exists."""
    failed = [v for v in recorder.vertex_states() if v.is_failed]
    if len(failed) != 1 or not _ALREADY_EXISTS.search(failed[0].error):
        return None
    written = exported_digests(failed[0])
    image = written.get("manifest list") or written.get("manifest")
    if image is None or "config" not in written:
        return None
    return image, written["config"]


def image_names(outputs: Sequence[Output]) -> list[str]:
    """The names the engine's image exporter was asked to give (``name=a,b``).

    Empty when any output is more than naming an image in the engine's store: a push, or
    another exporter, comes after the naming that failed and never happened.
    """
    names: list[str] = []
    for output in outputs:
        if output.type not in ("image", "moby") or output.attrs.get("push") == "true":
            return []
        names += [n for n in output.attrs.get("name", "").split(",") if n]
    return names


def settle_naming_race(conn: BuilderConnection, outputs: Sequence[Output],
                       recorder: ProgressRecorder) -> dict[str, str] | None:
    """The exporter response of a build whose only failure was losing the race to name its own image.

    None (the failure stands) unless the builder is a Docker Engine, the export wrote an
    image and every tag asked for holds exactly that image now.
    """
    if conn.engine is None:
        return None
    written = lost_naming_race(recorder)
    names = image_names(outputs)
    if written is None or not names:
        return None
    image, config = written
    from llbgen.builder.engine_api import EngineAPI, EngineAPIError
    from llbgen.errors import LlbgenError

    api = EngineAPI(conn.engine)
    for name in names:
        try:
            held = api.inspect_image(name)
        except (EngineAPIError, LlbgenError):
            return None
        # The containerd store's image ID is the manifest digest, the classic store's the config digest.
        if held is None or held.get("Id") not in (image, config):
            return None
    return {"containerimage.digest": image, "containerimage.config.digest": config, "image.name": ",".join(names)}
