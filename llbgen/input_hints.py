"""What to do when an input of the build cannot be fetched: the flag (or llbgen.toml key) that replaces it.

A build fetches its base image, the neutral builder image, the Miniconda installer,
apt archives, the pip index and the torch wheel index; each has a flag that points it
elsewhere (a mirror, a local image). Errors about these inputs end with that flag.
"""

from __future__ import annotations

import re

BASE_IMAGE_HINT = ("use --base-image IMAGE (base_image in llbgen.toml) on a registry this engine can reach, "
                   "or give the engine a registry mirror (\"registry-mirrors\" in /etc/docker/daemon.json)")
BUILDER_IMAGE_HINT = ("use --builder-image IMAGE (builder_image in llbgen.toml) on a registry this engine can reach, "
                      "or give the engine a registry mirror (\"registry-mirrors\" in /etc/docker/daemon.json)")

# Step-name prefixes (see stages/) -> what to do when that step could not download.
_STEP_HINTS = (
    ("download Miniconda", "the Miniconda installer could not be fetched? use --miniconda-url URL "
                           "([mirrors] miniconda_url in llbgen.toml), a mirror of repo.anaconda.com/miniconda, or "
                           "--miniconda-installer FILE --miniconda-sha256 SHA256 for another installer"),
    ("os: ", "if apt could not download: use --apt-mirror URL ([mirrors] apt in llbgen.toml)"),
    ("jupyter: ", "if pip could not download: use --pip-index-url URL ([mirrors] pip_index_url in llbgen.toml)"),
    ("extras: ", "if pip could not download: use --pip-index-url URL ([mirrors] pip_index_url in llbgen.toml)"),
    ("torch: ", "if the torch wheels could not be downloaded: use --torch-index-url URL "
                "([mirrors] torch_index_url in llbgen.toml; {variant} becomes cu121, cpu, ...)"),
)

# BuildKit repeats the reference in every layer of its error; the cause is at the end.
_NOISE = (
    re.compile(r"^unknown: "),
    re.compile(r"failed to resolve source metadata for \S+: "),
    re.compile(r"failed to do request: \w+ \"[^\"]*\": "),
)


def image_error(ref: str, error: str, *, builder_image: bool) -> str:
    """One line: which image could not be had, why (the cause, the image named once), what to do."""
    cause = error
    prefix = f"cannot resolve image {_normalized(ref)}: "
    if cause.startswith(prefix):
        cause = cause[len(prefix):]
    for noise in _NOISE:
        cause = noise.sub("", cause)
    what = (f"builder image {ref} (the neutral image the python, jupyter and torch layers are built on)"
            if builder_image else f"base image {ref}")
    hint = BUILDER_IMAGE_HINT if builder_image else BASE_IMAGE_HINT
    return f"cannot get the {what}: {cause}; {hint}"


def step_hint(failure: str) -> str:
    """The hint for a failed build (``step NAME failed ...``), or "" when the step fetches nothing."""
    if not failure.startswith("step "):
        return ""
    name = failure[len("step "):]
    return next((hint for prefix, hint in _STEP_HINTS if name.startswith(prefix)), "")


def _normalized(ref: str) -> str:
    from llbgen.llb.source import normalize_image_ref

    try:
        return normalize_image_ref(ref)
    except ValueError:
        return ref
