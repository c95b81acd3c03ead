"""Shared test setup.

Integration tests need a real BuildKit: the Docker Engine's (started by
.ci/setup-host.sh) and the local registry on 127.0.0.1:5000. In CI (CI=true)
a missing daemon is a failure; on a developer machine the tests skip, saying why.

``DOCKER_HOST`` selects the engine every test builds on, as it does for docker and llbgen
(default: the system engine's socket); scripts/test.sh runs the integration tier a second
time with it pointed at Debian's newest engine. The other engines some tests need beside
it (a second containerd-store engine, a classic-store one) are named here once.
"""

from __future__ import annotations

import os
import subprocess
import urllib.request

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
MAIN_ENGINE = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
SECOND_ENGINE = "unix:///var/run/llbgen-second/docker.sock"
CLASSIC_ENGINE = "unix:///var/run/llbgen-classic/docker.sock"
REGISTRY = "127.0.0.1:5000"
BASE_IMAGE = "llbgen-test/debian:bookworm"


def _need(condition: bool, why: str) -> None:
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI requires it: {why}")
    pytest.skip(why)


def _docker_ok() -> bool:
    try:
        return subprocess.run(["docker", "-H", MAIN_ENGINE, "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def docker_engine() -> str:
    """The Docker Engine's address (``DOCKER_HOST``), or skip/fail when no engine answers there."""
    _need(_docker_ok(), f"no Docker Engine at {MAIN_ENGINE} (run .ci/setup-host.sh)")
    return MAIN_ENGINE


@pytest.fixture(scope="session")
def base_image(docker_engine: str) -> str:
    """A local Debian image made by debootstrap (no registry of images is reachable)."""
    ok = subprocess.run(["docker", "-H", docker_engine, "image", "inspect", BASE_IMAGE],
                        capture_output=True).returncode == 0
    _need(ok, f"base image {BASE_IMAGE} missing (run .ci/setup-host.sh)")
    return BASE_IMAGE


@pytest.fixture(scope="session")
def registry() -> str:
    """The local OCI registry (Debian's docker-registry) on loopback."""
    try:
        urllib.request.urlopen(f"http://{REGISTRY}/v2/", timeout=5)
        ok = True
    except OSError:
        ok = False
    _need(ok, f"no registry at {REGISTRY} (run .ci/setup-host.sh)")
    return REGISTRY


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run tests that wipe the engine's build cache last, so they don't cost every later build its cache."""
    items.sort(key=lambda item: item.get_closest_marker("prunes_build_cache") is not None)


KEEP_IMAGES = {"llbgen-test/debian:bookworm", "llbgen-test/cuda-standin:bookworm"}


def pytest_sessionstart(session: pytest.Session) -> None:
    """Drop images earlier runs left under fixed test names, when asked (LLBGEN_TEST_CLEAN_IMAGES=1).

    Exporting onto a tag that already names another image (or an identical manifest)
    makes Docker 26's containerd store fail the export with "not found" while cleaning
    up the replaced image; fresh names keep every run independent of the last. Only the
    README's test command asks for it: a collection, or a second pytest run beside the
    first, must never remove the images a running test uses.
    """
    if os.environ.get("LLBGEN_TEST_CLEAN_IMAGES") != "1" or session.config.option.collectonly:
        return
    try:
        listed = subprocess.run(["docker", "-H", MAIN_ENGINE, "images", "--format", "{{.Repository}}:{{.Tag}}"],
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return
    stale = [name for name in listed.stdout.split()
             if "llbgen-test/" in name and name not in KEEP_IMAGES and not name.endswith(":<none>")]
    for start in range(0, len(stale), 50):
        subprocess.run(["docker", "-H", MAIN_ENGINE, "image", "rm", "-f", *stale[start:start + 50]],
                       capture_output=True, timeout=300)
