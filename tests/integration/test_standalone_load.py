"""``--load`` with a standalone buildkitd: the image really lands in the local Docker Engine, or nothing builds.

The "standalone buildkitd" is the main engine's BuildKit behind llbgen's relay on a plain
unix socket (see test_standalone_paths.py); the local engine it loads into is the second
engine, named by DOCKER_HOST, so an image found there can only have come through the load.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.test_standalone_paths import registry_base, relay, unix_address  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SECOND_ENGINE = "unix:///var/run/llbgen-second/docker.sock"


@pytest.fixture(scope="module")
def second_engine() -> str:
    if not Path(SECOND_ENGINE.removeprefix("unix://")).exists():
        pytest.skip(f"no second Docker Engine at {SECOND_ENGINE} (run .ci/setup-host.sh)")
    return SECOND_ENGINE


def second_docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", "-H", SECOND_ENGINE, *args], capture_output=True, text=True, check=check,
                          timeout=120)


def solve(graph: Path, *args: str, docker_host: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_HOST": docker_host}
    env.pop("BUILDKIT_HOST", None)
    return subprocess.run([sys.executable, "-m", "llbgen", "solve", f"{graph}:graph", *args], env=env,
                          capture_output=True, text=True, timeout=300, cwd=ROOT)


def write_graph(tmp_path: Path, base: str, marker: str) -> Path:
    graph = tmp_path / "graph.py"
    graph.write_text(
        "def graph(resolve):\n"
        f"    return resolve({base!r}).run(['sh', '-c', 'echo {marker} > /marker'], name='mark {marker}')"
        ".root.with_config(cmd=('cat', '/marker'))\n"
    )
    return graph


def test_load_with_a_standalone_builder_puts_the_image_into_the_local_engine(
    unix_address: str, registry_base: str, second_engine: str, tmp_path: Path  # noqa: F811
) -> None:
    marker = secrets.token_hex(6)
    name = f"llbgen-test/standalone-load:{marker}"
    proc = solve(write_graph(tmp_path, registry_base, marker), "--builder", unix_address, "--load", "-t", name,
                 "--progress", "plain", docker_host=second_engine)
    try:
        assert proc.returncode == 0, proc.stderr
        assert f"llbgen: loaded {name} into the local Docker Engine" in proc.stderr
        # In the engine DOCKER_HOST names, under the tag, with its config, and it runs.
        out = second_docker("run", "--rm", name).stdout
        assert out == f"{marker}\n"
    finally:
        second_docker("image", "rm", name, check=False)


def test_load_without_a_local_engine_refuses_before_building(unix_address: str, registry_base: str,  # noqa: F811
                                                             tmp_path: Path) -> None:
    marker = secrets.token_hex(6)
    missing = f"unix://{tmp_path}/no-engine.sock"
    started = time.monotonic()
    proc = solve(write_graph(tmp_path, registry_base, marker), "--builder", unix_address, "--load",
                 "-t", f"llbgen-test/standalone-load:{marker}", "--progress", "plain", docker_host=missing)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("llbgen: error: --load"), proc.stderr
    assert missing in proc.stderr and "--output type=oci,dest=FILE" in proc.stderr and "--push" in proc.stderr
    assert f"mark {marker}" not in proc.stderr  # nothing was built
    assert time.monotonic() - started < 30


def test_an_engine_that_rejects_the_tarball_fails_the_load_in_one_line(docker_engine: str) -> None:
    from llbgen.builder.engine_load import EngineImageLoad, EngineLoadFailed, local_engine

    load = EngineImageLoad(local_engine({"DOCKER_HOST": docker_engine})).start()
    load.write(b"this is not a tar archive\n" * 1000)
    with pytest.raises(EngineLoadFailed) as err:
        load.finish()
    message = str(err.value)
    assert message.startswith(f"the Docker Engine at {docker_engine} did not load the image: "), message
    assert "\n" not in message
