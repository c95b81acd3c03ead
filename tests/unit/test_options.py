"""User option strings are parsed (and rejected) before any builder is contacted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from llbgen.builder.options import CacheEntry, Output, parse_secret
from llbgen.cli.common import plan_outputs
from llbgen.errors import UsageError


def test_output_types(tmp_path: Path):
    assert Output.parse("type=image,name=r/x:1,push=true") == Output("image", {"name": "r/x:1", "push": "true"})
    assert Output.parse("type=registry,name=r/x") == Output("image", {"name": "r/x", "push": "true"})
    oci = Output.parse(f"type=oci,dest={tmp_path}/x.tar")
    assert oci.type == "oci" and oci.dest == tmp_path / "x.tar"
    assert Output.parse(f'type=local,dest={tmp_path}/out').dest == tmp_path / "out"
    assert Output.parse('type=image,"name=a/b:1,a/b:latest"').attrs["name"] == "a/b:1,a/b:latest"


@pytest.mark.parametrize(
    "text",
    ["", "type=zip", "type=oci", "type=tar,dest=/nonexistent-dir/x.tar", "type=image,push=true", "name", "type=oci,dest=-"],
)
def test_bad_outputs(text: str):
    with pytest.raises(UsageError):
        Output.parse(text)


def test_cache_entries(tmp_path: Path):
    assert CacheEntry.parse("type=registry,ref=r/c:1,mode=max", export=True) == CacheEntry("registry", {"ref": "r/c:1", "mode": "max"})
    assert CacheEntry.parse("r/c:1", export=False) == CacheEntry("registry", {"ref": "r/c:1"})
    assert CacheEntry.parse("type=inline", export=True).type == "inline"
    assert CacheEntry.parse(f"type=local,src={tmp_path}", export=False).attrs["src"] == str(tmp_path)
    for bad, export in [("type=registry", True), ("type=registry,ref=x,mode=all", True), ("type=local", True),
                        ("type=local,src=/nonexistent", False), ("ref", True)]:
        with pytest.raises(UsageError):
            CacheEntry.parse(bad, export=export)


def test_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    f = tmp_path / "ca.pem"
    f.write_text("PEM")
    assert parse_secret(f"id=ca,src={f}") == ("ca", b"PEM")
    monkeypatch.setenv("TOKEN_VAR", "s3cret")
    assert parse_secret("id=token,env=TOKEN_VAR") == ("token", b"s3cret")
    with pytest.raises(UsageError):
        parse_secret("src=x")
    with pytest.raises(UsageError):
        parse_secret(f"id=x,src={tmp_path}/missing")
    with pytest.raises(UsageError):
        parse_secret("id=x,env=LLBGEN_SURELY_UNSET")


def test_plan_outputs_defaults():
    assert plan_outputs(outputs=None, tags=["a:1"], load=False, push=False, docker_builder=True) == [Output("moby", {"name": "a:1"})]
    assert plan_outputs(outputs=None, tags=["r/a:1"], load=False, push=True, docker_builder=True) == [
        Output("image", {"name": "r/a:1", "push": "true"})]
    with pytest.raises(UsageError):
        plan_outputs(outputs=None, tags=None, load=False, push=True, docker_builder=True)
    with pytest.raises(UsageError):
        plan_outputs(outputs=None, tags=None, load=False, push=False, docker_builder=False)


def test_load_with_a_standalone_builder_streams_a_docker_tarball_into_the_engine():
    # Not the `image` exporter: that keeps the image inside buildkitd, where --load never reaches Docker.
    assert plan_outputs(outputs=None, tags=["a:1"], load=True, push=False, docker_builder=False) == [
        Output("docker", {"name": "a:1"}, load=True)]
    assert plan_outputs(outputs=None, tags=["r/a:1"], load=True, push=True, docker_builder=False) == [
        Output("docker", {"name": "r/a:1"}, load=True), Output("image", {"name": "r/a:1", "push": "true"})]


@pytest.mark.parametrize(
    "args",
    [
        ["solve", "examples/graphs/hello.py:graph", "--output", "type=zip"],
        ["solve", "examples/graphs/hello.py:graph", "--progress", "fancy"],
        ["solve", "examples/graphs/hello.py:graph", "--cache-to", "type=registry"],
        ["solve", "examples/graphs/hello.py:graph", "--secret", "id=x,src=/nonexistent"],
        ["solve", "examples/graphs/hello.py:graph", "--builder", "ftp://x"],
        ["solve", "examples/graphs/hello.py:graph", "--local", "ctx=/nonexistent"],
        ["llb", "examples/graphs/missing.py:graph"],
        ["llb", "examples/graphs/hello.py:nothing"],
    ],
)
def test_cli_bad_input_is_one_line(args: list[str]):
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-m", "llbgen", *args], capture_output=True, text=True, cwd=root,
                          timeout=60, env={"PATH": "/usr/bin:/bin", "BUILDKIT_HOST": "unix:///nonexistent.sock"})
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("llbgen: error:")


@pytest.mark.parametrize(
    "args",
    [
        ["solve", "examples/graphs/hello.py:graph", "-t", "llbgen-test/x:1"],
        ["build", "--torch", "2.3.0", "--cpu"],
        ["bake", "examples/bake-matrix.toml"],
    ],
    ids=["solve", "build", "bake"],
)
def test_load_with_a_standalone_builder_and_no_engine_refuses_before_connecting(args: list[str], tmp_path: Path):
    # Neither the builder nor the engine socket exists: the refusal must come from the
    # engine check, before any attempt to reach the builder.
    root = Path(__file__).resolve().parents[2]
    engine = f"unix://{tmp_path}/no-docker.sock"
    proc = subprocess.run([sys.executable, "-m", "llbgen", *args, "--builder", f"unix://{tmp_path}/no-buildkitd.sock",
                           "--load"], capture_output=True, text=True, cwd=root, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "DOCKER_HOST": engine})
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("llbgen: error: --load with the builder unix://"), proc.stderr
    assert f"none answers at {engine}" in proc.stderr and "--output type=oci,dest=FILE" in proc.stderr
