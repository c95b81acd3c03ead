"""The build fingerprint: one digest for everything that decides an exported image.

It covers the whole graph — the terminal LLB digest, which commits to every op, every
input and the base pinned by digest — and the image config. llbgen labels each image it
builds with it (``io.llbgen.build-fingerprint``), so a later build can tell, from the
engine's image store alone, that a tag already holds exactly the image it would make
(see ``llbgen.uptodate``).

Left out, as BuildKit leaves them out of its own cache keys: secret values (the CA
bundle, proxies, mirror logins, ``--secret``) and whatever network steps download.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llbgen.llb import State

FINGERPRINT_LABEL = "io.llbgen.build-fingerprint"
# Bumped when what the fingerprint covers changes, so old labels stop matching.
_SCHEME = "llbgen-build-fingerprint/1"


def build_fingerprint(image: State) -> str:
    """``sha256:…`` of ``image``'s graph and image config (without the fingerprint label itself)."""
    from llbgen.llb import marshal

    config = image.image_config()
    labels = config["config"].get("Labels") or {}
    if FINGERPRINT_LABEL in labels:
        config["config"]["Labels"] = {k: v for k, v in labels.items() if k != FINGERPRINT_LABEL}
    digests = marshal(image).digests
    payload = {"scheme": _SCHEME, "graph": digests[-1] if digests else "", "config": config}
    encoded = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(encoded).hexdigest()


def with_fingerprint(image: State) -> State:
    """``image`` with its build fingerprint as a label."""
    return image.with_config(labels=image.config.with_labels({FINGERPRINT_LABEL: build_fingerprint(image)}).labels)


def fingerprint_of(image_config: dict[str, Any]) -> str:
    """The fingerprint label of an image config as the engine reports it (``docker image inspect``'s Config)."""
    return str((image_config.get("Labels") or {}).get(FINGERPRINT_LABEL, ""))
