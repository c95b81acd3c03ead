"""Golden digests: a change to how any op is serialized shows up here as a diff.

Refresh with ``LLBGEN_UPDATE_GOLDEN=1 pytest tests/unit/test_llb_golden.py`` and
review the diff of tests/unit/golden/digests.json.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from llbgen import llb

GOLDEN = Path(__file__).parent / "golden" / "digests.json"
AMD64 = llb.Platform("linux", "amd64")


def _graphs() -> dict[str, llb.State]:
    base = llb.image("debian:bookworm", platform=AMD64)
    built = base.run(
        "apt-get update && apt-get install -y curl",
        mounts=[llb.cache_mount("/var/cache/apt", "apt", sharing="locked"), llb.secret_mount("/etc/ssl/ca.pem", "ca")],
        env={"DEBIAN_FRONTEND": "noninteractive"},
    ).root
    files = llb.scratch(AMD64).file(
        llb.mkdir("/init/bin", 0o755, make_parents=True).mkfile("/init/bin/x", 0o755, "#!/bin/sh\n")
    )
    return {
        "image": base,
        "image_pinned": llb.image("nvidia/cuda:12.1.0-cudnn8-devel-ubuntu22.04", platform=AMD64,
                                  digest="sha256:" + "1" * 64),
        "exec_with_mounts": built,
        "exec_host_network": base.run(["pip", "install", "x"], network="host", valid_exit_codes=[0]).root,
        "file_chain": files,
        "copy_from_local": base.file(llb.copy(llb.local("ctx", include=["*.sh"]), "/", "/ctx/", create_dest_path=True)),
        "http": llb.http("https://repo.example/Miniconda3.sh", checksum="sha256:" + "2" * 64, permissions=0o755),
        "git": llb.git("https://github.com/moby/buildkit.git", "v0.13.0"),
        "merge_diff": llb.merge([base, llb.diff(base, built), files]),
        "diff_to_scratch": llb.diff(base, llb.scratch(AMD64)),
    }


def _digests() -> dict[str, list[str]]:
    return {name: list(llb.marshal(state).digests) for name, state in _graphs().items()}


def test_golden_digests():
    actual = _digests()
    if os.environ.get("LLBGEN_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(actual, indent=2, sort_keys=True) + "\n")
        pytest.skip("golden digests refreshed")
    expected = json.loads(GOLDEN.read_text())
    assert actual == expected
