"""A builder that freezes mid-build (connection open, nothing moving) ends llbgen within the documented bound.

``FreezingProxy`` sits between llbgen and BuildKit and, once a long step runs, stops
forwarding bytes without closing anything: only HTTP/2 keepalive can notice. Both
kinds of connection are covered: the Docker Engine's (llbgen's relay over the engine
API socket, fast keepalive) and a standalone buildkitd's (a plain gRPC channel on a
unix socket, keepalive paced for buildkitd's ping policy).
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from llbgen.builder.address import resolve_builder_address
from llbgen.builder.connection import freeze_detection_seconds
from tests.integration.freeze_proxy import FreezingProxy
from tests.integration.test_standalone_paths import registry_base, relay, wait_process_gone  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
DOCKER_SOCKET = "/var/run/docker.sock"
# Tearing down after the dead connection is noticed (status reader, session) may take a little.
TEARDOWN_SLACK = 10.0


@pytest.fixture
def engine_proxy(docker_engine: str) -> Iterator[FreezingProxy]:
    with FreezingProxy(DOCKER_SOCKET) as proxy:
        yield proxy


@pytest.fixture
def buildkitd_proxy(relay) -> Iterator[FreezingProxy]:  # noqa: F811
    with FreezingProxy(relay.socket_path) as proxy:
        yield proxy


def run_until_frozen(proxy: FreezingProxy, builder: str, base: str, tmp_path: Path) -> tuple[int, str, float]:
    """``llbgen solve`` a long step through ``proxy``, freeze it once the step runs; (rc, stderr, seconds after the freeze)."""
    marker = secrets.token_hex(6)
    graph = tmp_path / "slow.py"
    graph.write_text(
        "def graph(resolve):\n"
        f"    return resolve({base!r}).run(['sh', '-c', 'echo \"run\"\"ning-{marker}\"; sleep 300; "
        f"echo finished-{marker}'], name='slow {marker}').root\n"
    )
    proc = subprocess.Popen([sys.executable, "-m", "llbgen", "solve", f"{graph}:graph", "--builder", builder,
                             "--output", f"type=tar,dest={tmp_path / 'never.tar'}", "--progress", "plain"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    lines: list[str] = []
    running = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if f"running-{marker}" in line:
                running.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert running.wait(120), "".join(lines)
    finally:
        frozen_at = time.monotonic()
        proxy.freeze()
    bound = freeze_detection_seconds(resolve_builder_address(builder, env={})) + TEARDOWN_SLACK
    try:
        proc.wait(timeout=bound + 60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"llbgen still ran {bound + 60:.0f}s after its builder froze:\n" + "".join(lines))
    took = time.monotonic() - frozen_at
    reader.join(10)
    stderr = "".join(lines)
    assert took < bound, f"exited only {took:.1f}s after the freeze (bound {bound:.0f}s):\n{stderr}"
    return proc.returncode, stderr, took


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
