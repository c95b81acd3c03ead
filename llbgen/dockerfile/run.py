"""One ``Step`` as Dockerfile instructions: ``RUN --mount=...`` with its script, then ``COPY <<EOF`` per written file.

The same values ``stages.step.run_step`` lowers to LLB, mapped one for one:

==========================  =====================================================================
``Step`` field              Dockerfile
==========================  =====================================================================
``script``                  the RUN's heredoc, unchanged (``/bin/sh -c`` runs it, as in LLB)
``env``                     ``export`` lines before the script (step-only, like the exec's env)
``caches``                  ``--mount=type=cache,target=…,id=…,sharing=…`` (same ids as llbgen's)
``network="offline"``       ``--network=none``
``network="download"``      the build's network (``build.sh`` passes ``--network host`` when asked),
                            ``--network=host`` when only this step needs it (a loopback URL;
                            ``build.sh`` then passes ``--allow network.host``) and, when a CA
                            bundle is set, ``--mount=type=secret,id=llbgen-ca``
``http_files``              a ``FROM scratch`` stage with ``ADD --checksum=sha256:… URL`` bound
                            read-only at ``dest_dir`` (``--mount=type=bind,from=…``)
``writes``                  ``COPY --chmod=… <<'EOF' path`` after the RUN
==========================  =====================================================================

Proxy variables are not in the Dockerfile: ``build.sh`` passes them as Docker's predefined
proxy build arguments, which stay out of the image's config and history.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping

from llbgen.dockerfile.text import comment, heredoc, instruction
from stages.step import CA_PATH, CacheDir, HttpFile, Step, WriteFile


def cache_mount(cache: CacheDir) -> str:
    return f"--mount=type=cache,target={cache.dest},id={cache.id},sharing={cache.sharing}"


def secret_mount(secret_id: str) -> str:
    # required=true: a build without the secret fails at once instead of at the first TLS error.
    return f"--mount=type=secret,id={secret_id},target={CA_PATH},mode=0444,required=true"


def download_stage(stage_name: str, http_file: HttpFile, url: str, sha256: str) -> list[str]:
    """``FROM scratch`` + ``ADD --checksum``: the file, checked by BuildKit, as a stage of its own.

    Fetched by the builder (not by a RUN), verified against the checksum, cached by it:
    the same as llbgen's HTTP source. Never part of the image — steps bind it read-only.
    """
    return [f"FROM scratch AS {stage_name}", f"ADD --checksum=sha256:{sha256} {url} /{http_file.filename}"]


def step_body(step: Step, script: str) -> str:
    """The RUN heredoc: the step's environment as ``export`` lines, then its script."""
    exports = [f"export {name}={shlex.quote(value)}" for name, value in step.env]
    return "\n".join([*exports, script]) + "\n"


def run_instruction(step: Step, script: str, *, ca_secret_id: str | None,
                    downloads: Mapping[HttpFile, str], host_network: bool = False) -> list[str]:
    """The step's RUN: its mounts as flags, its environment and (possibly parametrized) script as a heredoc.

    ``host_network``: this step alone runs on the host's network (``--network=host``).
    """
    flags: list[str] = []
    if step.network == "offline":
        flags.append("--network=none")
    elif host_network:
        flags.append("--network=host")
    flags += [cache_mount(c) for c in step.caches]
    flags += [f"--mount=type=bind,from={downloads[f]},target={f.dest_dir}" for f in step.http_files]
    if step.network == "download" and ca_secret_id:
        flags.append(secret_mount(ca_secret_id))
    opener, lines = heredoc(step_body(step, script))
    return [*instruction("RUN", flags, opener), *lines]


def write_instruction(write: WriteFile) -> list[str]:
    """``COPY --chmod=MODE <<'EOF' PATH``; the content must end with a newline (heredocs end lines)."""
    if not write.content.endswith("\n"):
        raise ValueError(f"{write.path}: a heredoc cannot write content without a final newline")
    opener, lines = heredoc(write.content)
    return [f"COPY --chmod={write.mode:o} {opener} {write.path}", *lines]


def lower_step(step: Step, script: str, *, ca_secret_id: str | None, downloads: Mapping[HttpFile, str],
               host_network: bool = False) -> list[str]:
    """A comment naming the step, its RUN, then its file writes."""
    lines = comment(step.name)
    lines += run_instruction(step, script, ca_secret_id=ca_secret_id, downloads=downloads, host_network=host_network)
    for write in step.writes:
        lines += write_instruction(write)
    return lines
