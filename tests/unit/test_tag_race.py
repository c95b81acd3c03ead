"""Which failed exports count as a lost race to name the tag (the engine side: tests/integration/test_concurrent_tags.py)."""

from __future__ import annotations

from llbgen._proto.buildkit import control_pb2
from llbgen.builder.options import Output
from llbgen.builder.progress import ProgressRecorder
from llbgen.builder.tag_race import image_names, lost_naming_race

MANIFEST, CONFIG = "sha256:" + "1" * 64, "sha256:" + "2" * 64


def recorder(error: str, *statuses: str) -> ProgressRecorder:
    vertex = control_pb2.Vertex(digest="sha256:" + "e" * 64, name="exporting to image", error=error)
    vertex.started.GetCurrentTime()
    vertex.completed.GetCurrentTime()
    rec = ProgressRecorder()
    rec.update(control_pb2.StatusResponse(
        vertexes=[vertex], statuses=[control_pb2.VertexStatus(ID=s, vertex=vertex.digest) for s in statuses]))
    return rec


def test_only_an_already_existing_tag_after_a_written_image_is_a_lost_race() -> None:
    written = (f"exporting manifest {MANIFEST}", f"exporting config {CONFIG}")
    assert lost_naming_race(recorder('image "docker.io/a/b:c": already exists', *written)) == (MANIFEST, CONFIG)
    assert lost_naming_race(recorder('image "docker.io/a/b:c": already exists')) is None  # nothing written
    assert lost_naming_race(recorder("failed to push: unauthorized", *written)) is None


def test_only_plain_engine_store_outputs_can_be_settled() -> None:
    assert image_names([Output("moby", {"name": "a:1,b:2"})]) == ["a:1", "b:2"]
    # A push or another exporter would have come after the failed naming: never settled.
    assert image_names([Output("image", {"name": "r/a:1", "push": "true"})]) == []
    assert image_names([Output("moby", {"name": "a:1"}), Output("oci", {})]) == []
