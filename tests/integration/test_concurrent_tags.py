"""Concurrent builds of one graph to one tag, on the real engine.

Twelve solves of the same cached graph to one new tag, each on its own connection as twelve
``llbgen`` processes would be, finish their exports together; on the containerd image store all but one used to fail with the engine's
``image "…": already exists`` although the tag held exactly their image. Each now checks
what the tag holds and succeeds when it is its own image; a tag holding another image
still fails.
"""

from __future__ import annotations

import io
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest

from llbgen import llb
from llbgen.builder.address import resolve_builder_address
from llbgen.builder.client import Builder
from llbgen.builder.connection import BuilderConnection
from llbgen.builder.options import Output
from llbgen.builder.progress import ProgressRecorder
from llbgen.builder.solve import SolveOptions
from llbgen.builder.tag_race import settle_naming_race
from llbgen.errors import LlbgenError
from tests.conftest import MAIN_ENGINE
from tests.integration.engine_helpers import docker, inspect_image

pytestmark = pytest.mark.integration
ENGINE = f"docker://{MAIN_ENGINE}"
RUNS = 12
BUDGET_S = 60.0


def _solve_all(tag: str, base: llb.State) -> list[tuple[str | BaseException, str]]:
    """(image digest or the error, what the build wrote to its progress stream) of RUNS concurrent builds."""
    graph = base.file(llb.mkfile("/race.txt", 0o644, b"one graph, one tag\n"), name="race file")
    ready = threading.Barrier(RUNS)

    def one(builder: Builder) -> tuple[str | BaseException, str]:
        stream = io.StringIO()
        ready.wait(timeout=BUDGET_S)  # every connection is open: the solves start together
        try:
            result = builder.solve(graph, SolveOptions(outputs=[Output("moby", {"name": tag})], progress="quiet",
                                                       progress_stream=stream))
            return result.image_digest or "", stream.getvalue()
        except LlbgenError as err:
            return err, stream.getvalue()

    with ExitStack() as stack:
        builders = [stack.enter_context(Builder.connect(ENGINE)) for _ in range(RUNS)]
        for b in builders:
            _ = b.info
        with ThreadPoolExecutor(RUNS) as pool:
            return list(pool.map(one, builders))


def test_concurrent_builds_to_one_tag_all_succeed(base_image: str) -> None:
    with Builder.connect(ENGINE) as b:
        base = b.resolve(base_image)
    # Rounds until one raced (on a warm cache the first does: the builds reach the export together).
    started, raced, rounds = time.monotonic(), False, 0
    while not raced and time.monotonic() - started < BUDGET_S:
        tag = f"llbgen-test/race:{secrets.token_hex(4)}"
        results = _solve_all(tag, base)
        rounds += 1
        held = inspect_image(tag)["Id"]
        for outcome, _ in results:
            assert outcome == held, f"a concurrent build to {tag} failed or exported another image: {outcome}"
        raced = any("already named by a concurrent build" in said for _, said in results)
    if not raced:
        pytest.skip(f"{rounds} rounds of {RUNS} concurrent builds never raced to name the tag")


def test_a_tag_holding_another_image_is_still_a_failure(base_image: str) -> None:
    """The engine says the tag exists and it holds something else: the build failed."""
    from llbgen._proto.buildkit import control_pb2

    tag = f"llbgen-test/race-other:{secrets.token_hex(4)}"
    docker("tag", base_image, tag)
    try:
        held = inspect_image(tag)["Id"]
        recorder = ProgressRecorder()
        ours = "sha256:" + "1" * 64
        vertex = control_pb2.Vertex(digest="sha256:" + "e" * 64, name="exporting to image",
                                    error=f'image "docker.io/{tag}": already exists')
        vertex.started.GetCurrentTime()
        vertex.completed.GetCurrentTime()
        statuses = [control_pb2.VertexStatus(ID=f"exporting manifest {ours}", vertex=vertex.digest),
                    control_pb2.VertexStatus(ID=f"exporting config sha256:{'2' * 64}", vertex=vertex.digest)]
        recorder.update(control_pb2.StatusResponse(vertexes=[vertex], statuses=statuses))
        conn = BuilderConnection(resolve_builder_address(ENGINE))
        outputs = [Output("moby", {"name": tag})]
        assert settle_naming_race(conn, outputs, recorder) is None
        # The same report with the tag's own image: settled.
        recorder = ProgressRecorder()
        statuses[0] = control_pb2.VertexStatus(ID=f"exporting manifest {held}", vertex=vertex.digest)
        recorder.update(control_pb2.StatusResponse(vertexes=[vertex], statuses=statuses))
        assert settle_naming_race(conn, outputs, recorder) == {
            "containerimage.digest": held, "containerimage.config.digest": "sha256:" + "2" * 64, "image.name": tag}
    finally:
        docker("image", "rm", tag, check=False)
