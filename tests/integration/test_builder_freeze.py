"""A builder that freezes mid-build (connection open, nothing moving) ends llbgen within the documented bound.

``FreezingProxy`` sits between llbgen and BuildKit and, once a long step runs, stops
forwarding bytes without closing anything: only HTTP/2 keepalive can notice. Both
kinds of connection are covered: the Docker Engine's (llbgen's relay over the engine
API socket, fast keepalive) and a standalone buildkitd's (a plain gRPC channel on a
unix socket, keepalive paced for buildkitd's ping policy).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from llbgen.builder.address import resolve_builder_address
from llbgen.builder.connection import freeze_detection_seconds
from tests.integration.freeze_proxy import FreezingProxy
from tests.integration.helpers import SlowSolve
from tests.integration.test_standalone_paths import registry_base, relay, wait_process_gone  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration
# Tearing down after the dead connection is noticed (status reader, session) may take a little.
TEARDOWN_SLACK = 10.0


@pytest.fixture
def engine_proxy(docker_engine: str) -> Iterator[FreezingProxy]:
    if not docker_engine.startswith("unix://"):
        pytest.skip(f"the freezing proxy stands in front of a unix socket, not {docker_engine}")
    with FreezingProxy(docker_engine.removeprefix("unix://")) as proxy:
        yield proxy


@pytest.fixture
def buildkitd_proxy(relay) -> Iterator[FreezingProxy]:  # noqa: F811
    with FreezingProxy(relay.socket_path) as proxy:
        yield proxy


def run_until_frozen(proxy: FreezingProxy, builder: str, base: str, tmp_path: Path) -> tuple[int, str, float]:
    """``llbgen solve`` a long step through ``proxy``, freeze it once the step runs; (rc, stderr, seconds after the freeze)."""
    solve = SlowSolve(builder, base, tmp_path, seconds=300)
    try:
        solve.wait_running()
    finally:
        frozen_at = time.monotonic()
        proxy.freeze()
    bound = freeze_detection_seconds(resolve_builder_address(builder, env={})) + TEARDOWN_SLACK
    took = solve.wait_exit(frozen_at, timeout=bound + 60)
    if took is None:
        pytest.fail(f"llbgen still ran {bound + 60:.0f}s after its builder froze:\n" + solve.stderr)
    assert took < bound, f"exited only {took:.1f}s after the freeze (bound {bound:.0f}s):\n{solve.stderr}"
    return solve.proc.returncode, solve.stderr, took


def assert_one_line_failure(rc: int, stderr: str) -> None:
    assert rc == 1, stderr
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines(keepends=True) if line.startswith("llbgen: error: ")]
    assert len(errors) == 1 and stderr.endswith(errors[0]), stderr
    assert "stopped answering" in errors[0], errors[0]


def test_a_frozen_docker_engine_ends_the_build_with_one_line(engine_proxy: FreezingProxy, base_image: str,
                                                              tmp_path: Path) -> None:
    rc, stderr, _ = run_until_frozen(engine_proxy, f"docker://unix://{engine_proxy.socket_path}", base_image,
                                     tmp_path)
    assert_one_line_failure(rc, stderr)


def test_a_frozen_standalone_buildkitd_ends_the_build_with_one_line(buildkitd_proxy: FreezingProxy,
                                                                    registry_base: str,  # noqa: F811
                                                                    tmp_path: Path) -> None:
    rc, stderr, _ = run_until_frozen(buildkitd_proxy, f"unix://{buildkitd_proxy.socket_path}", registry_base,
                                     tmp_path)
    assert_one_line_failure(rc, stderr)
