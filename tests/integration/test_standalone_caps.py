"""A plain-gRPC builder's MergeOp/DiffOp come from its own gateway Ping, against real BuildKits.

Both Docker Engines' BuildKits stand in for buildkitds here, reached through llbgen's relay
on a plain unix socket (see test_standalone_paths.py): the containerd-store engine lists
``mergeop``/``diffop`` as enabled, the classic-store engine lists them disabled.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from llbgen.builder.docker_relay import DockerGrpcRelay
from llbgen.builder.endpoint import EngineEndpoint
from tests.conftest import CLASSIC_ENGINE, MAIN_ENGINE

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def inspect_json(address: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "llbgen", "builder", "inspect", "--builder", address, "--json"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize(("engine", "merge"), [(MAIN_ENGINE, True), (CLASSIC_ENGINE, False)],
                         ids=["containerd-store", "classic-store"])
def test_merge_and_diff_are_asked_from_the_daemon(docker_engine: str, engine: str, merge: bool) -> None:
    if not Path(engine.removeprefix("unix://")).exists():
        pytest.skip(f"no engine at {engine} (run .ci/setup-host.sh)")
    with DockerGrpcRelay(EngineEndpoint(engine)) as relay:
        info = inspect_json(f"unix://{relay.socket_path}")
    assert info["merge_op"] is merge and info["diff_op"] is merge
    assert info["sources"]["merge_op"] == "asked: the gateway's LLB caps"
    assert info["multiple_exporters"] is True  # BuildKit 0.13 lists exporter.multiple
    assert info["sources"]["exporters"].startswith("assumed")
