"""The exported ``build.sh`` hands the proxy to the build steps from the caller's environment, with the real
Docker CLI and buildx on the test engine — and the password is in no file, no image config, no history.

The export's Dockerfile is swapped for a two-line one whose one step prints what it sees: the test is
about build.sh and Docker's handling of ``--build-arg NAME`` (no value: read from the environment),
not about the image (tests/integration/test_export_dockerfile.py builds that).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import MAIN_ENGINE
from tests.integration.engine_helpers import docker

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "pw-" + secrets.token_hex(6)
# A loopback port nothing listens on: the step only prints the variables, nothing is fetched through it.
PROXY = f"http://builder:{PASSWORD}@127.0.0.1:9"


@pytest.fixture
def tag() -> str:
    name = f"llbgen-test/buildsh-proxy:{secrets.token_hex(4)}"
    yield name
    docker("image", "rm", "-f", name, check=False)


def test_build_sh_passes_the_proxy_from_the_environment(tmp_path: Path, base_image: str, tag: str) -> None:
    ctx = tmp_path / "ctx"
    export = subprocess.run(
        [sys.executable, "-m", "llbgen", "export-dockerfile", "--torch", "2.3.0", "--cpu", "--https-proxy", PROXY,
         "--no-proxy", "localhost,.corp", "-t", tag, "-o", str(ctx)],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert export.returncode == 0, export.stderr
    for path in ctx.rglob("*"):
        assert not path.is_file() or PASSWORD.encode() not in path.read_bytes(), path
    (ctx / "Dockerfile").write_text(
        "ARG BASE_IMAGE\n"
        "FROM ${BASE_IMAGE}\n"
        'RUN --network=none echo "seen https_proxy=$https_proxy HTTPS_PROXY=$HTTPS_PROXY no_proxy=$no_proxy"\n')

    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "no_proxy")}
    env["DOCKER_HOST"] = MAIN_ENGINE
    args = ["sh", str(ctx / "build.sh"), "--build-arg", f"BASE_IMAGE={base_image}", "--no-cache", "--progress", "plain"]

    # Without the proxy in the environment build.sh stops before docker runs, and says what to set.
    refused = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60)
    assert refused.returncode == 2 and "build.sh: set https_proxy" in refused.stderr, refused.stderr

    built = subprocess.run(args, capture_output=True, text=True, env={**env, "https_proxy": PROXY}, timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    assert f"seen https_proxy={PROXY} HTTPS_PROXY={PROXY} no_proxy=localhost,.corp" in built.stderr

    # Docker's predefined proxy arguments stay out of the image: config, labels and history.
    config = docker("image", "inspect", tag).stdout
    history = docker("history", "--no-trunc", "--format", "{{json .}}", tag).stdout
    assert PASSWORD not in config and PASSWORD not in history
    assert json.loads(config)[0]["RepoTags"] == [tag]
