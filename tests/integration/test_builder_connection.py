"""Talking to the Docker Engine's BuildKit through the /grpc relay, and failing cleanly without one."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from llbgen._proto.buildkit import control_pb2, control_pb2_grpc
from llbgen.builder.address import resolve_builder_address
from llbgen.builder.capabilities import SNAPSHOTTER_LABEL, inspect_builder
from llbgen.builder.connection import BuilderConnection
from llbgen.builder.docker_relay import DockerGrpcRelay, open_upgraded_socket
from llbgen.builder.endpoint import EngineEndpoint
from llbgen.builder.engine_api import EngineAPI, EngineAPIError
from llbgen.builder.engine_buildkit import ENGINE_BUILDKIT
from llbgen.errors import BuilderUnavailable, CapabilityMissing

pytestmark = pytest.mark.integration

RUN_CLI = [sys.executable, "-c", "from llbgen.cli.main import main; main()"]
HTTP2_SETTINGS_FRAME_TYPE = 0x4


def relay_threads() -> list[threading.Thread]:
    return [
        t for t in threading.enumerate() if t.name.startswith("llbgen-docker-relay")
    ]


@pytest.fixture
def connection(docker_engine: str):
    address = resolve_builder_address(f"docker://{docker_engine}", env={})
    with BuilderConnection(address) as conn:
        conn.wait_ready(timeout=15)
        yield conn


def test_upgrade_keeps_the_bytes_dockerd_sends_right_after_101(
    docker_engine: str,
) -> None:
    sock = open_upgraded_socket(EngineEndpoint(docker_engine), "/grpc", [], timeout=10)
    try:
        sock.settimeout(5)
        frame_header = sock.recv(9)
        # dockerd's HTTP/2 server speaks first: a SETTINGS frame on stream 0.
        assert len(frame_header) == 9
        assert frame_header[3] == HTTP2_SETTINGS_FRAME_TYPE
        assert frame_header[5:9] == b"\x00\x00\x00\x00"
    finally:
        sock.close()


def test_refused_upgrade_is_a_one_line_builder_error(docker_engine: str) -> None:
    with pytest.raises(BuilderUnavailable) as info:
        open_upgraded_socket(
            EngineEndpoint(docker_engine),
            "/no-such-endpoint",
            [("X-Test", "a"), ("X-Test", "b")],
            timeout=10,
        )
    message = str(info.value)
    assert "HTTP 404" in message and "BuildKit" in message
    assert "\n" not in message


def test_list_workers_and_info_through_the_relay(connection: BuilderConnection) -> None:
    workers = connection.control.ListWorkers(
        control_pb2.ListWorkersRequest(), timeout=10
    )
    assert workers.record, "dockerd reports at least one worker"
    assert any(p.OS == "linux" for p in workers.record[0].platforms)
    info = connection.control.Info(control_pb2.InfoRequest(), timeout=10)
    assert info.buildkitVersion.package == "github.com/moby/buildkit"
    assert connection.engine is not None and not connection.engine.use_tls


def test_inspect_reports_the_containerd_store(connection: BuilderConnection) -> None:
    info = inspect_builder(connection)
    assert info.kind == "docker"
    assert info.image_store == "containerd"
    assert any(SNAPSHOTTER_LABEL in w.labels for w in info.workers)
    assert info.merge_op and info.diff_op
    info.require("merge_op")
    info.require("exporter:oci")
    info.require("cache_export:registry")
    with pytest.raises(CapabilityMissing, match="s3"):
        info.require("cache_export:s3")


def test_inspect_names_the_engines_buildkit_and_says_when_it_is_inferred(connection: BuilderConnection) -> None:
    """Distribution-built engines report a placeholder for BuildKit: the version is inferred, and marked so."""
    info = inspect_builder(connection)
    assert info.engine_version, "a Docker Engine reports its own version"
    major, minor = (int(part) for part in info.engine_version.split(".")[:2])
    if info.buildkit_version:
        assert info.buildkit_version_inferred is None
    else:
        assert info.buildkit_version_inferred == ENGINE_BUILDKIT[(major, minor)]
        dumped = json.loads(info.model_dump_json())
        assert dumped["buildkit_version"] is None and dumped["buildkit_version_inferred"] == info.buildkit_version_inferred


def test_inspect_takes_the_image_store_from_the_engines_info(connection: BuilderConnection, monkeypatch) -> None:
    """One answer to the image-store question: the engine's /info (what the up-to-date check and the
    base-image lookup read), not a second one from the worker label."""
    real_info = EngineAPI.info

    def graphdriver_info(self: EngineAPI) -> dict:
        return {**real_info(self), "DriverStatus": [["Backing Filesystem", "extfs"]]}

    monkeypatch.setattr(EngineAPI, "info", graphdriver_info)
    assert inspect_builder(connection).image_store == "classic"


def test_many_concurrent_rpcs_through_one_relay(docker_engine: str) -> None:
    with DockerGrpcRelay(EngineEndpoint(docker_engine)) as relay:
        # Separate subchannel pools force one upstream /grpc upgrade per channel.
        channels = [
            grpc.insecure_channel(
                relay.target, options=[("grpc.use_local_subchannel_pool", 1)]
            )
            for _ in range(4)
        ]
        stubs = [control_pb2_grpc.ControlStub(ch) for ch in channels]

        def call(i: int) -> int:
            stub = stubs[i % len(stubs)]
            if i % 2:
                return len(
                    stub.ListWorkers(
                        control_pb2.ListWorkersRequest(), timeout=30
                    ).record
                )
            return len(
                stub.Info(control_pb2.InfoRequest(), timeout=30).buildkitVersion.package
            )

        try:
            with ThreadPoolExecutor(max_workers=32) as pool:
                results = list(pool.map(call, range(400)))
        finally:
            for ch in channels:
                ch.close()
        assert all(r > 0 for r in results)
    assert relay_threads() == []


def test_relay_close_ends_streams_quickly_and_leaves_no_threads(
    docker_engine: str,
) -> None:
    relay = DockerGrpcRelay(EngineEndpoint(docker_engine)).start()
    channel = grpc.insecure_channel(relay.target)
    stub = control_pb2_grpc.ControlStub(channel)
    stub.ListWorkers(control_pb2.ListWorkersRequest(), timeout=10)
    assert relay_threads(), "the relay serves the connection on its own threads"
    # Status for an unknown ref waits a few seconds for the job: a live stream to cut.
    stream = stub.Status(
        control_pb2.StatusRequest(Ref="llbgen-test-no-such-job"), timeout=60
    )
    time.sleep(0.5)
    started = time.monotonic()
    relay.close()
    with pytest.raises(grpc.RpcError):
        list(stream)
    assert time.monotonic() - started < 5
    channel.close()
    assert relay_threads() == []
    relay.close()  # idempotent


@pytest.mark.parametrize(
    "builder",
    [
        "unix:///nonexistent.sock",
        "tcp://127.0.0.1:1",
        "docker://unix:///nonexistent.sock",
    ],
)
def test_unreachable_builder_fails_in_one_line(builder: str) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [*RUN_CLI, "builder", "inspect", "--builder", builder],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    elapsed = time.monotonic() - started
    assert result.returncode != 0
    assert elapsed < 20
    stderr = result.stderr.strip()
    assert "Traceback" not in result.stderr
    assert len(stderr.splitlines()) == 1, stderr
    assert builder.removeprefix("docker://") in stderr
    assert "running?" in stderr


def test_bad_builder_string_is_a_usage_error() -> None:
    result = subprocess.run(
        [*RUN_CLI, "builder", "inspect", "--builder", "ssh://nope"],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "valid forms" in result.stderr


def test_cli_inspect_json_shows_containerd_store(docker_engine: str) -> None:
    result = subprocess.run(
        [
            *RUN_CLI,
            "builder",
            "inspect",
            "--json",
            "--builder",
            f"docker://{docker_engine}",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["image_store"] == "containerd"
    assert info["merge_op"] is True
    assert info["address"] == f"docker://{docker_engine}"
    assert info["workers"] and info["workers"][0]["platforms"]


def test_cli_inspect_table(docker_engine: str) -> None:
    result = subprocess.run(
        [*RUN_CLI, "builder", "inspect", "--builder", f"docker://{docker_engine}"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    for text in ("image store", "containerd", "MergeOp", "yes"):
        assert text in result.stdout


def test_engine_api_reads_what_docker_inspect_shows(docker_engine: str, base_image: str) -> None:
    api = EngineAPI(EngineEndpoint(docker_engine))
    assert api.version()["Version"]
    assert api.info()["ID"]
    attrs = api.inspect_image(base_image)
    cli = json.loads(subprocess.run(["docker", "-H", docker_engine, "image", "inspect", base_image],
                                    check=True, capture_output=True, text=True).stdout)[0]
    assert attrs is not None
    assert attrs["Id"] == cli["Id"]
    assert attrs["Config"] == cli["Config"]
    assert api.inspect_image("llbgen-test/no-such-image:never") is None


def test_engine_api_error_status_carries_the_engines_message(docker_engine: str) -> None:
    with pytest.raises(EngineAPIError) as caught:
        EngineAPI(EngineEndpoint(docker_engine)).get("/containers/llbgen-no-such-container/json")
    assert caught.value.status == 404
    assert "llbgen-no-such-container" in str(caught.value)


def test_engine_api_unreachable_engine_is_a_one_line_builder_error(tmp_path) -> None:
    with pytest.raises(BuilderUnavailable) as caught:
        EngineAPI(EngineEndpoint(f"unix://{tmp_path}/absent.sock"), timeout=2).version()
    assert "\n" not in str(caught.value)
    assert "absent.sock" in str(caught.value)
